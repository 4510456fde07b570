// DIR/progress.json (ProgressFile): its fields through a real run (start, rate-limited updates
// while stepping, epoch ends, stop, finish, failure), Slurm ids from the environment, atomic
// replacement seen by a concurrent reader, and that a refused start never marks a finished run failed.
import Checkpointing
import Foundation
import PrunedJSON
import Synchronization
import Testing
import TestSupport
import Training

private let tinySpec = #"""
{"model": "conv4", "width": 0.125, "dataset": {"kind": "cifar10", "path": "/unused"}, "epochs": 2, "batch_size": 16, "seed": 4}
"""#

private func readProgress(_ dir: String) throws -> JSON {
    try JSON.parse(try String(contentsOfFile: dir + "/progress.json", encoding: .utf8))
}

@Suite struct ProgressFileTests {
    @Test func aRunReportsStartStepsEpochsAndTheEnd() throws {
        let dir = temporaryPath("run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = try RunSpec.parse(tinySpec)
        var now = 100.0
        let progress = ProgressFile(directory: dir, interval: 2, environment: [:], clock: { now })
        var options = RunOptions()
        options.data = syntheticData(train: 96, test: 32)
        progress.attach(to: &options)
        // Observed after the progress hooks: one second of clock per step.
        var seen: [(epochsDone: Int?, step: Int?, state: String?)] = []
        var atStart: JSON?
        let start = options.onStart, after = options.afterStep
        options.onStart = { t, r in start?(t, r); atStart = try? readProgress(dir) }
        options.afterStep = { t in
            after?(t)
            if let p = try? readProgress(dir) { seen.append((p["epochs_done"]?.intValue, p["step"]?.intValue, p["state"]?.stringValue)) }
            now += 1
        }
        let summary = try ForegroundRun.execute(spec: spec, outDir: dir, threads: 1, options: options) { _ in }
        progress.ended(summary)

        let s = try #require(atStart)
        #expect(s["state"] == .string("running") && s["epochs_done"] == .number(0) && s["epochs"] == .number(2))
        #expect(s["step"] == .number(0) && s["steps_per_epoch"] == .number(6) && s["images_per_second"] == .null)
        #expect(s["slurm"] == nil && s["pid"] == .number(Double(getpid())) && s["build_id"]?.stringValue?.isEmpty == false)
        #expect(s["hostname"]?.stringValue?.isEmpty == false && s["updated"]?.stringValue?.hasSuffix("Z") == true)
        // 6 steps per epoch, step k at clock 100 + k - 1, a write at most every 2 s of clock after
        // the start's at 100: steps 3 and 5 are written; the epoch end writes epoch 1 step 0.
        #expect(seen.count == 12)
        #expect(seen.prefix(6).map(\.step) == [0, 0, 3, 3, 5, 5])
        #expect(seen.allSatisfy { $0.state == "running" })
        #expect(seen[6].epochsDone == 1 && seen[6].step == 0)   // written at the epoch end
        let end = try readProgress(dir)
        #expect(end["state"] == .string("finished") && end["epochs_done"] == .number(2) && end["reason"] == .null)
        #expect(end["checkpoint"]?.stringValue?.hasPrefix("ckpt-") == true)
        #expect((end["images_per_second"]?.doubleValue ?? 0) > 0 && end["test_acc"]?.doubleValue != nil)
        #expect(!FileManager.default.fileExists(atPath: dir + "/progress.json.tmp"))

        // Running the finished run again is refused; failed() leaves its progress.json alone.
        #expect(throws: FileError.self) { try ForegroundRun.execute(spec: spec, outDir: dir, threads: 1, options: options) { _ in } }
        progress.failed("refused")
        #expect(try readProgress(dir)["state"] == .string("finished"))
    }

    @Test func aStopAndAFailureAreRecordedWithTheSlurmIds() throws {
        let dir = temporaryPath("stop")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = try RunSpec.parse(tinySpec)
        let env = ["SLURM_ARRAY_JOB_ID": "41", "SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "45", "SLURMD_NODENAME": "node07",
                   "SLURM_RESTART_COUNT": "2", "UNRELATED": "x"]
        let progress = ProgressFile(directory: dir, environment: env)
        var options = RunOptions()
        options.data = syntheticData(train: 96, test: 32)
        final class Box { var trainer: Trainer? }
        let box = Box()
        options.afterStep = { box.trainer = $0 }
        options.stopRequested = { box.trainer.map { $0.epochsCompleted == 1 && $0.stepInEpoch == 2 } ?? false }
        progress.attach(to: &options)
        let summary = try ForegroundRun.execute(spec: spec, outDir: dir, threads: 1, options: options) { _ in }
        #expect(summary.interrupted)
        progress.ended(summary)
        let p = try readProgress(dir)
        #expect(p["state"] == .string("stopped") && p["epochs_done"] == .number(1) && p["step"] == .number(2))
        #expect(p["reason"]?.stringValue?.contains("checkpoint ckpt-") == true)
        #expect(p["slurm"] == .object([("array_job_id", .number(41)), ("array_task_id", .number(3)), ("job_id", .number(45)),
                                      ("restart_count", .number(2)), ("node", .string("node07"))]))
        progress.failed("dataset: gone")
        let f = try readProgress(dir)
        #expect(f["state"] == .string("failed") && f["reason"] == .string("dataset: gone"))

        // Inside a job that Slurm has not restarted the count is 0; no Slurm, no "slurm" object.
        let fresh = ProgressFile(directory: dir, environment: ["SLURM_JOB_ID": "9"])
        #expect(fresh.json(.running)["slurm"] == .object([("job_id", .number(9)), ("restart_count", .number(0))]))
        // A failure before the directory exists writes nothing.
        let none = ProgressFile(directory: dir + "/not-created")
        none.failed("cannot create")
        #expect(!FileManager.default.fileExists(atPath: dir + "/not-created"))
    }

    @Test func aConcurrentReaderAlwaysSeesACompleteFile() throws {
        let dir = temporaryPath("atomic")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = try RunSpec.parse(tinySpec)
        let progress = ProgressFile(directory: dir, interval: 0, environment: [:])   // a write after every step
        var options = RunOptions()
        options.data = syntheticData(train: 192, test: 32)
        progress.attach(to: &options)
        var errors: [String] = []
        progress.onWriteError = { errors.append($0) }
        let stop = Atomic<Bool>(false), reads = Atomic<Int>(0), bad = Atomic<Int>(0)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let reader = Thread {
            while !stop.load(ordering: .relaxed) {
                guard let data = FileManager.default.contents(atPath: dir + "/progress.json") else { continue }
                reads.add(1, ordering: .relaxed)
                if (try? JSON.parse(String(decoding: data, as: UTF8.self))) == nil { bad.add(1, ordering: .relaxed) }
            }
        }
        reader.start()
        let summary = try ForegroundRun.execute(spec: spec, outDir: dir, threads: 1, options: options) { _ in }
        progress.ended(summary)
        stop.store(true, ordering: .relaxed)
        usleep(20_000)
        #expect(reads.load(ordering: .relaxed) > 0)
        #expect(bad.load(ordering: .relaxed) == 0)
        #expect(errors.isEmpty)
    }

    @Test func aWriteFailureIsReportedOnceAndDoesNotStopTheRun() throws {
        let dir = temporaryPath("unwritable")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = try RunSpec.parse(tinySpec)
        // progress.json.tmp is a directory: every write fails.
        try FileManager.default.createDirectory(atPath: dir + "/progress.json.tmp", withIntermediateDirectories: true)
        let progress = ProgressFile(directory: dir, interval: 0, environment: [:])
        var errors: [String] = []
        progress.onWriteError = { errors.append($0) }
        var options = RunOptions()
        options.data = syntheticData(train: 96, test: 32)
        progress.attach(to: &options)
        let summary = try ForegroundRun.execute(spec: spec, outDir: dir, threads: 1, options: options) { _ in }
        progress.ended(summary)
        #expect(!summary.interrupted && FileManager.default.fileExists(atPath: dir + "/summary.json"))
        #expect(errors.count == 1 && errors[0].contains("progress.json"))
    }
}
