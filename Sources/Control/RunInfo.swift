// A run as replies carry it. There is one shape on the wire: the full record (`show`, and the
// replies of `set`, `priority` and the requests that change a run's state) and the short form
// (each run of `list`, `status`'s `running`, the `run` of a `submit` or `fork` reply) have the
// same keys in the same places; the short form only leaves the full record's extra fields out.
// The daemon encodes its ledger record through this type (RunRecord.info); prunectl and the
// tests decode replies with it.
import PrunedJSON

/// How far a run's training has got.
public struct RunProgress: Equatable, Sendable {
    public var epochsDone: Int
    public var epochs: Int
    /// Steps done in the current epoch.
    public var step: Int
    /// 0 until the run has started.
    public var stepsPerEpoch: Int
    /// A moving average of the training speed; nil before the run has taken steps.
    public var imagesPerSecond: Double?

    public init(epochsDone: Int, epochs: Int, step: Int, stepsPerEpoch: Int, imagesPerSecond: Double? = nil) {
        self.epochsDone = epochsDone
        self.epochs = epochs
        self.step = step
        self.stepsPerEpoch = stepsPerEpoch
        self.imagesPerSecond = imagesPerSecond
    }

    public var json: JSON {
        .object([("epochs_done", .number(Double(epochsDone))), ("epochs", .number(Double(epochs))),
                 ("step", .number(Double(step))), ("steps_per_epoch", .number(Double(stepsPerEpoch))),
                 ("images_per_second", imagesPerSecond.map { .number($0) } ?? .null)])
    }

    public init(json: JSON) throws {
        let f = try PayloadReader(json, "run progress")
        epochsDone = try f.int("epochs_done")
        epochs = try f.int("epochs")
        step = try f.int("step")
        stepsPerEpoch = try f.int("steps_per_epoch")
        imagesPerSecond = try f.optionalDouble("images_per_second")
    }
}

/// One run, in the full record or the short form (`details` and `shown` nil).
public struct RunInfo: Equatable, Sendable {
    /// Replies of the requests that change a run's state only: whether this request changed it.
    public var changed: Bool?
    public var id: RunID
    public var state: RunState
    public var ownerName: String
    public var group: String?
    public var tags: [String]
    public var priority: Int
    /// From the spec.
    public var name: String
    public var model: String?
    /// Why it failed or was interrupted.
    public var reason: String?
    public var progress: RunProgress
    public var lastTestAcc: Double?
    public var bestTestAcc: Double?
    /// A Slurm run's options and job; nil for a run that executes in the daemon.
    public var slurm: SlurmRun?
    /// The full record's other fields; nil in the short form.
    public var details: Details?
    /// What `show` adds; nil elsewhere.
    public var shown: Shown?

    public var executor: Executor { slurm == nil ? .local : .slurm }

    /// The fields only the full record has.
    public struct Details: Equatable, Sendable {
        public var owner: UInt32
        /// Submission order (FIFO among equal priorities).
        public var order: Int
        public var created: Double
        /// The latest start.
        public var started: Double?
        public var finished: Double?
        public var cancelledBy: UInt32?
        /// "pause" or "cancel" while one is being carried out.
        public var pending: String?
        public var starts: Int
        public var forkOf: String?
        public var forkCheckpoint: String?
        public var lastCheckpoint: String?
        public var lastInstability: Double?
        /// How the run was asked for (preset or fork source, and overrides).
        public var source: JSON
        /// The canonical run spec.
        public var spec: JSON

        public init(owner: UInt32, order: Int, created: Double, started: Double? = nil, finished: Double? = nil,
                    cancelledBy: UInt32? = nil, pending: String? = nil, starts: Int = 0, forkOf: String? = nil,
                    forkCheckpoint: String? = nil, lastCheckpoint: String? = nil, lastInstability: Double? = nil,
                    source: JSON = .null, spec: JSON) {
            self.owner = owner
            self.order = order
            self.created = created
            self.started = started
            self.finished = finished
            self.cancelledBy = cancelledBy
            self.pending = pending
            self.starts = starts
            self.forkOf = forkOf
            self.forkCheckpoint = forkCheckpoint
            self.lastCheckpoint = lastCheckpoint
            self.lastInstability = lastInstability
            self.source = source
            self.spec = spec
        }
    }

    /// What `show` adds to the full record.
    public struct Shown: Equatable, Sendable {
        /// The run's directory.
        public var directory: String
        /// A Slurm run's situation in one line.
        public var slurmStatus: String?
        /// Checkpoint file names, oldest first.
        public var checkpoints: [String]
        /// The run's summary.json once it has finished.
        public var summary: JSON?

        public init(directory: String, slurmStatus: String? = nil, checkpoints: [String] = [], summary: JSON? = nil) {
            self.directory = directory
            self.slurmStatus = slurmStatus
            self.checkpoints = checkpoints
            self.summary = summary
        }
    }

    public init(id: RunID, state: RunState, ownerName: String, group: String? = nil, tags: [String] = [], priority: Int = 0,
                name: String = "", model: String? = nil, reason: String? = nil, progress: RunProgress,
                lastTestAcc: Double? = nil, bestTestAcc: Double? = nil, slurm: SlurmRun? = nil,
                details: Details? = nil, shown: Shown? = nil, changed: Bool? = nil) {
        self.id = id
        self.state = state
        self.ownerName = ownerName
        self.group = group
        self.tags = tags
        self.priority = priority
        self.name = name
        self.model = model
        self.reason = reason
        self.progress = progress
        self.lastTestAcc = lastTestAcc
        self.bestTestAcc = bestTestAcc
        self.slurm = slurm
        self.details = details
        self.shown = shown
        self.changed = changed
    }

    /// The short form of this run.
    public var short: RunInfo {
        var r = self
        r.changed = nil
        r.details = nil
        r.shown = nil
        return r
    }

    /// The record as replies (and the daemon's ledger) write it. Keys in this order: `changed`,
    /// `id`, `state`, `owner`, `owner_name`, `group`, `tags`, `priority`, `order`, `name`,
    /// `model`, `created`, `started`, `finished`, `reason`, `cancelled_by`, `pending`, `starts`,
    /// `fork_of`, `fork_checkpoint`, `progress`, `last_checkpoint`, `last_test_acc`,
    /// `best_test_acc`, `last_instability`, `source`, `spec`, `executor`, `slurm`, `directory`,
    /// `slurm_status`, `checkpoints`, `summary`; each only where the form has it.
    public var json: JSON {
        func number(_ d: Double?) -> JSON { d.map { .number($0) } ?? .null }
        func string(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }
        var pairs: [(String, JSON)] = []
        if let changed { pairs.append(("changed", .bool(changed))) }
        pairs += [("id", .string(id.description)), ("state", .string(state.rawValue))]
        if let d = details { pairs.append(("owner", .number(Double(d.owner)))) }
        pairs += [("owner_name", .string(ownerName)), ("group", string(group)), ("tags", .array(tags.map { .string($0) })),
                  ("priority", .number(Double(priority)))]
        if let d = details { pairs.append(("order", .number(Double(d.order)))) }
        pairs += [("name", .string(name)), ("model", string(model))]
        if let d = details { pairs += [("created", .number(d.created)), ("started", number(d.started)), ("finished", number(d.finished))] }
        pairs.append(("reason", string(reason)))
        if let d = details {
            pairs += [("cancelled_by", number(d.cancelledBy.map(Double.init))), ("pending", string(d.pending)),
                      ("starts", .number(Double(d.starts))), ("fork_of", string(d.forkOf)), ("fork_checkpoint", string(d.forkCheckpoint))]
        }
        pairs.append(("progress", progress.json))
        if let d = details { pairs.append(("last_checkpoint", string(d.lastCheckpoint))) }
        pairs += [("last_test_acc", number(lastTestAcc)), ("best_test_acc", number(bestTestAcc))]
        if let d = details { pairs += [("last_instability", number(d.lastInstability)), ("source", d.source), ("spec", d.spec)] }
        // Local runs have neither key (records stay as they were before executors existed).
        if let slurm { pairs += [("executor", .string(Executor.slurm.rawValue)), ("slurm", slurm.json)] }
        if let s = shown {
            pairs.append(("directory", .string(s.directory)))
            if let status = s.slurmStatus { pairs.append(("slurm_status", .string(status))) }
            pairs.append(("checkpoints", .array(s.checkpoints.map { .string($0) })))
            if let summary = s.summary { pairs.append(("summary", summary)) }
        }
        return .object(pairs)
    }

    /// Reads either form: the full record's fields when it has `spec`, show's when it has
    /// `directory`.
    public init(json: JSON) throws {
        let f = try PayloadReader(json, "run record")
        changed = try f.optionalBool("changed")
        id = try f.runID("id")
        state = try f.state("state")
        ownerName = try f.string("owner_name")
        group = try f.optionalString("group")
        tags = try f.strings("tags")
        priority = try f.int("priority")
        name = try f.string("name")
        model = try f.optionalString("model")
        reason = try f.optionalString("reason")
        progress = try RunProgress(json: f.value("progress"))
        lastTestAcc = try f.optionalDouble("last_test_acc")
        bestTestAcc = try f.optionalDouble("best_test_acc")
        switch try f.optional("executor", "local or slurm", { $0.stringValue.flatMap(Executor.init(rawValue:)) }) ?? .local {
        case .local: slurm = nil
        case .slurm:
            do { slurm = try SlurmRun(json: f.value("slurm")) } catch let e as ProtocolError where e.code == .badArgument {
                throw ProtocolError(.internal, "malformed run record: invalid Slurm options: \(e.message)")
            }
        }
        if f.has("spec") {
            details = Details(owner: try f.uid("owner"), order: try f.int("order"), created: try f.double("created"),
                              started: try f.optionalDouble("started"), finished: try f.optionalDouble("finished"),
                              cancelledBy: try f.optionalUID("cancelled_by"), pending: try f.optionalString("pending"),
                              starts: try f.int("starts"), forkOf: try f.optionalString("fork_of"),
                              forkCheckpoint: try f.optionalString("fork_checkpoint"), lastCheckpoint: try f.optionalString("last_checkpoint"),
                              lastInstability: try f.optionalDouble("last_instability"), source: json["source"] ?? .null,
                              spec: try f.value("spec"))
        }
        if f.has("directory") {
            shown = Shown(directory: try f.string("directory"), slurmStatus: try f.optionalString("slurm_status"),
                          checkpoints: try f.strings("checkpoints"), summary: try f.optional("summary", "a value", { $0 }))
        }
    }
}
