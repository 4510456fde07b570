// The checkpoint file format: bit-for-bit round trips, one distinct error per kind of damage,
// the frozen version-1 fixture, and the directory store (fallback, quarantine, retention,
// refused writes that keep the previous checkpoint).
import Checkpointing
import Engine
import Foundation
import PrunedJSON
import Testing
import TestSupport
@testable import Training

let smallPruningSpec = #"""
{"model": "vgg11_bn", "width": 0.125, "dataset": {"kind": "cifar10", "path": "/unused"}, "epochs": 5, "batch_size": 32, "seed": 3,
 "lr_milestones": [3],
 "pruning": {"score": "l2", "target": "smallest", "period": 2,
             "layers": [{"name": "features.conv5", "fraction": 0.3, "start": 1, "end": 3},
                        {"name": "features.conv8", "fraction": 0.9, "start": 1, "end": 3}]}}
"""#

/// A trainer a few steps into its second epoch, and its first epoch's record.
func trainedTrainer(_ json: String = smallPruningSpec) throws -> (Trainer, [EpochRecord]) {
    let t = try Trainer(spec: try RunSpec.parse(json), data: syntheticData(), threads: 2)
    let r = try t.runEpoch()
    _ = try t.runEpoch { $0.stepInEpoch == 2 }
    return (t, [r])
}

@Suite struct FormatTests {
    @Test func snapshotRoundTripsEveryDtype() throws {
        var s = Snapshot()
        let floats: [Float] = [1, -0.0, .nan, .infinity, 3.25e-38, 7]
        s.add("layer4.1.conv2.weight", f32: floats, shape: [2, 3])
        s.add("d", f64: [1.5, -2, .pi])
        s.add("m", u8: [0xA5, 0x01])
        s.add("i", i64: [Int64.max / 2, -1])
        s.add("empty", f32: [])
        s.metadata = .object([("k", .string("v"))])
        for shuffle in [true, false] {
            let bytes = try CheckpointFile.encode(s, level: 3, shuffle: shuffle)
            let back = try CheckpointFile.decode(bytes)
            #expect(back.entries == s.entries)
            #expect(back.payload == s.payload)
            #expect(back.metadata == s.metadata)
            #expect(try back.f32("layer4.1.conv2.weight", shape: [2, 3]).map(\.bitPattern) == floats.map(\.bitPattern))
            #expect(try back.i64("i") == [Int64.max / 2, -1])
        }
    }

    @Test func modelStateRoundTripsBitForBit() throws {
        let (t, records) = try trainedTrainer()
        let bytes = try CheckpointFile.encode(RunCheckpoint.snapshot(t, records: records))
        let fresh = try Trainer(spec: t.spec, data: syntheticData(), threads: 2)
        let restored = try RunCheckpoint.prepareRestore(try CheckpointFile.decode(bytes), into: fresh)
        restored.apply()
        #expect(restored.records == records)
        let a = t.network.store, b = fresh.network.store
        #expect(memcmp(a.values.ptr, b.values.ptr, a.parameterCount * 4) == 0)
        #expect(memcmp(a.state.ptr, b.state.ptr, a.bufferCount * 4) == 0)
        #expect(memcmp(t.optimizer.moment1.ptr, fresh.optimizer.moment1.ptr, a.parameterCount * 4) == 0)
        #expect(memcmp(t.optimizer.moment2.ptr, fresh.optimizer.moment2.ptr, a.parameterCount * 4) == 0)
        #expect(fresh.optimizer.step == t.optimizer.step)
        #expect(fresh.pruner?.kept == t.pruner?.kept)
        #expect(fresh.pruner?.eventsDone == t.pruner?.eventsDone)
        #expect((fresh.epochsCompleted, fresh.lrSteps, fresh.stepInEpoch) == (t.epochsCompleted, t.lrSteps, t.stepInEpoch))
        #expect(fresh.partialTrain == t.partialTrain)
        // Re-encoding the restored trainer gives the same file.
        #expect(try CheckpointFile.encode(RunCheckpoint.snapshot(fresh, records: restored.records)) == bytes)
    }

    @Test func eachKindOfDamageHasItsOwnError() throws {
        let (trained, records) = try trainedTrainer()
        let good = try CheckpointFile.encode(RunCheckpoint.snapshot(trained, records: records))
        func error(_ b: [UInt8]) -> CheckpointError? {
            do { _ = try CheckpointFile.decode(b); return nil } catch let e as CheckpointError { return e } catch { return nil }
        }
        var truncated = good; truncated.removeLast(1000)
        guard case .truncated = error(truncated) else { Issue.record("truncated: \(String(describing: error(truncated)))"); return }
        guard case .truncated = error(Array(good.prefix(10))) else { Issue.record("tiny file not reported truncated"); return }
        var flipped = good; flipped[good.count / 2] ^= 0x10
        guard case .checksumMismatch = error(flipped) else { Issue.record("flipped: \(String(describing: error(flipped)))"); return }
        var magic = good; magic[0] = UInt8(ascii: "X")
        #expect(error(magic) == .badMagic)
        var future = good; future[8] = 2
        #expect(error(future) == .unsupportedVersion(found: 2, supported: 1))
        var header = good; header[20] ^= 1
        #expect(error(header) == .headerChecksum)
        // Messages differ from one another.
        let messages = [truncated, flipped, magic, future, header].compactMap { error($0)?.description }
        #expect(Set(messages).count == 5)
        // Wrong tensor shape: a checkpoint of a narrower model does not load into a wider one.
        let wide = try Trainer(spec: try RunSpec.parse(smallPruningSpec.replacingOccurrences(of: "0.125", with: "0.25")),
                               data: syntheticData(), threads: 1)
        let before = Array(UnsafeBufferPointer(start: wide.network.store.values.ptr, count: wide.network.parameterCount))
        #expect(throws: CheckpointError.self) {
            try RunCheckpoint.prepareRestore(try CheckpointFile.decode(good), into: wide, fork: true)
        }
        do { _ = try RunCheckpoint.prepareRestore(try CheckpointFile.decode(good), into: wide, fork: true) } catch let e as CheckpointError {
            guard case .shapeMismatch(let name, _, _) = e else { Issue.record("expected a shape mismatch, got \(e)"); return }
            #expect(name == "features.conv1.weight")
        }
        #expect(Array(UnsafeBufferPointer(start: wide.network.store.values.ptr, count: wide.network.parameterCount)) == before,
                "a rejected checkpoint leaves the live run untouched")
        // A differing spec is refused without fork.
        var other = try RunSpec.parse(smallPruningSpec)
        other.seed = 4
        let t2 = try Trainer(spec: other, data: syntheticData(), threads: 1)
        #expect { try RunCheckpoint.prepareRestore(try CheckpointFile.decode(good), into: t2) } throws: {
            "\($0)".contains("--fork")
        }
    }

    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/v1-vgg11-w0.03125.pck").path

    /// The frozen version-1 file: generated once (PRUNED_WRITE_FIXTURE=1) and committed.
    @Test func frozenVersion1FixtureKeepsLoading() throws {
        let spec = smallPruningSpec.replacingOccurrences(of: "0.125", with: "0.03125")
        if ProcessInfo.processInfo.environment["PRUNED_WRITE_FIXTURE"] == "1" {
            let (t, records) = try trainedTrainer(spec)
            try CheckpointStore.durableWrite(try CheckpointFile.encode(RunCheckpoint.snapshot(t, records: records), level: 19),
                                             to: FormatTests.fixture, crashHook: false)
        }
        let bytes = try CheckpointStore.readAll(FormatTests.fixture)
        let info = try CheckpointFile.inspect(bytes)
        #expect(info.version == 1)
        #expect(info.storedCRC == 0xbfb9_0197 || ProcessInfo.processInfo.environment["PRUNED_WRITE_FIXTURE"] == "1",
                Comment(rawValue: String(format: "fixture CRC %08x", info.storedCRC)))
        let snap = try CheckpointFile.decode(bytes)
        let t = try Trainer(spec: try RunCheckpoint.recordedSpec(snap), data: syntheticData(), threads: 2)
        try RunCheckpoint.prepareRestore(snap, into: t).apply()
        #expect((t.epochsCompleted, t.stepInEpoch, t.optimizer.step) == (1, 2, 5))
        // The restored state is exactly the file's (re-capturing gives the same payload), and
        // training continues from it. (Continuing bit-identically to a live run would tie the
        // fixture to today's kernels; the resume tests check that with fresh checkpoints.)
        let recaptured = RunCheckpoint.snapshot(t, records: try RunCheckpoint.prepareRestore(snap, into: t).records)
        #expect(recaptured.payload == snap.payload)
        #expect(recaptured.entries == snap.entries)
        let r = try t.runEpoch()
        #expect(r.epoch == 2 && r.train.count == 96 && r.train.meanLoss.isFinite)
    }
}

@Suite struct StoreTests {
    func sample(_ v: Float) throws -> [UInt8] {
        var s = Snapshot()
        s.add("w", f32: [v, v + 1])
        return try CheckpointFile.encode(s)
    }

    @Test func corruptNewestFallsBackAndIsQuarantined() throws {
        let dir = makeTempDir("fallback")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = CheckpointStore(directory: dir, keepLast: 5)
        let first = try store.write(try sample(1), label: "a", milestone: false)
        let second = try store.write(try sample(2), label: "b", milestone: false)
        #expect(store.latestPointer() == second)
        truncate(store.path(second), 30)
        let loaded = try #require(try store.loadNewest())
        #expect(loaded.file == first)
        #expect(try loaded.snapshot.f32("w") == [1, 2])
        #expect(loaded.quarantined.map(\.file) == [second])
        #expect(FileManager.default.fileExists(atPath: store.path(second) + ".corrupt"), "kept, renamed")
        #expect(store.list().map(\.file) == [first])
        // All damaged: a clear error, and every file is kept.
        let third = try store.write(try sample(3), label: "c", milestone: false)
        var bytes = try CheckpointStore.readAll(store.path(first)); bytes[0] = 0
        try CheckpointStore.durableWrite(bytes, to: store.path(first), crashHook: false)
        var b3 = try CheckpointStore.readAll(store.path(third)); b3[b3.count - 20] ^= 1
        try CheckpointStore.durableWrite(b3, to: store.path(third), crashHook: false)
        #expect { try store.loadNewest() } throws: { e in
            "\(e)".contains("no usable checkpoint") && "\(e)".contains("bad magic") && "\(e)".contains("CRC32")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".corrupt") }
        #expect(files.count == 3)
    }

    @Test func refusedWriteKeepsThePreviousCheckpoint() throws {
        let dir = makeTempDir("full")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var store = CheckpointStore(directory: dir, keepLast: 2)
        let first = try store.write(try sample(1), label: "a", milestone: false)
        store.reserveBytes = 1 << 50   // more than any disk has free: the save is refused
        #expect { try store.write(try sample(2), label: "b", milestone: false) } throws: { e in
            if case .insufficientSpace = e as? CheckpointError { return true }
            return false
        }
        #expect(store.list().map(\.file) == [first])
        #expect(store.latestPointer() == first)
        #expect(try store.loadNewest()?.file == first)
    }

    /// A long run with a milestone at every epoch keeps the first milestone (the model before the
    /// first prune), the newest keepMilestones − 1, and the newest keepLast checkpoints.
    @Test func milestonesAreThinned() throws {
        let dir = makeTempDir("thin")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = CheckpointStore(directory: dir, keepLast: 2, keepMilestones: 3)
        var names: [String] = []
        for i in 0 ..< 10 { names.append(try store.write(try sample(Float(i)), label: "x", milestone: i % 2 == 0)) }
        // milestones 0 2 4 6 8 → keep 0, 6, 8; newest two: 8, 9.
        #expect(store.list().map(\.file) == [names[0], names[6], names[8], names[9]])
        let none = CheckpointStore(directory: dir, keepLast: 1, keepMilestones: 0)
        _ = try none.write(try sample(10), label: "x", milestone: true)
        #expect(none.list().count == 1)
    }

    @Test func retentionKeepsLastNAndMilestones() throws {
        let dir = makeTempDir("retention")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = CheckpointStore(directory: dir, keepLast: 2)
        var names: [String] = []
        for i in 0 ..< 6 { names.append(try store.write(try sample(Float(i)), label: "x", milestone: i == 1 || i == 2)) }
        #expect(store.list().map(\.file) == [names[1], names[2], names[4], names[5]])
        // A leftover temporary file (a crash before rename) is ignored and cleaned up.
        try CheckpointStore.durableWrite([1, 2, 3], to: store.path("ckpt-00000099-x.pck.tmp"), crashHook: false)
        #expect(try store.loadNewest()?.file == names[5])
        _ = try store.write(try sample(9), label: "y", milestone: false)
        #expect(!FileManager.default.fileExists(atPath: store.path("ckpt-00000099-x.pck.tmp")))
    }
}
