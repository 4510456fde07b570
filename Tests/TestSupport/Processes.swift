// Running a program to completion from a test: its exit status and what it printed.
import Foundation

/// The outcome of `runTool`.
public struct ToolResult {
    public var status: Int32
    public var out: String
    public var err: String

    public init(status: Int32, out: String, err: String) {
        self.status = status
        self.out = out
        self.err = err
    }
}

/// Runs `executable` to completion (terminated after `limit` seconds) with the test's environment
/// minus `unset` plus `environment`, standard input from /dev/null; returns its exit status and
/// its standard output and error, read concurrently so that neither pipe can fill up.
public func runTool(_ executable: String, _ arguments: [String], environment: [String: String] = [:], unset: [String] = [],
                    limit: Double = 120) throws -> ToolResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for k in unset { env.removeValue(forKey: k) }
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    final class Box: @unchecked Sendable { var data = Data() }
    let group = DispatchGroup()
    let outBox = Box(), errBox = Box()
    group.enter()
    DispatchQueue.global().async { outBox.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    if group.wait(timeout: .now() + limit) == .timedOut { p.terminate(); group.wait() }
    p.waitUntilExit()
    return ToolResult(status: p.terminationStatus, out: String(decoding: outBox.data, as: UTF8.self),
                      err: String(decoding: errBox.data, as: UTF8.self))
}
