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
