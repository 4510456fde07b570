// The `status` reply: the daemon at a glance. Built by the daemon, read by prunectl and the
// tests. Its `running` runs are run records in the short form (RunInfo).
import PrunedJSON

public struct DaemonStatus: Equatable, Sendable {
    /// The daemon's version.
    public var daemon: String
    public var protocolVersion: Int
    public var bootID: String
    /// Seconds since the daemon started.
    public var uptime: Double
    /// How many runs are in each state (Slurm runs included); a state without runs counts 0.
    public var runs: [RunState: Int]
    /// The same counts for Slurm runs only; nil (and not on the wire) while there are none.
    public var slurmRuns: [RunState: Int]?
    /// The running runs: local ones, then the Slurm runs whose task runs.
    public var running: [RunInfo]
    /// Runs trained at once, and threads per run.
    public var slots: Int
    public var threadsPerRun: Int
    public var draining: DrainMode?
    /// Why the daemon is stopping, while it is.
    public var stopping: String?
    /// The one-line summary systemd shows.
    public var status: String
    /// The sequence number of the next event.
    public var nextSeq: UInt64
    public var stateDirectory: String

    public init(daemon: String, protocolVersion: Int = ProtocolInfo.version, bootID: String, uptime: Double, runs: [RunState: Int],
                slurmRuns: [RunState: Int]? = nil, running: [RunInfo], slots: Int, threadsPerRun: Int, draining: DrainMode? = nil,
                stopping: String? = nil, status: String, nextSeq: UInt64, stateDirectory: String) {
        self.daemon = daemon
        self.protocolVersion = protocolVersion
        self.bootID = bootID
        self.uptime = uptime
        self.runs = runs
        self.slurmRuns = slurmRuns
        self.running = running
        self.slots = slots
        self.threadsPerRun = threadsPerRun
        self.draining = draining
        self.stopping = stopping
        self.status = status
        self.nextSeq = nextSeq
        self.stateDirectory = stateDirectory
    }

    public var json: JSON {
        func counts(_ c: [RunState: Int]) -> JSON { .object(RunState.allCases.map { ($0.rawValue, .number(Double(c[$0] ?? 0))) }) }
        var pairs: [(String, JSON)] = [
            ("daemon", .string(daemon)), ("protocol", .number(Double(protocolVersion))), ("boot_id", .string(bootID)),
            ("uptime", .number(uptime)), ("runs", counts(runs)),
        ]
        if let slurmRuns { pairs.append(("slurm_runs", counts(slurmRuns))) }
        return .object(pairs + [
            ("running", .array(running.map(\.json))),
            ("slots", .number(Double(slots))), ("threads_per_run", .number(Double(threadsPerRun))),
            ("draining", draining.map { .string($0.rawValue) } ?? .null), ("stopping", stopping.map { .string($0) } ?? .null),
            ("status", .string(status)), ("next_seq", .number(Double(nextSeq))), ("state_directory", .string(stateDirectory)),
        ])
    }

    public init(json: JSON) throws {
        let f = try PayloadReader(json, "status reply")
        // Counts per state; states this client does not know are left out.
        func counts(_ key: String) throws -> [RunState: Int]? {
            guard let v = json[key], v != .null else { return nil }
            guard case .object(let pairs) = v else { throw f.malformed(key, "an object of counts") }
            var out: [RunState: Int] = [:]
            for (name, n) in pairs {
                guard let state = RunState(rawValue: name) else { continue }
                guard let count = n.intValue else { throw f.malformed(key + "." + name, "an integer") }
                out[state] = count
            }
            return out
        }
        daemon = try f.string("daemon")
        protocolVersion = try f.int("protocol")
        bootID = try f.string("boot_id")
        uptime = try f.double("uptime")
        guard let runs = try counts("runs") else { throw ProtocolError(.internal, "malformed status reply: 'runs' is missing") }
        self.runs = runs
        slurmRuns = try counts("slurm_runs")
        running = try f.array("running").map(RunInfo.init(json:))
        slots = try f.int("slots")
        threadsPerRun = try f.int("threads_per_run")
        draining = try f.optional("draining", "finish or now", { $0.stringValue.flatMap(DrainMode.init(rawValue:)) })
        stopping = try f.optionalString("stopping")
        status = try f.string("status")
        nextSeq = try f.required("next_seq", "a sequence number", { $0.intValue.flatMap { UInt64(exactly: $0) } })
        stateDirectory = try f.string("state_directory")
    }
}
