// The files of a run directory: spec.json (canonical spec), metrics.jsonl (one JSON object per
// epoch, appended and fsynced), checkpoints/ (see Checkpointing), summary.json (written
// atomically at the end), all written through Checkpointing's DurableFile.
import Checkpointing
import Engine
import Foundation
import PrunedJSON
import RunLayout
import Synchronization

/// Epoch records as metrics.jsonl lines.
public enum MetricsFormat {
    public static func json(_ r: EpochRecord) -> JSON {
        .object([
            ("epoch", .number(Double(r.epoch))),
            ("train_loss", .number(r.train.meanLoss)), ("train_acc", .number(r.train.top1)), ("train_acc5", .number(r.train.top5)),
            ("pre_test_loss", .number(r.pre.meanLoss)), ("pre_test_acc", .number(r.pre.top1)), ("pre_test_acc5", .number(r.pre.top5)),
            ("test_loss", .number(r.post.meanLoss)), ("test_acc", .number(r.post.top1)), ("test_acc5", .number(r.post.top5)),
            ("lr", .number(r.lr)), ("seconds", .number(r.seconds)), ("train_images_per_second", .number(r.trainImagesPerSecond)),
            ("trained", .bool(r.trained)),
        ] + (r.macsPerImage.map { [("macs_per_image", JSON.number(Double($0)))] } ?? []) + pruningFields(r))
    }

    static func pruningFields(_ r: EpochRecord) -> [(String, JSON)] {
        guard !r.prunedCounts.isEmpty else { return [] }
        var out: [(String, JSON)] = [
            ("pruned", .object(r.prunedCounts.map { ($0.0, .number(Double($0.1))) })),
            ("p_count", .number(Double(r.prunedCounts.reduce(0) { $0 + $1.1 }))),
            ("avg_pruned_score", r.averagePrunedScore.map { $0 < 0 ? JSON.null : .number($0) } ?? .null),
        ]
        if let events = r.pruning, !events.isEmpty {
            out.append(("prune_event", .object([
                ("layers", .array(events.map { .object([("layer", .string($0.layer)), ("k", .number(Double($0.k))),
                                                        ("mean_score", .number($0.meanScore))]) })),
                ("t_pre", .number(r.pre.top1)), ("t_post", .number(r.post.top1)),
                ("instability", r.instability.map { .number($0) } ?? .null),
                ("instability_points", r.instabilityPoints.map { .number($0) } ?? .null),
                ("stability", r.instability.map { .number(100 * (1 - $0)) } ?? .null),
            ])))
        }
        return out
    }
}

/// Per-run statistics of spec §6: stability over pruning epochs, best post-prune accuracy at
/// or after the last pruning epoch, and the generalization gap at that epoch.
public struct RunStatistics: Sendable {
    /// 1-based epoch of the last pruning epoch, 0 when none (or scratch only).
    public var lastPruningEpoch: Int
    public var meanStability: Double
    public var meanInstability: Double { 100 - meanStability }
    public var meanInstabilityPoints: Double
    public var bestTestAccuracy: Double
    public var bestEpoch: Int
    public var generalizationGap: Double

    public init?(_ records: [EpochRecord]) {
        guard !records.isEmpty else { return nil }
        let pruning = records.filter(\.isPruningEpoch)
        var last = pruning.map(\.epoch).max() ?? 0
        var used = pruning
        if last <= 1 { last = 0; used = [] }
        lastPruningEpoch = last
        let stabilities = used.compactMap(\.instability).map { 100 * (1 - $0) }
        meanStability = stabilities.isEmpty ? 100 : stabilities.reduce(0, +) / Double(stabilities.count)
        let points = used.compactMap(\.instabilityPoints)
        meanInstabilityPoints = points.isEmpty ? 0 : points.reduce(0, +) / Double(points.count)
        var best = records[0]
        var found = false
        for r in records where r.epoch >= last {
            if !found || r.post.top1 > best.post.top1 { best = r; found = true }
        }
        bestTestAccuracy = best.post.top1
        bestEpoch = best.epoch
        generalizationGap = best.train.top1 - best.post.top1
    }
}

/// What a finished run reports in summary.json.
public struct RunSummary: Sendable {
    public var spec: RunSpec
    public var records: [EpochRecord]
    public var threads: Int
    public var parameters: Int
    public var seconds: Double
    /// Units (filters, neurons or weights) of each pruned layer.
    public var totalUnits: [String: Int] = [:]
    /// The run stopped early on request (a checkpoint holds its state); no summary.json.
    public var interrupted = false
    /// The checkpoint the run resumed from, if any.
    public var resumedFrom: String?


    public var json: JSON {
        var pairs: [(String, JSON)] = [
            ("name", .string(spec.name)), ("model", .string(spec.architecture.rawValue)),
            ("dataset", .string(spec.data.kind.rawValue)), ("dataset_note", .string(datasetNote(spec.data.kind))),
            ("epochs", .number(Double(records.count))), ("parameters", .number(Double(parameters))),
            ("threads", .number(Double(threads))), ("seed", .number(Double(spec.seed))), ("seconds", .number(seconds)),
        ]
        if let last = records.last {
            pairs += [("final_train_acc", .number(last.train.top1)), ("final_test_acc", .number(last.post.top1)),
                      ("final_test_loss", .number(last.post.meanLoss))]
        }
        if let st = RunStatistics(records) {
            pairs += [("best_test_acc", .number(st.bestTestAccuracy)), ("best_epoch", .number(Double(st.bestEpoch))),
                      ("generalization_gap", .number(st.generalizationGap)),
                      ("last_pruning_epoch", .number(Double(st.lastPruningEpoch))),
                      ("mean_stability", .number(st.meanStability)), ("mean_instability", .number(st.meanInstability)),
                      ("mean_instability_points", .number(st.meanInstabilityPoints)),
                      ("pruning_epochs", .number(Double(records.filter(\.isPruningEpoch).count)))]
        }
        if let last = records.last, !last.prunedCounts.isEmpty, let plan = spec.pruning {
            pairs.append(("final_sparsity", .object(last.prunedCounts.map { name, count in
                let total = totalUnits[name] ?? 0
                return (name, .object([("pruned", .number(Double(count))), ("units", .number(Double(total))),
                                       ("fraction", .number(total > 0 ? Double(count) / Double(total) : 0)),
                                       ("planned_fraction", .number(plan.layers.first { $0.name == name }?.fraction ?? 0))]))
            })))
        }
        pairs.append(("spec", spec.json))
        return .object(pairs)
    }

    func datasetNote(_ kind: DatasetKind) -> String {
        switch kind {
        case .cifar10: return "CIFAR-10"
        case .cifar100: return "CIFAR-100"
        case .fashion_mnist: return "Fashion-MNIST (28x28 grey padded to 32x32, 3 planes); not CIFAR-10"
        case .mnist: return "MNIST (28x28 grey padded to 32x32, 3 planes); not CIFAR-10"
        }
    }
}

/// SIGTERM/SIGINT handling for foreground runs: the handler only sets a flag; the training
/// loop checks it between steps, checkpoints and returns. A second SIGINT exits at once.
/// SIGUSR1 asks for a checkpoint at the next step boundary without stopping.
public enum StopSignal {
    static let flag = Atomic<Bool>(false)
    static let checkpointFlag = Atomic<Bool>(false)

    public static func install() {
        _ = flag.load(ordering: .relaxed)
        _ = checkpointFlag.load(ordering: .relaxed)
        // A parent may have left the signals blocked (the mask survives exec): unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGUSR1)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        signal(SIGUSR1) { _ in StopSignal.checkpointFlag.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in StopSignal.flag.store(true, ordering: .relaxed) }
        signal(SIGINT) { _ in
            if StopSignal.flag.exchange(true, ordering: .relaxed) { _exit(130) }
        }
    }

    public static var requested: Bool { flag.load(ordering: .relaxed) }
    public static func request() { flag.store(true, ordering: .relaxed) }
    public static func reset() { flag.store(false, ordering: .relaxed); checkpointFlag.store(false, ordering: .relaxed) }
    /// Whether a checkpoint was requested (SIGUSR1) since the last call.
    public static func takeCheckpointRequest() -> Bool { checkpointFlag.exchange(false, ordering: .relaxed) }
}

/// How a foreground run treats an existing run directory and stop requests.
public struct RunOptions {
    /// Resume from a checkpoint even though the spec differs from the recorded one.
    public var fork = false
    /// Polled between training steps: true stops the run after a checkpoint.
    public var stopRequested: () -> Bool = { false }
    /// Polled between training steps: true writes a checkpoint now (and training continues).
    public var checkpointRequested: () -> Bool = { false }
    /// Called after each step (tests use it to stop at chosen points).
    public var afterStep: ((Trainer) -> Void)?
    /// Called after every checkpoint attempt with the file written, or the error (the previous
    /// checkpoint is then intact).
    public var onCheckpoint: ((_ file: String?, _ error: String?) -> Void)?
    /// Called when an epoch ends, after its metrics row is durable.
    public var onEpoch: ((EpochRecord) -> Void)?
    /// Called once the trainer is ready (data loaded, checkpoint restored): total epochs and
    /// steps per epoch, epochs already done, step within the current epoch.
    public var onStart: ((_ trainer: Trainer, _ resumedFrom: String?) -> Void)?
    /// Appended to the "stopped …; checkpoint written" line (the daemon says what happens next itself).
    public var stopHint = ", resume with the same command"
    /// Data already in memory (tests); nil loads the spec's dataset.
    public var data: PreparedData?
    /// Pauses in seconds before each retry of the checkpoint that ends the last epoch, which
    /// must be written before summary.json (one attempt, then one retry per delay).
    public var finalCheckpointRetryDelays: [Double] = [0.5, 1, 2]

    public init(fork: Bool = false, stopRequested: @escaping () -> Bool = { false }) {
        self.fork = fork
        self.stopRequested = stopRequested
    }
}

/// The checkpoint of the run's last epoch could not be written, even after retries: the run
/// is not complete (no summary.json); resuming it continues from the newest good checkpoint.
public struct FinalCheckpointFailed: Error, CustomStringConvertible {
    public let error: String
    public var description: String {
        "the final checkpoint could not be written: \(error); the run is not complete — `resume` it once the disk has space"
    }
}

/// Runs a spec in the foreground into `outDir`, calling `log` with human-readable progress.
public enum ForegroundRun {
    public static func execute(spec: RunSpec, outDir: String, threads: Int, log: (String) -> Void) throws -> RunSummary {
        try execute(spec: spec, outDir: outDir, threads: threads, options: RunOptions(), log: log)
    }

    /// Runs, or resumes from the newest good checkpoint in `outDir/checkpoints`. A finished run
    /// (summary.json present) is refused unless forking. Throws TrainingDiverged when the loss
    /// or the weights stop being finite (no checkpoint of that state is written) and
    /// FinalCheckpointFailed when the last epoch's checkpoint cannot be written; then there is
    /// no summary.json and the newest checkpoint is the last good one.
    public static func execute(spec: RunSpec, outDir: String, threads: Int, options: RunOptions,
                               log: (String) -> Void) throws -> RunSummary {
        let fm = FileManager.default
        let files = RunDirectory(outDir)
        let metricsPath = files.metrics
        let checkpointDir = files.checkpoints
        let policy = spec.checkpoint ?? CheckpointSpec()
        let checkpointer = Checkpointer(directory: checkpointDir, policy: policy)
        let resuming = !checkpointer.store.list().isEmpty
        if !resuming && fm.fileExists(atPath: metricsPath) && !fm.fileExists(atPath: checkpointDir) {
            throw FileError(path: outDir, problem: "already holds a run without checkpoints (metrics.jsonl exists); choose a new --out directory")
        }
        if !options.fork && fm.fileExists(atPath: files.summary) {
            throw FileError(path: outDir, problem: "already holds a finished run (summary.json exists); choose a new --out directory, "
                            + "or --fork to continue it under a new spec")
        }
        do { try fm.createDirectory(atPath: outDir, withIntermediateDirectories: true) } catch {
            throw FileError(path: outDir, problem: "cannot create the output directory (\(error.localizedDescription))")
        }
        let data: PreparedData
        if let d = options.data { data = d } else {
            log("loading \(spec.data.kind.rawValue) from \(spec.data.path)")
            data = try PreparedData.load(spec.data)
        }
        let trainer = try Trainer(spec: spec, data: data, threads: threads)
        var records: [EpochRecord] = []
        var resumedFrom: String?
        if resuming {
            var restore: (apply: () -> Void, records: [EpochRecord])?
            let loaded: CheckpointStore.Loaded?
            do {
                loaded = try checkpointer.store.loadNewest { snap in
                    restore = try RunCheckpoint.prepareRestore(snap, into: trainer, fork: options.fork)
                }
            } catch let e as CheckpointError {
                throw FileError(path: checkpointDir, problem: e.description)
            }
            for q in loaded?.quarantined ?? [] {
                log("checkpoint \(q.file) is damaged (\(q.error)); quarantined as \(q.file).corrupt, using the previous one")
            }
            if let loaded, let restore {
                restore.apply()
                records = restore.records
                resumedFrom = loaded.file
                let prov = loaded.snapshot.metadata["provenance"]
                if let t = prov?["threads"]?.intValue, t != threads {
                    log("note: the checkpoint was written with \(t) threads, this run uses \(threads): results will not be bit-identical")
                }
                if let b = prov?["build_id"]?.stringValue, b != Provenance.buildID {
                    log("note: the checkpoint was written by build \(b), this is \(Provenance.buildID)")
                }
                log("resuming from \(loaded.file): \(trainer.epochsCompleted) epochs done, step \(trainer.stepInEpoch) of epoch \(trainer.epochsCompleted + 1)"
                    + (options.fork ? " (forked under the new spec)" : ""))
            }
        }
        // The spec and the metrics on disk always match the checkpoint the run continues from.
        try DurableFile.write(spec.json.pretty + "\n", to: files.spec)
        try DurableFile.write(records.map { MetricsFormat.json($0).rendered + "\n" }.joined(), to: metricsPath)
        if resumedFrom == nil {
            log("\(spec.architecture.rawValue) (width \(JSON.format(spec.width)), \(trainer.network.parameterCount) parameters), "
                + "\(data.train.count) train / \(data.test.count) test images, \(spec.epochs) epochs, batch \(spec.batchSize), "
                + "seed \(spec.seed), \(threads) thread\(threads == 1 ? "" : "s")")
            if let sc = spec.scaling {
                log("schedule scaled from \(sc.fromEpochs) to \(spec.epochs) epochs"
                    + (sc.notes.isEmpty ? ", shape kept" : "; note: " + sc.notes.joined(separator: "; ")))
            }
        }
        options.onStart?(trainer, resumedFrom)
        let start = Trainer.monotonicSeconds()
        /// Writes a checkpoint; returns nil, or why the write failed (the previous checkpoint is
        /// then intact). A state that is no longer finite is never written: that throws.
        @discardableResult
        func checkpoint() throws -> String? {
            if let problem = trainer.nonFiniteState() { throw trainer.diverged(problem) }
            do {
                let name = try checkpointer.save(trainer, records: records)
                log("checkpoint \(name)")
                options.onCheckpoint?(name, nil)
                return nil
            } catch {
                log("checkpoint failed (the previous one is intact): \(error)")
                options.onCheckpoint?(nil, "\(error)")
                return "\(error)"
            }
        }
        /// Runs `body`, logging a divergence it throws with the checkpoint the run falls back to.
        @discardableResult
        func noteDivergence<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as TrainingDiverged {
                log("\(e); this state is not saved, "
                    + (checkpointer.store.list().last.map { "the last good checkpoint is \($0.file)" } ?? "there is no checkpoint")
                    + "; no summary.json")
                throw e
            }
        }
        /// The last epoch's checkpoint, retried; the run cannot complete without it.
        func finalCheckpoint() throws {
            var delays = options.finalCheckpointRetryDelays[...]
            while let failure = try checkpoint() {
                guard let delay = delays.popFirst() else { throw FinalCheckpointFailed(error: failure) }
                log(String(format: "retrying the final checkpoint in %g s", delay))
                if delay > 0 { Thread.sleep(forTimeInterval: delay) }
            }
        }
        var summary = RunSummary(spec: spec, records: records, threads: threads, parameters: trainer.network.parameterCount, seconds: 0)
        summary.resumedFrom = resumedFrom
        if let p = trainer.pruner { summary.totalUnits = Dictionary(uniqueKeysWithValues: zip(p.layers.map(\.name), p.kept.map(\.count))) }
        while trainer.epochsCompleted < spec.epochs {
            var stopped = false
            let record = try noteDivergence {
                try trainer.runEpoch { t in
                    options.afterStep?(t)
                    if options.stopRequested() { stopped = true; return true }
                    if options.checkpointRequested() {
                        log("checkpoint requested")
                        try checkpoint()
                    } else if checkpointer.due(t) {
                        try checkpoint()
                    }
                    return false
                }
            }
            guard let r = record else {
                let failure = try noteDivergence { try checkpoint() }
                log("stopped at step \(trainer.stepInEpoch) of epoch \(trainer.epochsCompleted + 1); "
                    + (failure == nil ? "checkpoint written" : "the checkpoint failed, the previous one is kept") + options.stopHint)
                summary.records = records
                summary.interrupted = stopped
                summary.seconds = Trainer.monotonicSeconds() - start
                return summary
            }
            records.append(r)
            var epochCheckpointFailed = false
            if trainer.epochsCompleted == spec.epochs {
                try noteDivergence { try finalCheckpoint() }
            } else {
                epochCheckpointFailed = try noteDivergence { try checkpoint() } != nil
            }
            try DurableFile.appendLine(MetricsFormat.json(r).rendered, to: metricsPath)
            options.onEpoch?(r)
            var line = String(format: "epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  lr %g  %.1f s (%.0f img/s)",
                              r.epoch, spec.epochs, r.train.meanLoss, r.train.top1, r.post.meanLoss, r.post.top1, r.lr, r.seconds,
                              r.trainImagesPerSecond)
            if let events = r.pruning, !events.isEmpty {
                line += "  pruned " + events.map { "\($0.layer) \($0.k)" }.joined(separator: ", ")
                line += String(format: "  pre %.2f%% → post %.2f%%", r.pre.top1, r.post.top1)
            }
            log(line)
            if options.stopRequested() && trainer.epochsCompleted < spec.epochs {
                log("stopped after epoch \(r.epoch); "
                    + (epochCheckpointFailed ? "the checkpoint failed, the previous one is kept" : "checkpoint written") + options.stopHint)
                summary.records = records
                summary.interrupted = true
                summary.seconds = Trainer.monotonicSeconds() - start
                return summary
            }
        }
        summary.records = records
        summary.seconds = Trainer.monotonicSeconds() - start
        try DurableFile.write(summary.json.pretty + "\n", to: files.summary)
        return summary
    }
}
