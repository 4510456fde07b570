// DIR/progress.json: where a foreground run (`pruned run`, e.g. inside a Slurm array task) stands,
// for people and tools without a daemon. Written atomically with DurableFile.write (temp file,
// fsync, rename) when the run starts, at most every `interval` seconds while it trains, at each
// epoch end and checkpoint, and when it stops, finishes or fails. It hooks into ForegroundRun
// through RunOptions' callbacks only.
import Checkpointing
import Foundation
import PrunedJSON
import RunLayout

public final class ProgressFile {
    public enum State: String, Sendable {
        /// Training (or evaluating) now.
        case running
        /// Stopped on request after writing a checkpoint; running it again resumes.
        case stopped
        /// summary.json is written.
        case finished
        /// Ended by an error (`reason`); the newest checkpoint, if any, is intact.
        case failed
    }

    /// The file's path: DIR/progress.json.
    public let path: String
    /// Least seconds between two writes while stepping.
    public let interval: Double
    /// Called once, on the first write that fails (the run goes on without progress updates failing it).
    public var onWriteError: ((String) -> Void)?

    private let directory: String
    private let environment: [String: String]
    private let clock: () -> Double
    private let started = Date()
    private var trainer: Trainer?
    private var resumedFrom: String?
    private var lastWrite = -Double.infinity
    /// Images trained (as counted by imagesDone) and the clock at the last rate measurement.
    private var rateMark: (time: Double, images: Int)?
    private var imagesPerSecond: Double?
    private var lastTestAccuracy: Double?
    private var lastCheckpoint: String?
    private var reported = false

    /// `environment` supplies the Slurm ids (SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID, SLURM_JOB_ID,
    /// SLURM_RESTART_COUNT, SLURMD_NODENAME); `clock` is monotonic seconds.
    public init(directory: String, interval: Double = 2, environment: [String: String] = ProcessInfo.processInfo.environment,
                clock: @escaping () -> Double = Trainer.monotonicSeconds) {
        self.directory = directory
        path = RunDirectory(directory).progress
        self.interval = interval
        self.environment = environment
        self.clock = clock
    }

    /// Adds the progress hooks to `options`, after the callbacks already there.
    public func attach(to options: inout RunOptions) {
        let onStart = options.onStart, afterStep = options.afterStep, onEpoch = options.onEpoch, onCheckpoint = options.onCheckpoint
        options.onStart = { [self] trainer, resumed in
            onStart?(trainer, resumed)
            self.trainer = trainer
            resumedFrom = resumed
            rateMark = (clock(), imagesDone(trainer))
            write(.running)
        }
        options.afterStep = { [self] trainer in
            afterStep?(trainer)
            let now = clock()
            guard now - lastWrite >= interval else { return }
            measureRate(trainer, now: now)
            write(.running, now: now)
        }
        options.onEpoch = { [self] record in
            onEpoch?(record)
            lastTestAccuracy = record.post.top1
            if record.trainImagesPerSecond > 0 { imagesPerSecond = record.trainImagesPerSecond }
            // The epoch's evaluation is not training: restart the rate measurement after it.
            if let trainer { rateMark = (clock(), imagesDone(trainer)) }
            write(.running)
        }
        options.onCheckpoint = { [self] file, error in
            onCheckpoint?(file, error)
            if let file { lastCheckpoint = file }
        }
    }

    /// Records how ForegroundRun.execute returned: finished, or stopped after a checkpoint.
    public func ended(_ summary: RunSummary) {
        if summary.interrupted {
            write(.stopped, reason: "stopped on request; checkpoint \(lastCheckpoint ?? "written"), running the same command resumes")
        } else {
            write(.finished)
        }
    }

    /// Records that the run failed with `reason`. Nothing is written when the directory does not
    /// exist or already holds a finished run (summary.json): a refused start must not mark a
    /// finished run failed.
    public func failed(_ reason: String) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue,
              !FileManager.default.fileExists(atPath: RunDirectory(directory).summary) else { return }
        write(.failed, reason: reason)
    }

    /// The file's content for `state`.
    public func json(_ state: State, reason: String? = nil) -> JSON {
        var pairs: [(String, JSON)] = [
            ("state", .string(state.rawValue)),
            ("reason", reason.map { .string($0) } ?? .null),
        ]
        if let t = trainer {
            pairs += [
                ("epochs_done", .number(Double(t.epochsCompleted))), ("epochs", .number(Double(t.spec.epochs))),
                ("step", .number(Double(t.stepInEpoch))), ("steps_per_epoch", .number(Double(t.stepsPerEpoch))),
            ]
        } else {
            pairs += [("epochs_done", .null), ("epochs", .null), ("step", .null), ("steps_per_epoch", .null)]
        }
        pairs += [
            ("images_per_second", imagesPerSecond.map { .number(($0 * 10).rounded() / 10) } ?? .null),
            ("test_acc", lastTestAccuracy.map { .number($0) } ?? .null),
            ("checkpoint", lastCheckpoint.map { .string($0) } ?? .null),
            ("resumed_from", resumedFrom.map { .string($0) } ?? .null),
            ("hostname", .string(Self.hostname())), ("pid", .number(Double(getpid()))),
            ("started", .string(Self.timestamp(started))), ("updated", .string(Self.timestamp(Date()))),
            ("build_id", .string(Provenance.buildID)),
        ]
        let slurm = slurmFields()
        if !slurm.isEmpty { pairs.append(("slurm", .object(slurm))) }
        return .object(pairs)
    }

    /// Slurm's ids from the environment: integers as numbers, the node name as a string; the
    /// restart count is 0 inside a job that has not been restarted (Slurm sets it only on restarts).
    func slurmFields() -> [(String, JSON)] {
        let keys = [("array_job_id", "SLURM_ARRAY_JOB_ID"), ("array_task_id", "SLURM_ARRAY_TASK_ID"),
                    ("job_id", "SLURM_JOB_ID"), ("restart_count", "SLURM_RESTART_COUNT"), ("node", "SLURMD_NODENAME")]
        var out: [(String, JSON)] = []
        for (name, variable) in keys {
            guard let value = environment[variable] else {
                if variable == "SLURM_RESTART_COUNT", environment["SLURM_JOB_ID"] != nil { out.append((name, .number(0))) }
                continue
            }
            if name != "node", let n = Int(value) { out.append((name, .number(Double(n)))) } else { out.append((name, .string(value))) }
        }
        return out
    }

    private func imagesDone(_ t: Trainer) -> Int {
        t.epochsCompleted &* t.data.train.count &+ t.partialTrain.count
    }

    private func measureRate(_ t: Trainer, now: Double) {
        let images = imagesDone(t)
        if let mark = rateMark, now > mark.time, images > mark.images {
            imagesPerSecond = Double(images - mark.images) / (now - mark.time)
        }
        rateMark = (now, images)
    }

    private func write(_ state: State, reason: String? = nil, now: Double? = nil) {
        lastWrite = now ?? clock()
        do {
            try DurableFile.write(json(state, reason: reason).pretty + "\n", to: path)
        } catch {
            if !reported { reported = true; onWriteError?("cannot write \(path) (progress updates continue to be tried): \(error)") }
        }
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(cString: buffer)
    }

    static func timestamp(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }
}
