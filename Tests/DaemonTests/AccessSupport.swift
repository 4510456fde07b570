// Helpers for the access tests (socket directories, dataset access, per-user connection limits):
// directories with a chosen owner and mode, a listening "fake daemon" socket, and a python3
// client run as another uid through setpriv (processes run through TestSupport's runTool).
import ControlClient
import Foundation
import Testing
import TestSupport

/// The system python3 (uid 65534 cannot enter root's pyenv shims).
let systemPython = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
let setprivTool = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }
/// Spawning clients as other uids needs root, setpriv and a python3 that uid can run.
let canActAsOtherUsers = geteuid() == 0 && systemPython != nil && setprivTool != nil

/// Creates `path` (and its parents) with the given owner and mode (chown needs root).
func makeDirectory(_ path: String, mode: mode_t, owner: uid_t = 0, group: gid_t = 0) throws {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    guard chown(path, owner, group) == 0, chmod(path, mode) == 0 else {
        throw ClientError(description: "chown/chmod \(path): \(String(cString: strerror(errno)))")
    }
}

/// A listening Unix socket at `path`: the fake daemon a squatter would put there. `accepted()`
/// tells whether anybody connected to it.
final class FakeDaemonSocket {
    let fd: Int32
    init(_ path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0, UnixSocketAddress.withAddress(path, { bind(fd, $0, $1) }) == 0, listen(fd, 8) == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            throw ClientError(description: "fake daemon at \(path): \(e)")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }
    deinit { close(fd) }

    /// Whether a connection is waiting (somebody connected).
    func accepted() -> Bool {
        let c = accept(fd, nil, nil)
        if c >= 0 { close(c); return true }
        return false
    }
}

/// A python3 process running as `uid` (setpriv, no supplementary groups) that opens `count`
/// connections to `socket`, prints the first line each one receives, then holds them all open
/// until `release()` closes its standard input.
final class ConnectionHolder {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    private var buffer = Data()

    init(uid: uid_t, socket: String, count: Int) throws {
        guard let python = systemPython, let setpriv = setprivTool else { throw ClientError(description: "needs python3 and setpriv") }
        let script = """
        import socket, sys
        held = []
        for i in range(int(sys.argv[2])):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(20)
            try:
                s.connect(sys.argv[1])
                f = s.makefile("rb")
                line = f.readline().decode("utf-8", "replace").strip()
            except OSError as e:
                line = "CONNECT-FAILED " + str(e)
            print(line or "EOF", flush=True)
            held.append(s)
        sys.stdin.readline()
        """
        process.executableURL = URL(fileURLWithPath: setpriv)
        process.arguments = ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", python, "-c", script, socket, String(count)]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// The first line of each of the `count` connections, in order.
    func greetings(_ count: Int, timeout: Double = 60) -> [String] {
        var lines: [String] = []
        let end = Date().addingTimeInterval(timeout)
        while lines.count < count && Date() < end {
            if let nl = buffer.firstIndex(of: 10) {
                lines.append(String(decoding: buffer[buffer.startIndex ..< nl], as: UTF8.self))
                buffer.removeSubrange(buffer.startIndex ... nl)
                continue
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
        }
        return lines
    }

    func release() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}

/// Connects to `socket` as uid 65534 (setpriv, no supplementary groups), reads HELLO, sends
/// `line` and returns the reply line; HELLO must name uid 65534.
func requestAsNobody(_ socket: String, _ line: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let script = """
    import socket, sys
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(sys.argv[1])
    f = s.makefile("rb")
    print(f.readline().decode().strip())
    s.sendall(sys.argv[2].encode() + b"\\n")
    print(f.readline().decode().strip(), flush=True)
    """
    let r = try runTool(try #require(setprivTool), ["--reuid=65534", "--regid=65534", "--clear-groups", try #require(systemPython),
                                                    "-c", script, socket, line])
    let lines = r.out.split(separator: "\n").map(String.init)
    #expect(lines.count == 2 && lines.first?.contains("\"uid\":65534") == true, "\(r.out) \(r.err)", sourceLocation: sourceLocation)
    return lines.last ?? ""
}

