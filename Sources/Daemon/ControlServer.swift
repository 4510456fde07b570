// The control socket: one poll loop on the daemon's main thread serving every connection with
// non-blocking I/O. Framing (capped lines, CRLF, UTF-8 and control-byte checks), in-order
// replies with pipelining, deferred replies, event delivery, limits, and the wake pipe that
// workers and signal handlers use. A slow client only ever fills its own buffer.
import Control
import ControlClient
import Foundation
import PrunedJSON
import Training

/// Written by signal handlers (async-signal-safe: one write to a pipe).
nonisolated(unsafe) var signalPipeWrite: Int32 = -1

final class ControlServer {
    unowned let daemon: Daemon
    let listenFD: Int32
    let boundPath: String?
    let wakeRead: Int32
    let wakeWrite: Int32
    var connections: [Int32: Connection] = [:]
    let allowedGID: gid_t?
    let adminGID: gid_t?

    init(daemon: Daemon) throws {
        self.daemon = daemon
        let config = daemon.config
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw DaemonError("pipe: \(String(cString: strerror(errno)))") }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        allowedGID = try config.allowedGroup.map(ControlServer.groupID)
        adminGID = try config.adminGroup.map(ControlServer.groupID)
        if let fd = config.listenFD {
            listenFD = fd
            boundPath = nil
        } else if let path = config.socketPath {
            listenFD = try ControlServer.bind(path)
            boundPath = path
        } else {
            throw DaemonError("no socket: systemd passed none and no --socket path was given")
        }
        _ = fcntl(listenFD, F_SETFL, fcntl(listenFD, F_GETFL) | O_NONBLOCK)
        signalPipeWrite = wakeWrite
        signal(SIGPIPE, SIG_IGN)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        let handler: @convention(c) (Int32) -> Void = { sig in
            var b: UInt8 = sig == SIGTERM ? 2 : 3
            _ = Glibc.write(signalPipeWrite, &b, 1)
        }
        signal(SIGTERM, handler)
        signal(SIGINT, handler)
    }

    var describeSocket: String { boundPath ?? "the socket passed by systemd (fd \(listenFD))" }

    static func groupID(_ name: String) throws -> gid_t {
        guard let g = getgrnam(name) else { throw DaemonError("no group '\(name)' on this system") }
        return g.pointee.gr_gid
    }

    /// Binds `path`, refusing when a live daemon answers there and replacing a stale socket file.
    static func bind(_ path: String) throws -> Int32 {
        guard path.utf8.count <= UnixSocketAddress.maxPathBytes else { throw DaemonError("socket path \(path) is longer than 107 bytes (the Unix limit)") }
        let dir = SocketDirectory.directory(of: path)
        var dst = stat()
        if lstat(dir, &dst) != 0 && errno == ENOENT {
            if mkdir(dir, 0o700) == 0 {
                _ = chmod(dir, 0o700)   // exactly 0700 whatever the umask
            } else if errno != EEXIST {
                throw DaemonError("cannot create the socket directory \(dir): \(String(cString: strerror(errno)))")
            }
        }
        // Another user's directory (or one others can write to) could be used to swap our socket
        // for a fake daemon's: refuse it (SocketDirectory states the rule).
        do { try SocketDirectory.check(socketPath: path) } catch let e as SocketDirectoryError { throw DaemonError(e.description) }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw DaemonError("\(path) exists and is not a socket; refusing to replace it") }
            let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(probe) }
            if UnixSocketAddress.withAddress(path, { connect(probe, $0, $1) }) == 0 {
                throw DaemonError("another pruned daemon is already answering on \(path)")
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DaemonError("socket: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        // The socket's mode is set after bind, not through umask: the umask is the whole process's,
        // and changing it would race with anything else creating files meanwhile. Until the chmod
        // the socket is reachable only by those who may enter its directory (checked above), and
        // every peer is still identified by SO_PEERCRED; listen() comes after the chmod anyway.
        let rc = UnixSocketAddress.withAddress(path) { Glibc.bind(fd, $0, $1) }
        guard rc == 0 else { let e = String(cString: strerror(errno)); close(fd); throw DaemonError("cannot bind \(path): \(e)") }
        guard chmod(path, 0o660) == 0 else { let e = String(cString: strerror(errno)); close(fd); throw DaemonError("cannot set the mode of \(path): \(e)") }
        guard listen(fd, 128) == 0 else { let e = String(cString: strerror(errno)); close(fd); throw DaemonError("listen on \(path): \(e)") }
        return fd
    }

    func now() -> Double { Trainer.monotonicSeconds() }

    // MARK: the loop

    /// Serves until the daemon says to exit (SIGTERM or `drain`, once every run has stopped).
    func loop() throws {
        var accepting = true
        while true {
            switch daemon.tick() {
            case .exit:
                deliverCompletions()
                deliverEvents()
                flushAll(deadline: now() + 2)
                return
            case .serve(let a):
                accepting = a
            }
            expireIdleConnections()

            var pfds: [pollfd] = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if accepting { pfds.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)) }
            for c in connections.values {
                var ev: Int16 = 0
                if c.waitingFor == nil && !c.closeAfterFlush && !c.peerClosed && c.pendingOutput < (1 << 20) { ev |= Int16(POLLIN) }
                if c.pendingOutput > 0 { ev |= Int16(POLLOUT) }
                pfds.append(pollfd(fd: c.fd, events: ev, revents: 0))
            }
            let n = poll(&pfds, nfds_t(pfds.count), daemon.pollTimeoutMilliseconds)
            if n < 0 && errno != EINTR { throw DaemonError("poll: \(String(cString: strerror(errno)))") }
            if n <= 0 { continue }
            for p in pfds where p.revents != 0 {
                if p.fd == wakeRead {
                    var buf = [UInt8](repeating: 0, count: 256)
                    while true {
                        let k = read(wakeRead, &buf, buf.count)
                        if k <= 0 { break }
                        if buf[0 ..< k].contains(2) { daemon.requestStop("SIGTERM") } else if buf[0 ..< k].contains(3) { daemon.requestStop("SIGINT") }
                    }
                } else if p.fd == listenFD {
                    acceptAll()
                } else if let c = connections[p.fd] {
                    if p.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 { readFrom(c) }
                    if p.revents & Int16(POLLHUP | POLLERR) != 0 { c.peerGone = true }
                    if connections[c.fd] != nil, p.revents & Int16(POLLOUT) != 0 { flush(c) }
                }
            }
            deliverCompletions()
            deliverEvents()
            for c in Array(connections.values) {
                processLines(c)
                // A half-closed peer is done once nothing is pending for it.
                let moreLines = c.input.contains(10) && !c.closeAfterFlush
                if c.peerGone && (c.waitingFor != nil || !moreLines) { drop(c); continue }
                if c.peerClosed && c.waitingFor == nil && !c.subscribed && !moreLines { c.closeAfterFlush = true }
                flush(c)
            }
        }
    }

    /// Closes connections silent for longer than the idle timeout (subscribers and connections
    /// waiting for a deferred reply excepted).
    func expireIdleConnections() {
        let t = now()
        for c in Array(connections.values) where !c.subscribed && c.waitingFor == nil && t - c.lastActivity > daemon.config.idleTimeout {
            if c.closeAfterFlush {
                // Told already; a client that still does not read is dropped after a grace period.
                if t - c.lastActivity > daemon.config.idleTimeout + 10 { drop(c) }
                continue
            }
            c.send(.error(ProtocolError(.timeout, "idle for \(JSON.format(daemon.config.idleTimeout)) s; closing")))
            c.closeAfterFlush = true
            flush(c)
        }
    }

    func acceptAll() {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK {
                    daemon.logger.log(.warning, "accept: \(String(cString: strerror(errno)))")
                }
                return
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var cred: (Int32, UInt32, UInt32) = (0, 0, 0)
            var len = socklen_t(MemoryLayout.size(ofValue: cred))
            guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 else { close(fd); continue }
            let name = ControlServer.userName(cred.1)
            let peer = Peer(pid: cred.0, uid: cred.1, gid: cred.2, name: name, admin: cred.1 == 0 || cred.1 == getuid() || isMember(uid: cred.1, gid: cred.2, name: name, of: adminGID))
            if let g = allowedGID, peer.uid != 0, peer.uid != getuid(), !isMember(uid: peer.uid, gid: peer.gid, name: name, of: g) {
                daemon.logger.log(.warning, "refused a connection from uid \(peer.uid) (\(name)), not in group \(daemon.config.allowedGroup ?? "")")
                rejectNow(fd, .error(ProtocolError(.permissionDenied, "user \(name) is not in the group \(daemon.config.allowedGroup ?? "")")))
                continue
            }
            if let busy = ControlServer.connectionLimit(peer: peer, open: connections.values.map(\.peer.uid), config: daemon.config) {
                rejectNow(fd, .error(ProtocolError(.busy, busy)))
                continue
            }
            let c = Connection(fd: fd, peer: peer, now: now())
            connections[fd] = c
            c.send(.hello(.object([
                ("server", .string("pruned")), ("protocol", .number(Double(ProtocolInfo.version))), ("version", .string(daemon.config.version)),
                ("boot_id", .string(daemon.bootID)), ("user", .string(name)), ("uid", .number(Double(peer.uid))), ("admin", .bool(peer.admin)),
                ("max_line", .number(Double(daemon.config.maxLineBytes))),
            ])))
            flush(c)
        }
    }

    /// Why a new connection from `peer` is refused while connections of the uids `open` are held,
    /// or nil. Every peer is bound by `maxConnections`; a non-admin peer also by
    /// `maxConnectionsPerUser` for its uid and by the slots reserved for root, the daemon's user
    /// and admins, so that one user cannot lock everybody else out.
    static func connectionLimit(peer: Peer, open: [UInt32], config: DaemonConfiguration) -> String? {
        let total = config.maxConnections
        if open.count >= total {
            return "too many connections (\(total), the daemon's limit --max-connections); try again later"
        }
        if peer.admin { return nil }
        let mine = open.filter { $0 == peer.uid }.count
        if mine >= config.maxConnectionsPerUser {
            return "too many connections from uid \(peer.uid) (\(peer.name)): \(mine) open, the per-user limit is "
                + "\(config.maxConnectionsPerUser) (--max-connections-per-user); close some and try again"
        }
        let reserved = max(0, min(config.reservedConnections, total))
        if open.count >= total - reserved {
            return "too many connections (\(open.count) of \(total) in use; the last \(reserved) are reserved for root, "
                + "the daemon's user and admins, --reserved-connections); try again later"
        }
        return nil
    }

    func rejectNow(_ fd: Int32, _ reply: Reply) {
        let bytes = Array((reply.rendered + "\n").utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        close(fd)
    }

    static func userName(_ uid: UInt32) -> String {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buf = [CChar](repeating: 0, count: 4096)
        if getpwuid_r(uid, &pwd, &buf, buf.count, &result) == 0, let r = result { return String(cString: r.pointee.pw_name) }
        return String(uid)
    }

    func isMember(uid: UInt32, gid: UInt32, name: String, of group: gid_t?) -> Bool {
        guard let group else { return false }
        if gid == group { return true }
        return PeerAccess.groupList(name: name, gid: gid).contains(group)
    }

    // MARK: reading and framing

    func readFrom(_ c: Connection) {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let k = recv(c.fd, &buf, buf.count, 0)
            if k > 0 {
                c.input.append(contentsOf: buf[0 ..< k])
                c.lastActivity = now()
                // An unterminated line already over the limit: answer and close.
                if c.input.count > daemon.config.maxLineBytes + 2, !c.input.contains(10) {
                    lineTooLong(c)
                    return
                }
                if k < buf.count || c.input.count > 4 * daemon.config.maxLineBytes { return }
                continue
            }
            if k == 0 {
                // Half-close: requests already read still get their replies.
                c.peerClosed = true
                return
            }
            if errno == EINTR { continue }
            if errno != EAGAIN && errno != EWOULDBLOCK { drop(c) }
            return
        }
    }

    func lineTooLong(_ c: Connection) {
        c.input = []
        c.send(.error(ProtocolError(.lineTooLong, "a request line may be at most \(daemon.config.maxLineBytes) bytes; closing")))
        c.closeAfterFlush = true
        flush(c)
    }

    /// Handles complete lines in order until one needs a deferred reply.
    func processLines(_ c: Connection) {
        var start = 0
        defer { if start > 0 { c.input.removeFirst(min(start, c.input.count)) } }
        // Backpressure: a client that does not read its replies gets no more requests handled.
        let gate = min(1 << 20, daemon.config.outputLimitBytes)
        while c.waitingFor == nil, !c.closeAfterFlush, connections[c.fd] != nil, c.pendingOutput < gate {
            guard let nl = c.input[start...].firstIndex(of: 10) else {
                if c.input.count - start > daemon.config.maxLineBytes { start = c.input.count; lineTooLong(c) }
                return
            }
            var end = nl
            if end > start && c.input[end - 1] == 13 { end -= 1 }
            let bytes = c.input[start ..< end]
            start = nl + 1
            if bytes.count > daemon.config.maxLineBytes { start = c.input.count; lineTooLong(c); return }
            if bytes.allSatisfy({ $0 == 32 || $0 == 9 }) { continue }
            guard let line = String(validating: bytes, as: UTF8.self) else {
                c.send(.error(ProtocolError(.badEncoding, "the request is not valid UTF-8")))
                continue
            }
            let request: Request
            do { request = try Request.parse(line) } catch let e as ProtocolError {
                c.send(.error(e))
                continue
            } catch {
                c.send(.error(ProtocolError(.internal, "\(error)")))
                continue
            }
            switch daemon.handle(request, peer: c.peer) {
            case .reply(let r): c.send(r)
            case .deferred(let token): c.waitingFor = token
            case .close(let r): c.send(r); c.closeAfterFlush = true
            case .subscribe(let r, let cursor, let run, let group):
                c.send(r)
                c.subscribed = true
                c.cursor = cursor
                c.filterRun = run
                c.filterGroup = group
                deliverEvents(to: c)
            case .unsubscribe(let r):
                c.subscribed = false
                c.send(r)
            }
        }
    }

    // MARK: deferred replies and events

    func deliverCompletions() {
        for (token, reply) in daemon.takeCompletions() {
            guard let c = connections.values.first(where: { $0.waitingFor == token }) else { continue }
            c.send(reply)
            c.waitingFor = nil
            c.lastActivity = now()
        }
    }

    func deliverEvents() {
        for c in connections.values where c.subscribed { deliverEvents(to: c) }
    }

    func deliverEvents(to c: Connection) {
        let batch = daemon.events(from: c.cursor)
        for e in batch {
            c.cursor = e.seq + 1
            if let r = c.filterRun, e.run != r { continue }
            if let g = c.filterGroup, e.group != g { continue }
            c.send(.event(e.json))
        }
        if c.pendingOutput > daemon.config.outputLimitBytes {
            daemon.logger.log(.warning, "closing a subscriber (uid \(c.peer.uid)) that stopped reading: \(c.pendingOutput) bytes unsent; it can reconnect with since=")
            drop(c)
        }
    }

    // MARK: writing

    func flush(_ c: Connection) {
        guard connections[c.fd] != nil else { return }
        while c.pendingOutput > 0 {
            let k = c.output.withUnsafeBytes { raw in
                raw.baseAddress.map { send(c.fd, $0 + c.outputStart, c.pendingOutput, Int32(MSG_NOSIGNAL)) } ?? 0
            }
            if k > 0 { c.outputStart += k; continue }
            if k < 0 && errno == EINTR { continue }
            if k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
            drop(c)
            return
        }
        if c.outputStart > 0 && (c.pendingOutput == 0 || c.outputStart > 1 << 16) {
            c.output.removeFirst(c.outputStart)
            c.outputStart = 0
        }
        if c.pendingOutput == 0 && c.closeAfterFlush { drop(c) }
        else if c.pendingOutput > daemon.config.outputLimitBytes {
            daemon.logger.log(.warning, "closing a connection (uid \(c.peer.uid)) that does not read its replies")
            drop(c)
        }
    }

    func flushAll(deadline: Double) {
        for c in Array(connections.values) { c.closeAfterFlush = true; flush(c) }
        while !connections.isEmpty && now() < deadline {
            var pfds = connections.values.map { pollfd(fd: $0.fd, events: Int16(POLLOUT), revents: 0) }
            _ = poll(&pfds, nfds_t(pfds.count), 100)
            for c in Array(connections.values) { flush(c) }
        }
    }

    func drop(_ c: Connection) {
        guard connections.removeValue(forKey: c.fd) != nil else { return }
        close(c.fd)
    }

    func shutdown() {
        for c in Array(connections.values) { drop(c) }
        if let boundPath {
            close(listenFD)
            unlink(boundPath)
        }
        signalPipeWrite = -1
        signal(SIGTERM, SIG_DFL)
        signal(SIGINT, SIG_DFL)
        close(wakeRead)
        close(wakeWrite)
    }
}
