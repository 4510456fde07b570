// The one way a run executes (`pruned run`, the daemon's workers, Slurm tasks): into a run
// directory (RunLayout) whose files are spec.json (canonical spec), metrics.jsonl (one JSON
// object per epoch, appended and fsynced), checkpoints/ (see Checkpointing) and summary.json
// (written atomically at the end), all written through Checkpointing's DurableFile.
import Checkpointing
import Engine
import Foundation
import PrunedJSON
import RunLayout

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
        // `log` is kept by the execution only while this call lasts.
        try withoutActuallyEscaping(log) { log in
            let execution = try RunExecution(spec: spec, files: RunDirectory(outDir), threads: threads, options: options, log: log)
            return try execution.trainRemainingEpochs()
        }
    }
}

/// One execution of ForegroundRun: prepared on creation (directory claimed, data loaded, the
/// newest good checkpoint restored, spec.json and metrics.jsonl rewritten to match it), then
/// trained epoch by epoch with its checkpoints, metrics rows and log lines.
private final class RunExecution {
    let spec: RunSpec
    let files: RunDirectory
    let threads: Int
    let options: RunOptions
    let log: (String) -> Void
    let checkpointer: Checkpointer
    let trainer: Trainer
    /// Every finished epoch, those restored from the checkpoint included.
    var records: [EpochRecord] = []
    /// The checkpoint the run resumed from, if any.
    var resumedFrom: String?

    init(spec: RunSpec, files: RunDirectory, threads: Int, options: RunOptions, log: @escaping (String) -> Void) throws {
        self.spec = spec
        self.files = files
        self.threads = threads
        self.options = options
        self.log = log
        checkpointer = Checkpointer(directory: files.checkpoints, policy: spec.checkpoint ?? CheckpointSpec())
        let resuming = !checkpointer.store.list().isEmpty
        try RunExecution.claim(files, resuming: resuming, fork: options.fork)
        let data: PreparedData
        if let d = options.data { data = d } else {
            log("loading \(spec.data.kind.rawValue) from \(spec.data.path)")
            data = try PreparedData.load(spec.data)
        }
        trainer = try Trainer(spec: spec, data: data, threads: threads)
        for c in trainer.network.convolutions { c.algorithm = options.convolution }
        if resuming { try resume() }
        // The spec and the metrics on disk always match the checkpoint the run continues from.
        try DurableFile.write(spec.json.pretty + "\n", to: files.spec)
        try DurableFile.write(records.map { MetricsFormat.json($0).rendered + "\n" }.joined(), to: files.metrics)
        if resumedFrom == nil { announce(data) }
    }

    // MARK: preparing

    /// Refuses a directory whose run this one must not touch (one without checkpoints to resume
    /// from, or a finished one unless forking), then creates it.
    static func claim(_ files: RunDirectory, resuming: Bool, fork: Bool) throws {
        let fm = FileManager.default
        if !resuming && fm.fileExists(atPath: files.metrics) && !fm.fileExists(atPath: files.checkpoints) {
            throw FileError(path: files.path, problem: "already holds a run without checkpoints (metrics.jsonl exists); choose a new --out directory")
        }
        if !fork && fm.fileExists(atPath: files.summary) {
            throw FileError(path: files.path, problem: "already holds a finished run (summary.json exists); choose a new --out directory, "
                            + "or --fork to continue it under a new spec")
        }
        do { try fm.createDirectory(atPath: files.path, withIntermediateDirectories: true) } catch {
            throw FileError(path: files.path, problem: "cannot create the output directory (\(error.localizedDescription))")
        }
    }

    /// Restores the newest good checkpoint (damaged ones are quarantined and skipped) with the
    /// records it holds, noting a thread count or build that differs from the checkpoint's.
    func resume() throws {
        var restore: (apply: () -> Void, records: [EpochRecord])?
        let loaded: CheckpointStore.Loaded?
        do {
            loaded = try checkpointer.store.loadNewest { snap in
                restore = try RunCheckpoint.prepareRestore(snap, into: trainer, fork: options.fork)
            }
        } catch let e as CheckpointError {
            throw FileError(path: files.checkpoints, problem: e.description)
        }
        for q in loaded?.quarantined ?? [] {
            log("checkpoint \(q.file) is damaged (\(q.error)); quarantined as \(q.file).corrupt, using the previous one")
        }
        guard let loaded, let restore else { return }
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

    /// The opening lines of a fresh run: model, data, schedule and threads.
    func announce(_ data: PreparedData) {
        log("\(spec.architecture.rawValue) (width \(JSON.format(spec.width)), \(trainer.network.parameterCount) parameters), "
            + "\(data.train.count) train / \(data.test.count) test images, \(spec.epochs) epochs, batch \(spec.batchSize), "
            + "seed \(spec.seed), \(threads) thread\(threads == 1 ? "" : "s")"
            + (options.convolution == .automatic ? "" : ", convolutions by \(options.convolution.rawValue)"))
        if let sc = spec.scaling {
            log("schedule scaled from \(sc.fromEpochs) to \(spec.epochs) epochs"
                + (sc.notes.isEmpty ? ", shape kept" : "; note: " + sc.notes.joined(separator: "; ")))
        }
    }

    // MARK: training

    /// Trains the epochs left and returns the summary; summary.json is written once the last
    /// epoch and its checkpoint are durable. A stop request ends the run early at a step
    /// boundary or after an epoch, with a checkpoint (the summary says interrupted).
    func trainRemainingEpochs() throws -> RunSummary {
        options.onStart?(trainer, resumedFrom)
        let start = Trainer.monotonicSeconds()
        var summary = RunSummary(spec: spec, records: records, threads: threads, parameters: trainer.network.parameterCount, seconds: 0)
        summary.resumedFrom = resumedFrom
        if let p = trainer.pruner { summary.totalUnits = Dictionary(uniqueKeysWithValues: zip(p.layers.map(\.name), p.kept.map(\.count))) }
        func ended(interrupted: Bool) -> RunSummary {
            summary.records = records
            summary.interrupted = interrupted
            summary.seconds = Trainer.monotonicSeconds() - start
            return summary
        }
        while trainer.epochsCompleted < spec.epochs {
            // The trainer ends an epoch early only when a stop was requested.
            guard let r = try trainEpoch() else {
                try checkpointStopWithinEpoch()
                return ended(interrupted: true)
            }
            let checkpointFailed = try finishEpoch(r)
            if options.stopRequested() && trainer.epochsCompleted < spec.epochs {
                log("stopped after epoch \(r.epoch); "
                    + (checkpointFailed ? "the checkpoint failed, the previous one is kept" : "checkpoint written") + options.stopHint)
                return ended(interrupted: true)
            }
        }
        let done = ended(interrupted: false)
        try DurableFile.write(done.json.pretty + "\n", to: files.summary)
        return done
    }

    /// Trains the current epoch, checkpointing when the policy says so or when asked; nil when
    /// a stop request ended it at a step boundary.
    func trainEpoch() throws -> EpochRecord? {
        try noteDivergence {
            try trainer.runEpoch { t in
                options.afterStep?(t)
                if options.stopRequested() { return true }
                if options.checkpointRequested() {
                    log("checkpoint requested")
                    try checkpoint()
                } else if checkpointer.due(t) {
                    try checkpoint()
                }
                return false
            }
        }
    }

    /// Checkpoints the step boundary a stop request ended an epoch at.
    func checkpointStopWithinEpoch() throws {
        let failure = try noteDivergence { try checkpoint() }
        log("stopped at step \(trainer.stepInEpoch) of epoch \(trainer.epochsCompleted + 1); "
            + (failure == nil ? "checkpoint written" : "the checkpoint failed, the previous one is kept") + options.stopHint)
    }

    /// Completes a trained epoch: its checkpoint (the last epoch's retried, as the run cannot
    /// complete without it), its durable metrics row, the onEpoch hook and its log line.
    /// Returns whether the checkpoint failed (the previous one is then kept).
    func finishEpoch(_ r: EpochRecord) throws -> Bool {
        records.append(r)
        var checkpointFailed = false
        if trainer.epochsCompleted == spec.epochs {
            try noteDivergence { try finalCheckpoint() }
        } else {
            checkpointFailed = try noteDivergence { try checkpoint() } != nil
        }
        try DurableFile.appendLine(MetricsFormat.json(r).rendered, to: files.metrics)
        options.onEpoch?(r)
        var line = String(format: "epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  lr %g  %.1f s (%.0f img/s)",
                          r.epoch, spec.epochs, r.train.meanLoss, r.train.top1, r.post.meanLoss, r.post.top1, r.lr, r.seconds,
                          r.trainImagesPerSecond)
        if let events = r.pruning, !events.isEmpty {
            line += "  pruned " + events.map { "\($0.layer) \($0.k)" }.joined(separator: ", ")
            line += String(format: "  pre %.2f%% → post %.2f%%", r.pre.top1, r.post.top1)
        }
        log(line)
        return checkpointFailed
    }

    // MARK: checkpoints

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

    /// The last epoch's checkpoint, retried; the run cannot complete without it.
    func finalCheckpoint() throws {
        var delays = options.finalCheckpointRetryDelays[...]
        while let failure = try checkpoint() {
            guard let delay = delays.popFirst() else { throw FinalCheckpointFailed(error: failure) }
            log(String(format: "retrying the final checkpoint in %g s", delay))
            if delay > 0 { Thread.sleep(forTimeInterval: delay) }
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
}
