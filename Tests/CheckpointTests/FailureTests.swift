// Runs that must fail rather than report nonsense or promise what they lack: a run whose loss
// stops being finite fails ("diverged at epoch E, step S: …") without checkpointing that state or
// writing summary.json, and `pruned run` exits non-zero saying so; a run whose final checkpoint
// cannot be written fails after retries instead of ending without it, and resuming it once the
// directory is writable again ends bit-identical to an uninterrupted run.
import Checkpointing
import Engine
import Foundation
import PrunedJSON
import Testing
import TestSupport
@testable import Training

/// Conv4 at quarter width on Fashion-MNIST, SGD with momentum 0.9 at `lr`. At lr 5 the loss
/// becomes NaN within two epochs (Adam's bounded steps only make it huge).
func conv4Spec(lr: Double, epochs: Int, everySteps: Int? = nil) throws -> RunSpec {
    let every = everySteps.map { #", "checkpoint": {"every_steps": \#($0), "keep_last": 1000}"# } ?? ""
    return try RunSpec.parse(#"""
    {"model": "conv4", "width": 0.25, "dataset": {"kind": "fashion_mnist", "path": "\#(fashionMNIST)", "train_limit": 512, "test_limit": 256},
     "optimizer": {"kind": "sgd", "lr": \#(lr), "momentum": 0.9}, "epochs": \#(epochs), "batch_size": 64, "seed": 4\#(every)}
    """#)
}

/// Every f32 tensor of a checkpoint is finite.
func allFinite(_ s: Snapshot) throws -> Bool {
    try s.entries.filter { $0.dtype == .f32 }.allSatisfy { try s.f32($0.name).allSatisfy(\.isFinite) }
}

final class Flag: @unchecked Sendable { var value = false; var count = 0 }

@Suite(.serialized) struct DivergenceTests {
    /// One sane epoch, then the same run continued at a learning rate of 5: within a few epochs
    /// the loss becomes NaN. The run fails with the diverged message; no checkpoint of epoch E
    /// (the diverging one) exists, the newest is epoch E − 1's and the earlier one is untouched,
    /// byte for byte; all hold finite values; no summary.json; metrics.jsonl has E − 1 rows.
    @Test func divergedRunFailsAndKeepsItsLastGoodCheckpoint() throws {
        let data = try fashion(train: 512, test: 256)
        let dir = makeTempDir("diverge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sane = try conv4Spec(lr: 0.01, epochs: 3)
        var options = RunOptions()
        options.data = data
        let afterOne = Flag()
        options.onEpoch = { _ in afterOne.value = true }
        options.stopRequested = { afterOne.value }
        let first = try ForegroundRun.execute(spec: sane, outDir: dir, threads: 2, options: options) { _ in }
        #expect(first.interrupted && first.records.count == 1)
        #expect(first.records[0].train.top1 < 100 && first.records[0].post.top1 < 100)
        let store = CheckpointStore(directory: dir + "/checkpoints")
        let before = store.list()
        let good = try #require(before.last)
        let goodBytes = try CheckpointStore.readAll(store.path(good.file))

        var hot = sane
        hot.optimizer.lr = 5
        hot.epochs = 8
        var forked = RunOptions(fork: true)
        forked.data = data
        var log: [String] = []
        var caught: TrainingDiverged?
        do { _ = try ForegroundRun.execute(spec: hot, outDir: dir, threads: 2, options: forked) { log.append($0) } } catch let e as TrainingDiverged {
            caught = e
        }
        let e = try #require(caught, "the run at lr 5 did not fail as diverged; log: \(log.suffix(3))")
        print("diverged run: \(e)")
        #expect(e.epoch >= 2 && e.step >= 1 && e.step <= e.steps && e.steps == 8)
        #expect(e.description.hasPrefix("diverged at epoch \(e.epoch), step \(e.step) of 8: "))
        #expect(e.problem.hasPrefix("loss is ") || e.problem.contains(" holds "), "\(e.problem)")
        #expect(!log.contains { $0.contains("acc 100.00%") })
        let after = store.list()
        let newest = try #require(after.last)
        #expect(after.prefix(before.count).elementsEqual(before) && after.count == before.count + e.epoch - 2)
        #expect(newest.file.contains(String(format: "e%05d-s000000", e.epoch - 1)), "no checkpoint of epoch \(e.epoch): \(newest.file)")
        #expect(log.contains { $0.contains("the last good checkpoint is \(newest.file)") }, "\(log.suffix(2))")
        #expect(try CheckpointStore.readAll(store.path(good.file)) == goodBytes)
        for entry in after {
            #expect(try allFinite(try CheckpointFile.decode(try CheckpointStore.readAll(store.path(entry.file)))), "\(entry.file)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/summary.json"))
        let lines = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == e.epoch - 1)
    }

    /// From scratch at lr 5 with a checkpoint after every step: whatever step the run diverges
    /// at, every checkpoint it left holds finite values only, and there is no summary.json.
    @Test func aDivergingRunNeverCheckpointsNonFiniteState() throws {
        let data = try fashion(train: 512, test: 256)
        let dir = makeTempDir("diverge-steps")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = RunOptions()
        options.data = data
        #expect(throws: TrainingDiverged.self) {
            try ForegroundRun.execute(spec: try conv4Spec(lr: 5, epochs: 3, everySteps: 1), outDir: dir, threads: 2, options: options) { _ in }
        }
        let store = CheckpointStore(directory: dir + "/checkpoints")
        for entry in store.list() {
            let snap = try CheckpointFile.decode(try CheckpointStore.readAll(store.path(entry.file)))
            #expect(try allFinite(snap), "\(entry.file) holds values that are not finite")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/summary.json"))
    }

    /// The real binary: `pruned run` of a diverging spec exits 1 with the reason on stderr and
    /// never prints an accuracy of 100%.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: prunedBinary)))
    func prunedRunExitsNonZeroWhenDiverged() throws {
        guard FileManager.default.fileExists(atPath: fashionMNIST + "/train-images-idx3-ubyte.gz") else {
            Issue.record("Fashion-MNIST is needed (apt-get install -y dataset-fashion-mnist)")
            return
        }
        let dir = makeTempDir("diverge-bin")
        defer { try? FileManager.default.removeItem(atPath: dir); unlink(dir + "-spec.json") }
        try (try conv4Spec(lr: 5, epochs: 2)).json.pretty.write(toFile: dir + "-spec.json", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: prunedBinary)
        p.arguments = ["run", "--spec", dir + "-spec.json", "--out", dir + "/run", "--threads", "2"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 1, "\(stdout.suffix(300)) \(stderr)")
        #expect(stderr.contains("pruned: diverged at epoch "), "\(stderr)")
        #expect(!stdout.contains("acc 100.00%") && !stdout.contains("done:"), "\(stdout.suffix(300))")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/summary.json"))
    }
}

@Suite struct NonFiniteStateTests {
    /// A NaN in a BatchNorm running variance leaves train-mode losses finite; the scan at the end
    /// of the epoch's training finds it before the evaluation.
    @Test func nonFiniteWeightsEndTheEpochAsDiverged() throws {
        let t = try Trainer(spec: try RunSpec.parse(smallPruningSpec), data: syntheticData(), threads: 2)
        #expect(t.nonFiniteState() == nil)
        let slot = try #require(t.network.store.buffers.first { $0.name.hasSuffix("running_var") })
        t.network.store.stateValue(slot)[1] = .nan
        #expect(t.nonFiniteState() == "buffer \(slot.name) holds NaN")
        #expect(throws: TrainingDiverged(epoch: 1, step: 3, steps: 3, problem: "buffer \(slot.name) holds NaN after the step")) {
            try t.runEpoch()
        }
    }

    /// A checkpoint is never written of a state that is not finite: the run checkpointing every
    /// step fails at the step whose state holds +Inf, and its newest checkpoint is the step before.
    @Test func aNonFiniteStateIsNeverCheckpointed() throws {
        var spec = try RunSpec.parse(smallPruningSpec)
        spec.checkpoint = CheckpointSpec(everySteps: 1, keepLast: 100, level: 1)
        let dir = makeTempDir("nonfinite")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = RunOptions()
        options.data = syntheticData()
        options.afterStep = { t in
            if t.epochsCompleted == 1 && t.stepInEpoch == 2, let w = t.network.store.parameters.last {
                t.network.store.value(w)[0] = .infinity
            }
        }
        let poked = try #require(try Trainer(spec: spec, data: syntheticData(), threads: 1).network.store.parameters.last).name
        var log: [String] = []
        #expect(throws: TrainingDiverged(epoch: 2, step: 2, steps: 3, problem: "parameter \(poked) holds +Inf")) {
            try ForegroundRun.execute(spec: spec, outDir: dir, threads: 2, options: options) { log.append($0) }
        }
        let newest = try #require(CheckpointStore(directory: dir + "/checkpoints").list().last)
        #expect(newest.file.hasSuffix("e00001-s000001.pck"), "\(newest.file)")
        #expect(log.last?.hasSuffix("the last good checkpoint is \(newest.file); no summary.json") == true, "\(log.last ?? "")")
        #expect(!FileManager.default.fileExists(atPath: dir + "/summary.json"))
    }
}

@Suite struct FinalCheckpointTests {
    /// The checkpoints directory replaced by a plain file (as root, permissions would not stop
    /// the writes): every write into it fails for real.
    func block(_ dir: String) throws {
        try FileManager.default.moveItem(atPath: dir + "/checkpoints", toPath: dir + "/checkpoints.saved")
        #expect(FileManager.default.createFile(atPath: dir + "/checkpoints", contents: Data("not a directory".utf8)))
    }

    func unblock(_ dir: String) throws {
        try FileManager.default.removeItem(atPath: dir + "/checkpoints")
        try FileManager.default.moveItem(atPath: dir + "/checkpoints.saved", toPath: dir + "/checkpoints")
    }

    /// Checkpoints become unwritable before the last epoch: the run fails after its retries
    /// (no summary.json, metrics up to the last good checkpoint); once writable again the same
    /// directory resumes, completes with a final checkpoint and matches an uninterrupted run bit
    /// for bit (weights, masks, optimizer state, metrics).
    @Test func unwritableFinalCheckpointFailsTheRunAndResumeCompletesIt() throws {
        let spec = try RunSpec.parse(smallPruningSpec)
        let data = syntheticData()
        let ref = makeTempDir("final-ref"), dir = makeTempDir("final-blocked")
        defer { try? FileManager.default.removeItem(atPath: ref); try? FileManager.default.removeItem(atPath: dir) }
        let reference = try runWithStops(spec, dir: ref, data: data, stops: [])[0]

        var options = RunOptions()
        options.data = data
        options.finalCheckpointRetryDelays = [0.01, 0.02]
        let failures = Flag()
        options.onEpoch = { [self] r in if r.epoch == spec.epochs - 1 { try? block(dir) } }
        options.onCheckpoint = { file, _ in if file == nil { failures.count += 1 } }
        var log: [String] = []
        var caught: FinalCheckpointFailed?
        do { _ = try ForegroundRun.execute(spec: spec, outDir: dir, threads: 2, options: options) { log.append($0) } } catch let e as FinalCheckpointFailed {
            caught = e
        }
        let e = try #require(caught, "the run did not fail on its final checkpoint; log: \(log.suffix(3))")
        #expect(e.description.hasPrefix("the final checkpoint could not be written: "))
        #expect(e.description.hasSuffix("the run is not complete — `resume` it once the disk has space"))
        #expect(failures.count == 3, "one attempt and two retries")
        #expect(log.filter { $0.hasPrefix("retrying the final checkpoint") }.count == 2)
        #expect(!FileManager.default.fileExists(atPath: dir + "/summary.json"))
        let metrics = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == spec.epochs - 1, "the last epoch's row waits for its checkpoint")

        try unblock(dir)
        let resumed = try runWithStops(spec, dir: dir, data: data, stops: [])
        #expect(resumed.count == 1 && resumed[0].resumedFrom != nil && !resumed[0].interrupted)
        let newest = try #require(CheckpointStore(directory: dir + "/checkpoints").list().last)
        #expect(newest.file.contains(String(format: "e%05d-s000000", spec.epochs)), "final checkpoint \(newest.file)")
        try expectIdentical(ref, dir, reference.records, resumed[0].records, epochs: spec.epochs)
    }

    /// A failure that clears up between attempts: the retry writes the final checkpoint and the
    /// run completes normally, identical to an uninterrupted one.
    @Test func transientFinalCheckpointFailureIsRetried() throws {
        let spec = try RunSpec.parse(smallPruningSpec)
        let data = syntheticData()
        let ref = makeTempDir("retry-ref"), dir = makeTempDir("retry")
        defer { try? FileManager.default.removeItem(atPath: ref); try? FileManager.default.removeItem(atPath: dir) }
        let reference = try runWithStops(spec, dir: ref, data: data, stops: [])[0]
        var options = RunOptions()
        options.data = data
        options.finalCheckpointRetryDelays = [0.01, 0.01, 0.01]
        let blocked = Flag()
        options.onEpoch = { [self] r in
            if r.epoch == spec.epochs - 1 { try? block(dir); blocked.value = true }
        }
        options.onCheckpoint = { [self] file, _ in
            if file == nil && blocked.value { blocked.count += 1; try? unblock(dir); blocked.value = false }
        }
        var log: [String] = []
        let summary = try ForegroundRun.execute(spec: spec, outDir: dir, threads: 2, options: options) { log.append($0) }
        #expect(!summary.interrupted && blocked.count == 1)
        #expect(log.filter { $0.hasPrefix("retrying the final checkpoint") }.count == 1)
        try expectIdentical(ref, dir, reference.records, summary.records, epochs: spec.epochs)
    }
}
