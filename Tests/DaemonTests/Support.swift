// Shared helpers for daemon tests: an in-process daemon on a temp state dir and a short socket
// path, a blocking line client over the real Unix socket, and bounded polling.
import Control
import ControlClient
@testable import Daemon
import Foundation
import PrunedJSON
import Testing
import TestSupport

/// A tiny real run: Conv4 at quarter width on 1024 Fashion-MNIST images (16 steps per epoch).
func tinySpec(epochs: Int = 2, seed: Int = 1, everySteps: Int = 4, trainLimit: Int = 1024, extra: String = "") -> String {
    #"{"model":"conv4","width":0.25,"dataset":{"kind":"fashion_mnist","path":"\#(fashionMNIST)","train_limit":\#(trainLimit),"test_limit":256},"#
        + #""epochs":\#(epochs),"batch_size":64,"seed":\#(seed),"checkpoint":{"every_steps":\#(everySteps),"keep_last":3}\#(extra)}"#
}

/// Polls `condition` every 20 ms until it holds or `timeout` seconds pass.
@discardableResult
func waitFor(_ timeout: Double = 60, _ condition: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}

/// A daemon running in this process on its own thread.
final class TestDaemon {
    let dir: String
    let socketPath: String
    let daemon: Daemon
    let thread: Thread
    let done = DispatchSemaphore(value: 0)
    init(dir: String? = nil, tweak: (inout DaemonConfiguration) -> Void = { _ in }) throws {
        self.dir = dir ?? makeTempDir("d")
        socketPath = self.dir + "/s"
        var c = DaemonConfiguration(stateDirectory: self.dir + "/state")
        c.socketPath = socketPath
        c.threadsPerRun = 2
        tweak(&c)
        daemon = try Daemon(configuration: c, logger: Logger(journal: false, capture: true, echo: false))
        let d = daemon
        let sem = done
        let box = ErrorBox()
        thread = Thread {
            do { try d.run() } catch { box.error = error }
            sem.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
        let path = socketPath
        waitFor(10) { (try? TestClient(path)) != nil }
        if let e = box.error { throw e }
    }

    /// Stops like SIGTERM and waits for the loop to exit.
    func stop() {
        daemon.requestStop("test stop")
        _ = done.wait(timeout: .now() + 120)
    }

    func waitExit(_ seconds: Double = 120) -> Bool { done.wait(timeout: .now() + seconds) == .success }

    func client() throws -> TestClient { try TestClient(socketPath) }
}

final class ErrorBox: @unchecked Sendable { var error: Error? }

struct ClientError: Error, CustomStringConvertible { let description: String }

/// A blocking client: one connection, line-oriented, with a receive timeout.
final class TestClient {
    let fd: Int32
    var buffer: [UInt8] = []
    var hello: JSON = .null

    init(_ path: String, timeout: Double = 30, readHello: Bool = true) throws {
        // The fd is stored only once connected: a failed init must not reach deinit's close
        // (a double close would close some other thread's newly opened descriptor).
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw ClientError(description: "socket") }
        let rc = UnixSocketAddress.withAddress(path) { connect(s, $0, $1) }
        guard rc == 0 else { let e = String(cString: strerror(errno)); close(s); throw ClientError(description: "connect \(path): \(e)") }
        fd = s
        setTimeout(timeout)
        if readHello {
            guard case .hello(let j) = try Reply.parse(try readLine()) else { throw ClientError(description: "no HELLO") }
            hello = j
        }
    }

    deinit { close(fd) }

    func setTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func sendRaw(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                raw.baseAddress.map { Glibc.send(fd, $0 + done, bytes.count - done, Int32(MSG_NOSIGNAL)) } ?? 0
            }
            if n <= 0 { throw ClientError(description: "send: \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    func send(_ line: String) throws { try sendRaw(Array((line + "\n").utf8)) }

    /// The next line (without terminator); throws on timeout or EOF.
    func readLine() throws -> String {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeFirst(nl + 1)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n == 0 { throw ClientError(description: "EOF") }
            if n < 0 { throw ClientError(description: "recv: \(String(cString: strerror(errno)))") }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    /// True when the peer closed the connection (after any buffered lines).
    func atEOF() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n > 0 { buffer.append(contentsOf: chunk[..<n]); return false }
        return n == 0
    }

    func reply() throws -> Reply { try Reply.parse(try readLine()) }

    func request(_ line: String) throws -> Reply {
        try send(line)
        return try reply()
    }

    /// Sends a request that must succeed; returns its payload.
    func ok(_ line: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
        let r = try request(line)
        guard case .ok(let j) = r else {
            Issue.record("\(line.prefix(80)) → \(r.rendered)", sourceLocation: sourceLocation)
            throw ClientError(description: "not OK: \(r.rendered)")
        }
        return j
    }

    /// Sends a request that must fail with `code`; returns the message.
    @discardableResult
    func err(_ line: String, _ code: ErrorCode, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let r = try request(line)
        guard case .error(let e) = r, e.code == code else {
            Issue.record("\(line.prefix(80)) → \(r.rendered.prefix(300)), expected \(code.rawValue)", sourceLocation: sourceLocation)
            return ""
        }
        return e.message
    }

    func state(_ id: String) throws -> String { try ok("show \(id)")["state"]?.stringValue ?? "" }
}
