// A run's record: everything the daemon knows about one run. The ledger stores it whole (as
// `json`, the full record of the replies); replies carry it as a RunInfo (`info`), which is also
// where its JSON layout is written. `init(json:)` reads it back from a ledger line, accepting
// the lines of earlier versions and refusing damaged ones.
import Control
import PrunedJSON

/// Everything the daemon knows about one run; the ledger stores it whole.
public struct RunRecord: Equatable, Sendable {
    public var id: RunID
    public var state: RunState
    public var owner: UInt32
    public var ownerName: String
    public var group: String?
    public var tags: [String] = []
    public var priority: Int = 0
    /// Submission order (FIFO among equal priorities).
    public var order: Int
    /// The canonical run spec.
    public var spec: JSON
    /// How it was asked for: preset and overrides (informational).
    public var source: JSON = .null
    public var forkOf: String?
    public var forkCheckpoint: String?
    public var created: Double
    public var started: Double?
    public var finished: Double?
    public var reason: String?
    public var cancelledBy: UInt32?
    /// A pause or cancel that was requested but not yet carried out (survives a crash).
    public var pending: PendingStop?
    public var starts: Int = 0
    // Progress (durable as of the last ledger write; live values are kept in memory).
    public var epochsDone: Int = 0
    public var epochs: Int
    public var step: Int = 0
    public var stepsPerEpoch: Int = 0
    public var lastCheckpoint: String?
    public var lastTestAcc: Double?
    public var bestTestAcc: Double?
    public var lastInstability: Double?
    public var imagesPerSecond: Double?
    /// Where the run executes; a Slurm run also has `slurm` (its options and job).
    public var executor: Executor = .local
    public var slurm: SlurmRun?

    /// The run as replies carry it (the full record; `.short` for the short form).
    public var info: RunInfo {
        RunInfo(id: id, state: state, ownerName: ownerName, group: group, tags: tags, priority: priority,
                name: spec["name"]?.stringValue ?? "", model: spec["model"]?.stringValue, reason: reason,
                progress: RunProgress(epochsDone: epochsDone, epochs: epochs, step: step, stepsPerEpoch: stepsPerEpoch,
                                      imagesPerSecond: imagesPerSecond),
                lastTestAcc: lastTestAcc, bestTestAcc: bestTestAcc,
                slurm: executor == .slurm ? (slurm ?? SlurmRun(options: SlurmOptions())) : nil,
                details: RunInfo.Details(owner: owner, order: order, created: created, started: started, finished: finished,
                                         cancelledBy: cancelledBy, pending: pending?.rawValue, starts: starts, forkOf: forkOf,
                                         forkCheckpoint: forkCheckpoint, lastCheckpoint: lastCheckpoint,
                                         lastInstability: lastInstability, source: source, spec: spec))
    }

    /// The record as the ledger stores it: the full record of the replies.
    public var json: JSON { info.json }

    public init(id: RunID, state: RunState, owner: UInt32, ownerName: String, order: Int, spec: JSON, epochs: Int, created: Double) {
        self.id = id
        self.state = state
        self.owner = owner
        self.ownerName = ownerName
        self.order = order
        self.spec = spec
        self.epochs = epochs
        self.created = created
    }

    public init(json j: JSON) throws {
        func need<T>(_ v: T?, _ field: String) throws -> T {
            guard let v else { throw DaemonError("ledger record lacks a valid '\(field)'") }
            return v
        }
        id = try need(j["id"]?.stringValue.flatMap(RunID.init), "id")
        state = try need(j["state"]?.stringValue.flatMap(RunState.init(rawValue:)), "state")
        // A uid: an integer in 0…4294967295 (anything else is a damaged record, not a trap).
        func uid(_ field: String) throws -> UInt32? {
            guard let v = j[field], v != .null else { return nil }
            guard let n = v.intValue.flatMap({ UInt32(exactly: $0) }) else {
                throw DaemonError("ledger record has an invalid '\(field)' (\(v.rendered.prefix(40))); a uid is an integer in 0…\(UInt32.max)")
            }
            return n
        }
        owner = try need(try uid("owner"), "owner")
        ownerName = j["owner_name"]?.stringValue ?? String(owner)
        group = j["group"]?.stringValue
        tags = (j["tags"]?.arrayValue ?? []).compactMap(\.stringValue)
        priority = j["priority"]?.intValue ?? 0
        order = try need(j["order"]?.intValue, "order")
        spec = try need(j["spec"], "spec")
        source = j["source"] ?? .null
        forkOf = j["fork_of"]?.stringValue
        forkCheckpoint = j["fork_checkpoint"]?.stringValue
        created = j["created"]?.doubleValue ?? 0
        started = j["started"]?.doubleValue
        finished = j["finished"]?.doubleValue
        reason = j["reason"]?.stringValue
        cancelledBy = try uid("cancelled_by")
        pending = j["pending"]?.stringValue.flatMap(PendingStop.init(rawValue:))
        starts = j["starts"]?.intValue ?? 0
        let p = j["progress"]
        epochsDone = p?["epochs_done"]?.intValue ?? 0
        epochs = p?["epochs"]?.intValue ?? spec["epochs"]?.intValue ?? 0
        step = p?["step"]?.intValue ?? 0
        stepsPerEpoch = p?["steps_per_epoch"]?.intValue ?? 0
        imagesPerSecond = p?["images_per_second"]?.doubleValue
        lastCheckpoint = j["last_checkpoint"]?.stringValue
        lastTestAcc = j["last_test_acc"]?.doubleValue
        bestTestAcc = j["best_test_acc"]?.doubleValue
        lastInstability = j["last_instability"]?.doubleValue
        if let x = j["executor"]?.stringValue {
            guard let e = Executor(rawValue: x) else { throw DaemonError("ledger record has an unknown executor '\(x.prefix(20))'") }
            executor = e
        }
        if executor == .slurm {
            do { slurm = try SlurmRun(json: j["slurm"] ?? .object([])) } catch let e as ProtocolError {
                throw DaemonError("ledger record has invalid Slurm options: \(e.message)")
            }
        }
    }
}
