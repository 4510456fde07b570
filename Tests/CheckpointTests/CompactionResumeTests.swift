// Compaction across checkpoints and runs: a trainer restored from a checkpoint taken after a
// pruning event recomputes the same channel selections and continues bit for bit; checkpoints
// keep full-shape tensors; metrics rows carry the executed multiply-adds per image; and a
// compacted run follows the masked run to float rounding. (The resume contract itself, for
// stops around pruning events and kill -9 cuts, is ResumeTests on the same pruning spec.)
import Checkpointing
import Engine
import Foundation
import PrunedJSON
import Testing
import TestSupport
@testable import Training

@Suite struct CompactionResumeTests {
    /// smallPruningSpec prunes conv5 and conv8 after epochs 1 and 3 (0-based).
    @Test func restoredTrainerRecompactsAndContinuesIdentically() throws {
        let spec = try RunSpec.parse(smallPruningSpec)
        let data = syntheticData()
        let a = try Trainer(spec: spec, data: data, threads: 2)
        var records: [EpochRecord] = []
        for _ in 0 ..< 2 { records.append(try a.runEpoch()) }
        #expect(records[1].pruning?.isEmpty == false)
        _ = try a.runEpoch { $0.stepInEpoch == 1 }
        let selections = a.network.convolutions.map { $0.compact?.selection }
        #expect(selections.compactMap { $0 }.count == 3, "conv5 and conv8 lose filters, conv6 inputs")
        let snapshot = RunCheckpoint.snapshot(a, records: records)
        for slot in a.network.store.parameters {
            #expect(snapshot.entry(slot.name)?.shape == slot.shape, "\(slot.name) is stored in full shape")
        }

        let b = try Trainer(spec: spec, data: data, threads: 2)
        #expect(b.network.convolutions.allSatisfy { $0.compact == nil })
        let (apply, restored) = try RunCheckpoint.prepareRestore(snapshot, into: b)
        apply()
        #expect(restored == records)
        #expect(b.network.convolutions.map { $0.compact?.selection } == selections)
        #expect(b.network.executedForwardMACs() == a.network.executedForwardMACs())
        let ra = try a.runEpoch(), rb = try b.runEpoch()
        #expect(ra == rb)
        #expect(a.network.store.values.array == b.network.store.values.array)
        #expect(a.optimizer.moment1.array == b.optimizer.moment1.array)
        #expect(a.network.store.state.array == b.network.store.state.array)
    }

    @Test func metricsRowsCarryExecutedMultiplyAdds() throws {
        var spec = try RunSpec.parse(smallPruningSpec)
        spec.epochs = 4
        let dir = makeTempDir("macs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try runWithStops(spec, dir: dir, data: syntheticData(), stops: [(2, 1)])
        let rows = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
        let macs = rows.compactMap { $0["macs_per_image"]?.intValue }
        let dense = ModelFactory.make(.vgg11_bn, width: spec.width, seed: 0).forwardMACs()
        #expect(macs.count == 4)
        // Epochs 1 and 2 train dense; the event after epoch 2 makes epochs 3 and 4 cheaper (the
        // second event comes after epoch 4).
        #expect(macs.count == 4 && macs[0] == dense && macs[1] == dense && macs[2] < dense && macs[3] == macs[2])
        let csv = try CheckpointExport.csv(finalState(dir))
        #expect(csv.split(separator: "\n").first?.hasSuffix(",macs_per_image") == true)
        #expect(csv.split(separator: "\n").last?.hasSuffix(",\(macs.last ?? 0)") == true)
    }

    /// The same spec trained compacted and masked (the pruner's `compacts` off) for three epochs
    /// (an event after the second): losses, accuracies and final weights agree to rounding
    /// (weights to 3e-3 of the largest: F(4×4)'s rounding over three Adam epochs, measured
    /// 1.2e-3; F(2×2) stayed below 1e-3).
    @Test func compactedRunFollowsTheMaskedRun() throws {
        let spec = try RunSpec.parse(smallPruningSpec)
        let data = syntheticData()
        let compact = try Trainer(spec: spec, data: data, threads: 2)
        let masked = try Trainer(spec: spec, data: data, threads: 2)
        masked.pruner?.compacts = false
        for epoch in 0 ..< 3 {
            let rc = try compact.runEpoch(), rm = try masked.runEpoch()
            #expect(abs(rc.train.meanLoss - rm.train.meanLoss) < 1e-4 * max(1, abs(rm.train.meanLoss)), "epoch \(epoch)")
            #expect(abs(rc.post.meanLoss - rm.post.meanLoss) < 1e-4 * max(1, abs(rm.post.meanLoss)), "epoch \(epoch)")
            #expect(rc.prunedCounts.map(\.1) == rm.prunedCounts.map(\.1))
            #expect(rc.macsPerImage ?? 0 <= rm.macsPerImage ?? 0)
        }
        #expect(masked.network.convolutions.allSatisfy { $0.compact == nil })
        let pc = compact.network.store.values.array, pm = masked.network.store.values.array
        let scale = pm.map { abs($0) }.max() ?? 1
        let err = zip(pc, pm).map { abs($0 - $1) }.max() ?? 0
        #expect(err < 3e-3 * scale, "parameters differ by \(err) at scale \(scale)")
        #expect(zip(pc, pm).allSatisfy { ($0 == 0) == ($1 == 0) || abs($0 - $1) < 3e-3 * scale })
    }
}
