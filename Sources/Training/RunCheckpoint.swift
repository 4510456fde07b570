// A whole run's checkpoint: the engine state (Checkpointing.ModelState) plus the trainer's
// position (epochs done, LR steps, step inside the epoch and that epoch's partial training
// result), the epoch records so far, the spec and provenance. Randomness needs no state: every
// stream derives from (seed, purpose, epoch, position) or from counters saved with the pruner.
import Checkpointing
import Engine
import Foundation
import PrunedJSON

public enum RunCheckpoint {
    /// Captures everything an exact resume needs.
    public static func snapshot(_ t: Trainer, records: [EpochRecord]) -> Snapshot {
        var s = Snapshot()
        let model = ModelState.capture(network: t.network, optimizer: t.optimizer, pruner: t.pruner, into: &s)
        s.metadata = .object([
            ("format_version", .number(Double(CheckpointFile.version))),
            ("provenance", Provenance.json(threads: t.context.threads)),
            ("spec", t.spec.json),
            ("run", .object([
                ("epochs_completed", .number(Double(t.epochsCompleted))), ("lr_steps", .number(Double(t.lrSteps))),
                ("step_in_epoch", .number(Double(t.stepInEpoch))), ("steps_per_epoch", .number(Double(t.stepsPerEpoch))),
                ("partial_train", encode(t.partialTrain)),
            ])),
            ("model", model),
            ("records", .array(records.map(encode))),
        ])
        return s
    }

    /// The spec recorded in a checkpoint.
    public static func recordedSpec(_ s: Snapshot) throws -> RunSpec {
        guard let j = s.metadata["spec"] else { throw CheckpointError.corruptMetadata("no spec") }
        do { return try RunSpec(json: j) } catch { throw CheckpointError.corruptMetadata("recorded spec does not parse: \(error)") }
    }

    /// Canonical text of a spec for comparison; checkpoint cadence may change on resume.
    public static func comparable(_ spec: RunSpec) -> String {
        var s = spec
        s.checkpoint = nil
        return s.json.rendered
    }

    /// Checks `s` against trainer `t` (whose spec may differ from the recorded one only when
    /// forking) and returns the restore action and the recorded epoch records. Nothing in `t`
    /// changes until the action runs.
    public static func prepareRestore(_ s: Snapshot, into t: Trainer, fork: Bool = false) throws -> (apply: () -> Void, records: [EpochRecord]) {
        let recorded = try recordedSpec(s)
        if !fork && comparable(recorded) != comparable(t.spec) {
            throw CheckpointError.stateMismatch("the run spec differs from the one recorded in the checkpoint (use --fork to continue under the new spec)")
        }
        let model = try ModelState.prepareRestore(s, network: t.network, optimizer: t.optimizer, pruner: t.pruner, fork: fork)
        guard let run = s.metadata["run"], let epochs = run["epochs_completed"]?.intValue, let lr = run["lr_steps"]?.intValue,
              let step = run["step_in_epoch"]?.intValue, let partialJSON = run["partial_train"], let partial = decodeResult(partialJSON),
              let recordsJSON = s.metadata["records"]?.arrayValue
        else { throw CheckpointError.corruptMetadata("run position or records missing") }
        guard epochs >= 0, lr >= 0, lr <= epochs, step >= 0, step <= t.stepsPerEpoch else {
            throw CheckpointError.stateMismatch("position (epoch \(epochs), step \(step)) does not fit \(t.stepsPerEpoch) steps per epoch")
        }
        if step > 0, let recordedSteps = run["steps_per_epoch"]?.intValue, recordedSteps != t.stepsPerEpoch {
            throw CheckpointError.stateMismatch("the checkpoint is inside an epoch of \(recordedSteps) steps; this run has \(t.stepsPerEpoch)")
        }
        guard epochs <= t.spec.epochs else {
            throw CheckpointError.stateMismatch("the checkpoint has \(epochs) epochs done, the spec asks for \(t.spec.epochs)")
        }
        var records: [EpochRecord] = []
        for (i, r) in recordsJSON.enumerated() {
            guard let rec = decodeRecord(r) else { throw CheckpointError.corruptMetadata("epoch record \(i) is malformed") }
            records.append(rec)
        }
        guard records.count == epochs else { throw CheckpointError.corruptMetadata("\(records.count) epoch records for \(epochs) epochs") }
        return ({
            model()
            t.restoreProgress(epochsCompleted: epochs, lrSteps: lr, stepInEpoch: step, partialTrain: partial)
        }, records)
    }

    // MARK: exact JSON encoding (doubles as IEEE bit patterns in hex)

    static func bits(_ d: Double) -> JSON { .string(String(d.bitPattern, radix: 16)) }
    static func unbits(_ j: JSON?) -> Double? { j?.stringValue.flatMap { UInt64($0, radix: 16) }.map(Double.init(bitPattern:)) }

    static func encode(_ r: BatchResult) -> JSON {
        .object([("loss_sum", bits(r.lossSum)), ("top1", .number(Double(r.correctTop1))), ("top5", .number(Double(r.correctTop5))),
                 ("count", .number(Double(r.count)))])
    }

    static func decodeResult(_ j: JSON) -> BatchResult? {
        guard let l = unbits(j["loss_sum"]), let a = j["top1"]?.intValue, let b = j["top5"]?.intValue, let c = j["count"]?.intValue else { return nil }
        var r = BatchResult()
        r.lossSum = l; r.correctTop1 = a; r.correctTop5 = b; r.count = c
        return r
    }

    static func encode(_ r: EpochRecord) -> JSON {
        .object([
            ("epoch", .number(Double(r.epoch))), ("train", encode(r.train)), ("pre", encode(r.pre)), ("post", encode(r.post)),
            ("lr", bits(r.lr)), ("seconds", bits(r.seconds)), ("ips", bits(r.trainImagesPerSecond)), ("trained", .bool(r.trained)),
            ("pruning", r.pruning.map { .array($0.map { .object([("layer", .string($0.layer)), ("k", .number(Double($0.k))),
                                                                ("mean_score", bits($0.meanScore))]) }) } ?? .null),
            ("pruned_counts", .array(r.prunedCounts.map { .array([.string($0.0), .number(Double($0.1))]) })),
        ] + (r.macsPerImage.map { [("macs", JSON.number(Double($0)))] } ?? []))
    }

    static func decodeRecord(_ j: JSON) -> EpochRecord? {
        guard let epoch = j["epoch"]?.intValue, let tj = j["train"], let train = decodeResult(tj), let pj = j["pre"], let pre = decodeResult(pj),
              let qj = j["post"], let post = decodeResult(qj), let lr = unbits(j["lr"]), let sec = unbits(j["seconds"]),
              let ips = unbits(j["ips"]), let trained = j["trained"]?.boolValue, let counts = j["pruned_counts"]?.arrayValue
        else { return nil }
        var pruning: [LayerPruning]?
        if let items = j["pruning"]?.arrayValue {
            var list: [LayerPruning] = []
            for i in items {
                guard let layer = i["layer"]?.stringValue, let k = i["k"]?.intValue, let m = unbits(i["mean_score"]) else { return nil }
                list.append(LayerPruning(layer: layer, k: k, meanScore: m))
            }
            pruning = list
        }
        var pc: [(String, Int)] = []
        for c in counts {
            guard let pair = c.arrayValue, pair.count == 2, let n = pair[0].stringValue, let v = pair[1].intValue else { return nil }
            pc.append((n, v))
        }
        return EpochRecord(epoch: epoch, train: train, pre: pre, post: post, lr: lr, seconds: sec, trainImagesPerSecond: ips,
                           pruning: pruning, prunedCounts: pc, trained: trained, macsPerImage: j["macs"]?.intValue)
    }
}

/// Decides when to checkpoint during a run and writes checkpoints into `<out>/checkpoints`.
public final class Checkpointer {
    public let store: CheckpointStore
    public let policy: CheckpointSpec
    private var lastSave: Double
    private let clock: () -> Double
    /// Files written so far by this process.
    public private(set) var written: [String] = []

    public init(directory: String, policy: CheckpointSpec, clock: @escaping () -> Double = Trainer.monotonicSeconds) {
        store = CheckpointStore(directory: directory, keepLast: policy.keepLast, keepMilestones: policy.keepMilestones)
        self.policy = policy
        self.clock = clock
        lastSave = clock()
    }

    /// Whether the step just taken calls for a mid-epoch checkpoint.
    public func due(_ t: Trainer) -> Bool {
        if let k = policy.everySteps, t.optimizer.step % k == 0 { return true }
        if let s = policy.everySeconds, clock() - lastSave >= s { return true }
        return false
    }

    /// Writes a checkpoint of `t`. At an epoch boundary it is pinned as a milestone when the
    /// epoch just finished pruned (just after an event) or the next one will (just before).
    @discardableResult
    public func save(_ t: Trainer, records: [EpochRecord]) throws -> String {
        let bytes = try CheckpointFile.encode(RunCheckpoint.snapshot(t, records: records), level: policy.level)
        var milestone = false
        if t.atEpochBoundary, let p = t.pruner {
            let justPruned = records.last.map { !($0.pruning ?? []).isEmpty } ?? false
            milestone = justPruned || p.hasEvent(at: t.epochsCompleted)
        }
        let label = String(format: "e%05d-s%06d", t.epochsCompleted, t.stepInEpoch)
        let name = try store.write(bytes, label: label, milestone: milestone)
        lastSave = clock()
        written.append(name)
        return name
    }
}
