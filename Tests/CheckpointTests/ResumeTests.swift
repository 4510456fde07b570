// The resume contract: a run interrupted at any step boundary (mid-epoch, at an epoch end, just
// before or after a pruning event, inside a noise window, on SIGTERM) or cut off after any
// checkpoint as by `kill -9` — even mid-write — and resumed ends with weights, masks, optimizer
// state and metrics bit-identical to an uninterrupted run, with no duplicate metrics lines.
import Checkpointing
import Engine
import Foundation
import PrunedJSON
import Synchronization
import Testing
import TestSupport
@testable import Training

let noiseSpec = #"""
{"model": "vgg11_bn", "width": 0.125, "dataset": {"kind": "cifar10", "path": "/unused"}, "epochs": 5, "batch_size": 32, "seed": 5,
 "pruning": {"score": "l2", "target": "largest", "period": 2,
             "layers": [{"name": "features.conv5", "fraction": 0.5, "start": 1, "end": 3}]},
 "noise": {"mode": "iter", "kind": "gaussian", "batches": 4, "restore": true}}
"""#

let activationSpec = #"""
{"model": "resnet18", "width": 0.0625, "dataset": {"kind": "cifar10", "path": "/u"}, "epochs": 3, "batch_size": 32, "seed": 1,
 "pruning": {"score": "activations", "target": "largest", "period": 1,
             "layers": [{"name": "layer4.1.conv2", "fraction": 0.5, "start": 1, "end": 1},
                        {"name": "layer4.0.conv1", "fraction": 0.25, "start": 0, "end": 1}]}}
"""#

/// Runs `spec` in `dir`, stopping (as on SIGTERM) when the run reaches each of `stops`
/// ((epochs completed, step in epoch)) and resuming until it finishes. Returns the summaries.
func runWithStops(_ spec: RunSpec, dir: String, data: PreparedData, stops: [(Int, Int)], maxRuns: Int? = nil) throws -> [RunSummary] {
    var remaining = stops
    var summaries: [RunSummary] = []
    for _ in 0 ..< (maxRuns ?? stops.count + 2) {
        var options = RunOptions()
        options.data = data
        final class Box { var trainer: Trainer? }
        let box = Box()
        options.afterStep = { box.trainer = $0 }
        options.stopRequested = {
            guard let t = box.trainer, let i = remaining.firstIndex(where: { $0 == (t.epochsCompleted, t.stepInEpoch) }) else { return false }
            remaining.remove(at: i)
            return true
        }
        let s = try ForegroundRun.execute(spec: spec, outDir: dir, threads: 2, options: options) { _ in }
        summaries.append(s)
        if !s.interrupted { break }
    }
    return summaries
}

/// The newest checkpoint's tensors (weights, BN stats, moments, masks, pruner and score state).
func finalState(_ dir: String) throws -> Snapshot {
    let store = CheckpointStore(directory: dir + "/checkpoints")
    return try #require(try store.loadNewest()).snapshot
}

/// metrics.jsonl without its timing fields.
func metricsLines(_ dir: String) throws -> [String] {
    let text = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
    return try text.split(separator: "\n").map { line in
        guard case .object(let pairs) = try JSON.parse(String(line)) else { return "" }
        return JSON.object(pairs.filter { $0.0 != "seconds" && $0.0 != "train_images_per_second" }).rendered
    }
}

func expectIdentical(_ a: String, _ b: String, _ ra: [EpochRecord], _ rb: [EpochRecord], epochs: Int,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(ra == rb, sourceLocation: sourceLocation)
    let sa = try finalState(a), sb = try finalState(b)
    #expect(sa.entries == sb.entries, sourceLocation: sourceLocation)
    #expect(sa.payload == sb.payload, "final weights/masks/optimizer state differ", sourceLocation: sourceLocation)
    let ma = try metricsLines(a), mb = try metricsLines(b)
    #expect(ma.count == epochs && mb.count == epochs, "one metrics line per epoch", sourceLocation: sourceLocation)
    #expect(ma == mb, sourceLocation: sourceLocation)
    #expect(FileManager.default.fileExists(atPath: b + "/summary.json"), sourceLocation: sourceLocation)
}

@Suite struct ResumeTests {
    func contract(_ json: String, stops: [(Int, Int)], data: PreparedData = syntheticData()) throws {
        let spec = try RunSpec.parse(json)
        let a = makeTempDir("ref"), b = makeTempDir("stops")
        defer { try? FileManager.default.removeItem(atPath: a); try? FileManager.default.removeItem(atPath: b) }
        let ref = try runWithStops(spec, dir: a, data: data, stops: [])
        let parts = try runWithStops(spec, dir: b, data: data, stops: stops)
        #expect(parts.count == stops.count + 1, "every stop point was reached")
        #expect(parts.dropLast().allSatisfy { $0.interrupted })
        #expect(parts.dropFirst().allSatisfy { $0.resumedFrom != nil })
        try expectIdentical(a, b, ref[0].records, parts.last?.records ?? [], epochs: spec.epochs)
    }

    /// Masked pruning (events after epochs 2 and 4): stops mid-epoch, at an epoch end just
    /// before an event, just after one, and after the last step of an epoch (before its evaluation).
    @Test func maskedPruningRunResumesBitIdentically() throws {
        try contract(smallPruningSpec, stops: [(0, 1), (1, 0), (2, 0), (2, 2), (3, 3)])
    }

    /// Noise with restore: stops inside the noise window (training steps right after the event).
    @Test func noiseWindowResumesBitIdentically() throws {
        try contract(noiseSpec, stops: [(2, 0), (2, 1), (2, 3), (4, 1)])
    }

    /// Activation-score pruning on ResNet18 (score averages and forward counters are state).
    @Test func activationScoresResumeBitIdentically() throws {
        try contract(activationSpec, stops: [(0, 2), (1, 1)], data: syntheticData(train: 128, test: 32))
    }

    /// As `kill -9` after any checkpoint: a run checkpointing every step is cut back to its
    /// k-th checkpoint (later files removed, a half-written temp file and the full metrics.jsonl
    /// left behind) and resumed; every cut ends identical to the uninterrupted run.
    @Test func resumeFromEveryCheckpointAfterACrash() throws {
        var spec = try RunSpec.parse(smallPruningSpec)
        spec.epochs = 4
        spec.checkpoint = CheckpointSpec(everySteps: 1, keepLast: 1000, level: 1)
        let data = syntheticData()
        let full = makeTempDir("full")
        defer { try? FileManager.default.removeItem(atPath: full) }
        let ref = try runWithStops(spec, dir: full, data: data, stops: [])[0]
        let all = CheckpointStore(directory: full + "/checkpoints").list()
        #expect(all.count == 4 * 3 + 4, "a checkpoint after every step and at every epoch end")
        for k in [1, 2, 3, 4, 6, 8, 11, 15] {
            let d = makeTempDir("cut\(k)")
            defer { try? FileManager.default.removeItem(atPath: d) }
            try FileManager.default.removeItem(atPath: d)
            try FileManager.default.copyItem(atPath: full, toPath: d)
            for e in all where e.sequence > k { unlink(d + "/checkpoints/" + e.file) }
            unlink(d + "/summary.json")
            try CheckpointStore.durableWrite(Array(repeating: 7, count: 100), to: d + "/checkpoints/ckpt-99999999-x.pck.tmp", crashHook: false)
            let resumed = try runWithStops(spec, dir: d, data: data, stops: [])
            #expect(resumed.count == 1 && resumed[0].resumedFrom == all[k - 1].file)
            try expectIdentical(full, d, ref.records, resumed[0].records, epochs: spec.epochs)
        }
    }

    /// A corrupted newest checkpoint: the run resumes from the previous one (quarantining the
    /// bad file) and still ends identical.
    @Test func corruptNewestCheckpointFallsBackDuringResume() throws {
        let spec = try RunSpec.parse(smallPruningSpec)
        let data = syntheticData()
        let a = makeTempDir("ref2"), b = makeTempDir("corrupt")
        defer { try? FileManager.default.removeItem(atPath: a); try? FileManager.default.removeItem(atPath: b) }
        let ref = try runWithStops(spec, dir: a, data: data, stops: [])[0]
        let first = try runWithStops(spec, dir: b, data: data, stops: [(2, 1)], maxRuns: 1)[0]
        #expect(first.interrupted)
        let store = CheckpointStore(directory: b + "/checkpoints")
        let newest = try #require(store.list().last)
        var bytes = try CheckpointStore.readAll(store.path(newest.file))
        bytes[bytes.count / 3] ^= 0xFF
        try CheckpointStore.durableWrite(bytes, to: store.path(newest.file), crashHook: false)
        let rest = try runWithStops(spec, dir: b, data: data, stops: [])
        #expect(rest[0].resumedFrom != newest.file)
        #expect(FileManager.default.fileExists(atPath: store.path(newest.file) + ".corrupt"))
        try expectIdentical(a, b, ref.records, rest[0].records, epochs: spec.epochs)
    }

    @Test func differentSpecIsRefusedUnlessForked() throws {
        var spec = try RunSpec.parse(smallPruningSpec)
        let data = syntheticData()
        let d = makeTempDir("fork")
        defer { try? FileManager.default.removeItem(atPath: d) }
        var options = RunOptions(fork: false, stopRequested: { true })
        options.data = data
        let stopped = try ForegroundRun.execute(spec: spec, outDir: d, threads: 2, options: options) { _ in }
        #expect(stopped.interrupted && stopped.records.isEmpty)
        spec.gamma = 0.5
        #expect { try runWithStops(spec, dir: d, data: data, stops: []) } throws: { "\($0)".contains("--fork") }
        // Only the checkpoint cadence differs: not a different run.
        var cadence = try RunSpec.parse(smallPruningSpec)
        cadence.checkpoint = CheckpointSpec(everySteps: 2)
        let s = try ForegroundRun.execute(spec: cadence, outDir: d, threads: 2, options: options) { _ in }
        #expect(s.interrupted && s.resumedFrom != nil)
        options = RunOptions(fork: true)
        options.data = data
        let forked = try ForegroundRun.execute(spec: spec, outDir: d, threads: 2, options: options) { _ in }
        #expect(!forked.interrupted && forked.records.count == spec.epochs)
        #expect(try String(contentsOfFile: d + "/spec.json", encoding: .utf8).contains("\"lr_gamma\": 0.5"))
    }

    @Test func sigtermStopsAtAStepBoundaryAndResumes() throws {
        let spec = try RunSpec.parse(smallPruningSpec)
        let data = syntheticData()
        let a = makeTempDir("ref3"), b = makeTempDir("sigterm")
        defer { try? FileManager.default.removeItem(atPath: a); try? FileManager.default.removeItem(atPath: b) }
        let ref = try runWithStops(spec, dir: a, data: data, stops: [])[0]
        StopSignal.install()
        StopSignal.reset()
        var options = RunOptions(stopRequested: { StopSignal.requested })
        options.data = data
        options.afterStep = { t in
            guard t.epochsCompleted == 1 && t.stepInEpoch == 2 else { return }
            kill(getpid(), SIGTERM)
            // Delivery is asynchronous (any thread): wait for the handler.
            let deadline = Trainer.monotonicSeconds() + 10
            while !StopSignal.requested && Trainer.monotonicSeconds() < deadline { usleep(1000) }
        }
        let first = try ForegroundRun.execute(spec: spec, outDir: b, threads: 2, options: options) { _ in }
        #expect(first.interrupted && first.records.count == 1)
        let trainerStep = try CheckpointFile.decode(try CheckpointStore.readAll(b + "/checkpoints/" + (CheckpointStore(directory: b + "/checkpoints").latestPointer() ?? "")))
        #expect(trainerStep.metadata["run"]?["step_in_epoch"]?.intValue == 2, "stopped right after the step that saw the signal")
        StopSignal.reset()
        // SIGUSR1 asks for a checkpoint without stopping.
        options.checkpointRequested = { StopSignal.takeCheckpointRequest() }
        options.afterStep = { t in
            guard t.epochsCompleted == 3 && t.stepInEpoch == 1 else { return }
            kill(getpid(), SIGUSR1)
            let deadline = Trainer.monotonicSeconds() + 10
            while !StopSignal.checkpointFlag.load(ordering: .relaxed) && Trainer.monotonicSeconds() < deadline { usleep(1000) }
        }
        var logged: [String] = []
        let rest = try ForegroundRun.execute(spec: spec, outDir: b, threads: 2, options: options) { logged.append($0) }
        #expect(!rest.interrupted)
        #expect(logged.contains("checkpoint requested"))
        #expect(logged.contains { $0.hasSuffix("-e00003-s000001.pck") })
        try expectIdentical(a, b, ref.records, rest.records, epochs: spec.epochs)
    }
}
