// The OK payloads of the verbs whose replies are neither a run record (RunInfo) nor the status
// (DaemonStatus) and that clients read field by field: version, list, submit and fork, a dry
// run, checkpoint, drain, metrics and logs. The daemon builds each reply from these types and
// prunectl decodes them; the key order of `json` is the one on the wire.
import PrunedJSON

/// `version`.
public struct VersionInfo: Equatable, Sendable {
    public var protocolVersion: Int
    /// The daemon's version.
    public var daemon: String
    /// The exact build.
    public var build: String
    public var bootID: String

    public init(protocolVersion: Int = ProtocolInfo.version, daemon: String, build: String, bootID: String) {
        self.protocolVersion = protocolVersion
        self.daemon = daemon
        self.build = build
        self.bootID = bootID
    }

    public var json: JSON {
        .object([("protocol", .number(Double(protocolVersion))), ("daemon", .string(daemon)),
                 ("build", .string(build)), ("boot_id", .string(bootID))])
    }

    public init(json: JSON) throws {
        let f = try PayloadReader(json, "version reply")
        protocolVersion = try f.int("protocol")
        daemon = try f.string("daemon")
        build = try f.string("build")
        bootID = try f.string("boot_id")
    }
}

/// `list`: the runs in the short form, in id order.
public struct RunList: Equatable, Sendable {
    public var runs: [RunInfo]

    public init(runs: [RunInfo]) { self.runs = runs }

    public var json: JSON { .object([("runs", .array(runs.map(\.json))), ("count", .number(Double(runs.count)))]) }

    public init(json: JSON) throws {
        let f = try PayloadReader(json, "list reply")
        runs = try f.array("runs").map(RunInfo.init(json:))
        guard try f.int("count") == runs.count else { throw f.malformed("count", "the number of runs") }
    }
}

/// `submit` and `fork`: the new run.
public struct SubmitReply: Equatable, Sendable {
    public var id: RunID
    /// queued, held, or running when it started at once.
    public var state: RunState
    /// The run in the short form.
    public var run: RunInfo

    public init(run: RunInfo) {
        id = run.id
        state = run.state
        self.run = run
    }

    public var json: JSON { .object([("id", .string(id.description)), ("state", .string(state.rawValue)), ("run", run.json)]) }

    public init(json: JSON) throws {
        let f = try PayloadReader(json, "submit reply")
        id = try f.runID("id")
        state = try f.state("state")
        run = try RunInfo(json: f.value("run"))
    }
}

/// `submit dry_run=true`: what the run would be; nothing was created.
public struct DryRunReply: Equatable, Sendable {
    /// The canonical spec the run would get.
    public var spec: JSON
    /// Per epoch its learning rate and pruning events, per layer its units (`pruned schedule`).
    public var schedule: JSON
    /// The schedule as `pruned schedule` prints it.
    public var scheduleText: String

    public init(spec: JSON, schedule: JSON, scheduleText: String) {
        self.spec = spec
        self.schedule = schedule
        self.scheduleText = scheduleText
    }

    public var json: JSON {
        .object([("dry_run", .bool(true)), ("spec", spec), ("schedule", schedule), ("schedule_text", .string(scheduleText))])
    }

    public init(json: JSON) throws {
        let f = try PayloadReader(json, "dry-run reply")
        guard try f.bool("dry_run") else { throw f.malformed("dry_run", "true") }
        spec = try f.value("spec")
        schedule = try f.value("schedule")
        scheduleText = try f.string("schedule_text")
    }
}

/// `checkpoint`: the file written.
public struct CheckpointReply: Equatable, Sendable {
    public var run: RunID
    public var checkpoint: String

    public init(run: RunID, checkpoint: String) {
        self.run = run
        self.checkpoint = checkpoint
    }

    public var json: JSON { .object([("run", .string(run.description)), ("checkpoint", .string(checkpoint))]) }

    public init(json: JSON) throws {
        let f = try PayloadReader(json, "checkpoint reply")
        run = try f.runID("run")
        checkpoint = try f.string("checkpoint")
    }
}

/// `drain`.
public struct DrainReply: Equatable, Sendable {
    /// finish or now; nil: not draining.
    public var draining: DrainMode?
    /// Runs running now.
    public var running: Int

    public init(draining: DrainMode?, running: Int) {
        self.draining = draining
        self.running = running
    }

    public var json: JSON { .object([("draining", draining.map { .string($0.rawValue) } ?? .null), ("running", .number(Double(running)))]) }

    public init(json: JSON) throws {
        let f = try PayloadReader(json, "drain reply")
        draining = try f.optional("draining", "finish or now", { $0.stringValue.flatMap(DrainMode.init(rawValue:)) })
        running = try f.int("running")
    }
}

/// `metrics`: rows of the run's metrics.jsonl (epochs) or its pruning events, as they are there.
public struct MetricsReply: Equatable, Sendable {
    public var run: RunID
    public var kind: MetricsKind
    public var rows: [JSON]

    public init(run: RunID, kind: MetricsKind, rows: [JSON]) {
        self.run = run
        self.kind = kind
        self.rows = rows
    }

    public var json: JSON { .object([("run", .string(run.description)), ("kind", .string(kind.rawValue)), ("rows", .array(rows))]) }

    public init(json: JSON) throws {
        let f = try PayloadReader(json, "metrics reply")
        run = try f.runID("run")
        kind = try f.required("kind", "epochs or prunes", { $0.stringValue.flatMap(MetricsKind.init(rawValue:)) })
        rows = try f.array("rows")
    }
}

/// `logs`: the last lines of the run's log.
public struct LogsReply: Equatable, Sendable {
    public var run: RunID
    public var lines: [String]

    public init(run: RunID, lines: [String]) {
        self.run = run
        self.lines = lines
    }

    public var json: JSON { .object([("run", .string(run.description)), ("lines", .array(lines.map { .string($0) }))]) }

    public init(json: JSON) throws {
        let f = try PayloadReader(json, "logs reply")
        run = try f.runID("run")
        lines = try f.strings("lines")
    }
}
