// `pruned ckpt bench`: checkpoint cost for a full-width model with Adam state after a few real
// training steps — capture+encode, durable write, read+verify+decode, restore — plus file size
// and compression ratio with and without the float byte shuffle.
import Checkpointing
import Engine
import Foundation

public enum CheckpointBenchmark {
    public static func run(architecture: Architecture, level: Int, directory: String, steps: Int = 2) throws -> [String] {
        var spec = RunSpec(architecture: architecture, data: DataSpec(kind: .cifar10, path: "/unused"), epochs: 1, seed: 1)
        spec.batchSize = 16
        var rng = CounterRNG(seed: 7, purpose: .noise)
        let n = 16 * steps
        let pixels = (0 ..< n * 3072).map { _ in UInt8(truncatingIfNeeded: rng.below(256)) }
        let labels = (0 ..< n).map { _ in Int32(rng.below(10)) }
        let set = ImageSet(pixels: pixels, labels: labels, classes: 10)
        let t = try Trainer(spec: spec, data: PreparedData(train: set, test: set, normalisation: .cifar10), threads: 2)
        let order = Array(0 ..< n)
        for s in 0 ..< steps { _ = t.trainStep(indices: order[s * 16 ..< (s + 1) * 16], epoch: 0, position: s * 16, lr: 1e-3) }
        let clock = Trainer.monotonicSeconds
        let reps = 3
        var captureT: [Double] = [], encodeT: [Double] = [], writeT: [Double] = [], readT: [Double] = [], restoreT: [Double] = []
        var bytes: [UInt8] = []
        let store = CheckpointStore(directory: directory, keepLast: 1)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var payload = 0
        for _ in 0 ..< reps {
            let a = clock()
            let snap = RunCheckpoint.snapshot(t, records: [])
            let a2 = clock()
            bytes = try CheckpointFile.encode(snap, level: level)
            payload = snap.payload.count
            let b = clock()
            let name = try store.write(bytes, label: "bench", milestone: false)
            let c = clock()
            let back = try CheckpointFile.decode(try CheckpointStore.readAll(store.path(name)))
            let d = clock()
            try RunCheckpoint.prepareRestore(back, into: t).apply()
            let e = clock()
            captureT.append(a2 - a); encodeT.append(b - a2); writeT.append(c - b); readT.append(d - c); restoreT.append(e - d)
        }
        let snap = RunCheckpoint.snapshot(t, records: [])
        let p0 = clock()
        let plain = try CheckpointFile.encode(snap, level: level, shuffle: false)
        let plainT = clock() - p0
        func ms(_ v: [Double]) -> String { String(format: "%.1f ms", 1000 * (v.sorted()[v.count / 2])) }
        let mb = { (x: Int) in String(format: "%.1f MB", Double(x) / 1e6) }
        return [
            "\(architecture.rawValue): \(t.network.parameterCount) parameters, Adam; payload \(mb(payload)), file \(mb(bytes.count)) "
                + String(format: "(ratio %.3f shuffled, %.3f unshuffled), zstd level %d", Double(payload) / Double(bytes.count),
                         Double(payload) / Double(plain.count), level),
            "  capture \(ms(captureT)), encode \(ms(encodeT)), durable write \(ms(writeT)), read+verify+decode \(ms(readT)), restore \(ms(restoreT)) "
                + "(median of \(reps)); unshuffled encode " + String(format: "%.1f ms", plainT * 1000),
        ]
    }
}
