// Running Slurm's client commands (sbatch, squeue, scontrol, scancel) and reading their output.
// Commands are exec'd with an argv array (never through a shell), with a timeout; the parsing
// functions are pure and unit-tested on output captured from a real Slurm 22.05 cluster.
import Foundation

public enum SlurmCommands {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var timedOut: Bool
        /// stderr (else stdout) trimmed, for messages.
        public var message: String {
            let e = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return e.isEmpty ? stdout.trimmingCharacters(in: .whitespacesAndNewlines) : e
        }
    }

    /// The absolute path of `name` on `path` (default: this process's PATH), or nil.
    public static func which(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        for dir in (path ?? "/usr/bin:/bin").split(separator: ":") where !dir.isEmpty {
            let candidate = dir + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Runs `argv` (argv[0] looked up on PATH) with extra environment variables, killing it after
    /// `timeout` seconds. Throws when the program cannot be started.
    public static func run(_ argv: [String], environment extra: [String: String] = [:], timeout: Double = 30) throws -> Result {
        guard let name = argv.first else { throw DaemonError("no command") }
        guard let exe = name.hasPrefix("/") ? name : which(name) else {
            throw DaemonError("\(name) is not on the daemon's PATH (\(ProcessInfo.processInfo.environment["PATH"] ?? "unset"))")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = Array(argv.dropFirst())
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        // Both pipes are drained while the command runs (a full pipe would block it).
        final class Box: @unchecked Sendable { var data = Data() }
        let outData = Box(), errData = Box()
        let group = DispatchGroup()
        try p.run()
        group.enter()
        Thread.detachNewThread { outData.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        Thread.detachNewThread { errData.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while p.isRunning {
            if Date() > deadline {
                timedOut = true
                p.terminate()
                usleep(200_000)
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
                break
            }
            usleep(20_000)
        }
        p.waitUntilExit()
        _ = group.wait(timeout: .now() + 5)
        return Result(status: p.terminationStatus, stdout: String(decoding: outData.data, as: UTF8.self),
                      stderr: String(decoding: errData.data, as: UTF8.self), timedOut: timedOut)
    }

    /// The job id `sbatch --parsable` prints: `1234` or `1234;cluster`.
    public static func parseSbatch(_ stdout: String) -> String? {
        let line = stdout.split(separator: "\n").last.map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
        let id = String(line.split(separator: ";", omittingEmptySubsequences: false).first ?? "")
        guard !id.isEmpty, id.count <= 20, id.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return id
    }

    /// One array task as `squeue -h -r -t all -o '%i|%T|%N|%r'` lists it.
    public struct Task: Equatable, Sendable {
        public var jobID: String
        public var index: Int
        public var state: String
        public var node: String
        public var reason: String
    }

    /// The array tasks in squeue's output (lines of jobs that are not array tasks are skipped).
    /// With `-r` every task has its own line `JOB_INDEX|STATE|NODES|REASON`.
    public static func parseSqueue(_ stdout: String) -> [Task] {
        var tasks: [Task] = []
        for raw in stdout.split(separator: "\n") {
            let f = raw.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 4 else { continue }
            let id = f[0].split(separator: "_")
            guard id.count == 2, id[0].allSatisfy({ $0.isASCII && $0.isNumber }), !id[0].isEmpty,
                  id[1].count <= 9, let index = Int(id[1]), index >= 0 else { continue }
            tasks.append(Task(jobID: String(id[0]), index: index, state: f[1], node: f[2], reason: f[3]))
        }
        return tasks
    }

    /// Slurm job states after which the task will not run again by itself.
    public static let endedStates: Set<String> = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                                                  "BOOT_FAIL", "DEADLINE", "PREEMPTED", "SPECIAL_EXIT", "REVOKED"]

    /// Whether a failed command means "the controller could not be reached" (retry later)
    /// rather than "the controller refused" (the runs fail with its message).
    public static func isUnreachable(_ r: Result) -> Bool {
        if r.timedOut { return true }
        let m = r.message.lowercased()
        return ["unable to contact slurm controller", "socket timed out", "connection refused", "connect failure",
                "slurm_receive_msg", "zero bytes were transmitted", "communication connection failure"].contains { m.contains($0) }
    }
}
