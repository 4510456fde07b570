// A blocking client for the control socket, shared by prunectl and the daemon benchmark: connect
// (reading the HELLO greeting), send requests, read reply lines with a timeout. Sockets only;
// the protocol itself lives in Control.
import Control
import Foundation
import PrunedJSON

public struct ClientError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

public final class ControlConnection {
    public let path: String
    public private(set) var hello: JSON = .null
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0

    /// Connects and reads the greeting. `timeout` bounds every later read (nil: wait forever).
    public init(path: String, timeout: Double? = 30) throws {
        self.path = path
        guard path.utf8.count <= UnixSocketAddress.maxPathBytes else { throw ClientError("socket path \(path) is too long (Unix limit 107 bytes)") }
        // A directory another user owns or can write to may hold a fake daemon: refuse it.
        do { try SocketDirectory.check(socketPath: path) } catch let e as SocketDirectoryError { throw ClientError(e.description) }
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw ClientError("socket: \(String(cString: strerror(errno)))") }
        let rc = UnixSocketAddress.withAddress(path) { connect(s, $0, $1) }
        guard rc == 0 else {
            let e = errno
            close(s)
            switch e {
            case ENOENT, ECONNREFUSED: throw ClientError("no pruned daemon answers on \(path) (\(String(cString: strerror(e)))); is it running? (systemctl start pruned.socket, or pruned daemon)")
            case EACCES: throw ClientError("permission denied on \(path): ask for membership of the daemon's group")
            default: throw ClientError("cannot connect to \(path): \(String(cString: strerror(e)))")
            }
        }
        fd = s
        setTimeout(timeout)
        let first = try readLine()
        switch try Reply.parse(first) {
        case .hello(let j): hello = j
        case .error(let e): throw e
        default: throw ClientError("\(path) did not greet with HELLO: \(first.prefix(80))")
        }
    }

    deinit { close(fd) }

    public func setTimeout(_ seconds: Double?) {
        let s = seconds ?? 0
        var tv = timeval(tv_sec: Int(s), tv_usec: Int((s - s.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    public func sendLine(_ line: String) throws {
        let bytes = Array((line + "\n").utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                raw.baseAddress.map { Glibc.send(fd, $0 + done, bytes.count - done, Int32(MSG_NOSIGNAL)) } ?? 0
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ClientError("lost the connection to the daemon: \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    public func send(_ request: Request) throws { try sendLine(request.rendered) }

    /// The next line from the daemon (without terminator).
    public func readLine() throws -> String {
        while true {
            if let nl = buffer[start...].firstIndex(of: 10) {
                let line = String(decoding: buffer[start ..< nl], as: UTF8.self)
                start = nl + 1
                if start > 1 << 16 || start == buffer.count { buffer.removeFirst(start); start = 0 }
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n > 0 { buffer.append(contentsOf: chunk[..<n]); continue }
            if n < 0 && errno == EINTR { continue }
            if n == 0 { throw ClientError("the daemon closed the connection") }
            if errno == EAGAIN || errno == EWOULDBLOCK { throw ClientError("no reply from the daemon within the timeout") }
            throw ClientError("reading from the daemon: \(String(cString: strerror(errno)))")
        }
    }

    public func readReply() throws -> Reply { try Reply.parse(try readLine()) }

    /// Sends one request and returns its OK payload; an ERR reply is thrown as ProtocolError.
    /// Events arriving meanwhile (on a subscribed connection) are passed to `onEvent`.
    @discardableResult
    public func call(_ request: Request, onEvent: (JSON) -> Void = { _ in }) throws -> JSON {
        try send(request)
        while true {
            switch try readReply() {
            case .ok(let j): return j
            case .error(let e): throw e
            case .event(let j): onEvent(j)
            case .hello: continue
            }
        }
    }
}
