// Every numeric field of a run spec at its boundaries: the reader either refuses the value with
// an error naming the field or accepts it inside a bounded range, so nothing a client can submit
// traps or allocates without bound when the run starts. Accepted extremes really start and run;
// a run too large for the machine's memory is refused before it starts.
import Engine
import Foundation
import PrunedJSON
import Testing
import TestSupport
import Training

/// Sets `value` at a dotted path (numeric segments index arrays) of a test spec.
private func setting(_ json: JSON, _ path: ArraySlice<String>, _ value: JSON) -> JSON {
    guard let key = path.first else { return value }
    switch json {
    case .object(var pairs):
        if let i = pairs.firstIndex(where: { $0.0 == key }) {
            pairs[i].1 = setting(pairs[i].1, path.dropFirst(), value)
        } else {
            pairs.append((key, setting(.object([]), path.dropFirst(), value)))
        }
        return .object(pairs)
    case .array(var items):
        guard let i = Int(key), items.indices.contains(i) else { return json }
        items[i] = setting(items[i], path.dropFirst(), value)
        return .array(items)
    default: return json
    }
}

/// The field name a SpecError uses for a dotted path (`pruning.layers.0.start` → `pruning.layers[0].start`).
private func fieldName(_ path: String) -> String {
    path.split(separator: ".").reduce("") { out, seg in
        seg.allSatisfy(\.isNumber) ? out + "[\(seg)]" : (out.isEmpty ? String(seg) : out + "." + seg)
    }
}

@Suite struct SpecBoundaryTests {
    static let base = #"""
    {"model": "conv4", "width": 0.0625, "dataset": {"kind": "fashion_mnist", "path": "/unused", "train_limit": 96, "test_limit": 64},
     "epochs": 40, "batch_size": 32, "test_batch_size": 64, "seed": 1, "lr_milestones": [30], "lr_gamma": 0.1,
     "optimizer": {"kind": "adam", "lr": 0.001, "weight_decay": 0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
     "pruning": {"period": 9, "layers": [{"name": "features.conv2", "fraction": 0.1, "start": 3, "end": 30, "period": 9}]},
     "noise": {"mode": "iter", "kind": "zeroing", "batches": 129},
     "checkpoint": {"every_steps": 4, "every_seconds": 60, "keep_last": 3, "keep_milestones": 8, "level": 1}}
    """#

    static let fields = [
        "width", "epochs", "batch_size", "test_batch_size", "seed", "lr_milestones.0", "lr_gamma", "optimizer.lr",
        "optimizer.weight_decay", "optimizer.beta1", "optimizer.beta2", "optimizer.eps", "dataset.train_limit",
        "dataset.test_limit", "pruning.period", "pruning.layers.0.fraction", "pruning.layers.0.start", "pruning.layers.0.end",
        "pruning.layers.0.period", "noise.batches", "checkpoint.every_steps", "checkpoint.every_seconds",
        "checkpoint.keep_last", "checkpoint.keep_milestones", "checkpoint.level",
    ]

    /// JSON numbers a client can send (and a few only code can build: NaN, infinities).
    static let values: [Double] = [
        0, -0.0, -1, 1, 0.5, 4, 4.000001, 8192, 8193, 100_000, 100_001, 1e9, 1e9 + 1, 8_999_999_999_999_999, 9e15,
        9.223372036854775807e18, 1.8446744073709551615e19, 1e300, -1e300, .greatestFiniteMagnitude, 1e-320,
        .leastNonzeroMagnitude, .nan, .infinity, -.infinity,
    ]

    /// What an accepted spec guarantees to everything downstream of the reader.
    static func checkBounded(_ s: RunSpec, _ what: String) {
        #expect((1 ... RunSpec.maxEpochs).contains(s.epochs), "\(what)")
        #expect((1 ... 8192).contains(s.batchSize) && (1 ... 8192).contains(s.testBatchSize), "\(what)")
        #expect(s.width > 0 && s.width <= 4, "\(what)")
        #expect(s.milestones.count <= RunSpec.maxMilestones && s.milestones.allSatisfy { (1 ... RunSpec.maxEpochs).contains($0) }, "\(what)")
        #expect(s.seed < 9_000_000_000_000_000, "\(what)")
        #expect((s.data.trainLimit ?? 1) > 0 && (s.data.testLimit ?? 1) > 0, "\(what)")
        for l in s.pruning?.layers ?? [] {
            #expect(0 <= l.start && l.start <= l.end && l.end < s.epochs, "\(what)")
            #expect((1 ... RunSpec.maxEpochs).contains(l.period) && l.fraction > 0 && l.fraction < 1, "\(what)")
        }
        if let n = s.pruning?.noise { #expect((0 ... 100_000_000).contains(n.batches), "\(what)") }
        if let c = s.checkpoint {
            #expect((c.everySteps ?? 1) >= 1 && (c.everySteps ?? 1) <= 1_000_000_000, "\(what)")
            #expect((1 ... 10_000).contains(c.keepLast) && (0 ... 100_000).contains(c.keepMilestones) && (-7 ... 19).contains(c.level), "\(what)")
            if let t = c.everySeconds { #expect(t > 0 && t <= 1e7, "\(what)") }
        }
        for x in [s.optimizer.lr, s.optimizer.weightDecay, s.optimizer.beta1, s.optimizer.beta2, s.optimizer.eps, s.gamma, s.width] {
            #expect(x.isFinite, "\(what)")
        }
    }

    @Test func everyNumericFieldIsRefusedByNameOrAcceptedWithinItsRange() throws {
        let base = try JSON.parse(Self.base)
        _ = try RunSpec(json: base)
        var accepted = 0, refused = 0
        for field in Self.fields {
            for v in Self.values {
                let json = setting(base, field.split(separator: ".").map(String.init)[...], .number(v))
                let what = "\(field)=\(v)"
                let spec: RunSpec
                do {
                    spec = try RunSpec(json: json)
                    try spec.validateAgainstModel(memoryLimit: 64 * 1_073_741_824)
                } catch let e as SpecError {
                    refused += 1
                    // The field named is the one changed (or, for a start/end, the other end it breaks).
                    let named = fieldName(field)
                    let partner = named.hasSuffix(".start") ? named.replacingOccurrences(of: ".start", with: ".end") : named
                    #expect(e.field == named || e.field == partner || e.field.hasPrefix("pruning.layers[0]"), "\(what): \(e)")
                    #expect(e.description.count < 300, "\(what): \(e)")
                    continue
                }
                accepted += 1
                Self.checkBounded(spec, what)
                #expect(try RunSpec(json: spec.json) == spec, "\(what) does not round-trip")
                // A preset-style rescale of whatever was accepted cannot trap either.
                for epochs in [1, 2, 7, RunSpec.maxEpochs] {
                    let (scaled, _) = Presets.scale(spec, toEpochs: epochs)
                    #expect(scaled.epochs == epochs)
                    for l in scaled.pruning?.layers ?? [] { #expect(0 <= l.start && l.start <= l.end && l.end < epochs && l.period >= 1, "\(what)") }
                }
            }
        }
        #expect(accepted > 50 && refused > 300, "accepted \(accepted), refused \(refused)")
    }

    @Test func boundaryMessagesNameTheRange() throws {
        let base = try JSON.parse(Self.base)
        let cases: [(String, JSON, String)] = [
            ("seed", .number(9.223372036854775807e18), "must be a non-negative integer below 9e15, got 9.223372036854776e+18"),
            ("epochs", .number(1e18), "must be in 1…100000, got 1e+18"),
            ("batch_size", .number(9e18), "must be in 1…8192, got 9e+18"),
            ("test_batch_size", .number(0), "must be in 1…8192, got 0"),
            ("pruning.period", .number(0), "must be a number of epochs in 1…100000, got 0"),
            ("pruning.layers.0.period", .number(1e10), "must be a number of epochs in 1…100000, got 10000000000"),
            ("pruning.layers.0.start", .number(40), "must be an epoch in 0…39 (0-based), got 40"),
            ("lr_milestones.0", .number(100_001), "must be an epoch in 1…100000, got 100001"),
            ("lr_milestones", .array(Array(repeating: .number(1), count: 1001)), "has 1001 entries; at most 1000"),
            ("checkpoint.every_steps", .number(1e12), "must be a number of steps in 1…1000000000, got 1000000000000"),
            ("width", .number(1e9), "must be in (0, 4], got 1000000000"),
            ("width", .number(.nan), "must be in (0, 4], got null"),
            ("epochs", .number(2.5), "must be an integer, got 2.5"),
        ]
        for (path, value, message) in cases {
            let json = setting(base, path.split(separator: ".").map(String.init)[...], value)
            do {
                _ = try RunSpec(json: json)
                Issue.record("\(path)=\(value.rendered) accepted")
            } catch let e as SpecError {
                #expect(e.description == "run spec field '\(fieldName(path))': \(message)", "\(e.description)")
            }
        }
    }

    /// Batch size and width are each bounded, but together they can ask for hundreds of GiB:
    /// such a spec is refused (naming the batch that dominates) instead of being killed for lack
    /// of memory, and the daemon with it. Every preset fits in 16 GiB.
    @Test func runsThatCannotFitInMemoryAreRefused() throws {
        let gib = 1_073_741_824.0
        var big = try RunSpec.parse(#"{"model": "resnet18", "width": 4, "dataset": {"kind": "cifar10", "path": "/d"}, "epochs": 3, "batch_size": 8192}"#)
        do {
            try big.validateAgainstModel(memoryLimit: 16 * gib)
            Issue.record("accepted resnet18 ×4 at batch 8192")
        } catch let e as SpecError {
            #expect(e.field == "batch_size" && e.message.contains("8192 images of resnet18 at width 4 need about")
                    && e.message.contains("to train; at most 16.0 GiB are available"), "\(e)")
        }
        big.batchSize = 1
        big.testBatchSize = 8192
        do {
            try big.validateAgainstModel(memoryLimit: 16 * gib)
            Issue.record("accepted a test batch of 8192 at width 4")
        } catch let e as SpecError {
            #expect(e.field == "test_batch_size" && e.message.contains("to evaluate"), "\(e)")
        }
        let m = big.estimatedMemory()
        #expect(m.train > 0 && m.test > m.train && m.parameters > 0)
        for p in Presets.all {
            try p.spec.validateAgainstModel(classes: p.spec.data.kind.classes, memoryLimit: 16 * gib)
            let e = p.spec.estimatedMemory(classes: p.spec.data.kind.classes)
            #expect(e.train + e.parameters < 4 * gib, "\(p.name): \(e)")
        }
    }

    /// The extremes the reader accepts start and run: seeds near 9e15, 1000 LR milestones up to
    /// epoch 100000, a pruning period of 100000, data limits of 9e15 (clamped to the data), a
    /// batch larger than the training set, test batches of one, 1e8 noise batches, the widest
    /// checkpoint policy and the smallest retention, zstd level 19.
    @Test func extremeButAcceptedValuesStartAndRun() throws {
        let milestones = (1 ... RunSpec.maxMilestones).map { String($0 * 100) }.joined(separator: ",")
        let spec = try RunSpec.parse(#"""
        {"model": "conv4", "width": 0.0625, "dataset": {"kind": "cifar10", "path": "/unused", "train_limit": 8999999999999999,
         "test_limit": 8999999999999999}, "epochs": 2, "batch_size": 8192, "test_batch_size": 1, "seed": 8999999999999999,
         "lr_milestones": [\#(milestones)], "lr_gamma": 1,
         "pruning": {"period": 100000, "layers": [{"name": "features.conv2", "fraction": 0.999999, "start": 0, "end": 1}]},
         "noise": {"mode": "cumu", "kind": "gaussian", "batches": 100000000, "restore": false},
         "checkpoint": {"every_steps": 1000000000, "every_seconds": 10000000, "keep_last": 1, "keep_milestones": 0, "level": 19}}
        """#)
        try spec.validateAgainstModel()
        let dir = temporaryPath("spec-extremes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = RunOptions()
        options.data = syntheticData(train: 40, test: 9)
        let summary = try ForegroundRun.execute(spec: spec, outDir: dir, threads: 2, options: options, log: { _ in })
        #expect(summary.records.count == 2 && !summary.interrupted)
        #expect(FileManager.default.fileExists(atPath: dir + "/summary.json"))

        // The narrowest model and a batch of one image (BatchNorm over 2×2 maps of one image).
        let tiny = try RunSpec.parse(#"""
        {"model": "vgg11_bn", "width": 1e-300, "dataset": {"kind": "cifar10", "path": "/unused"}, "epochs": 100000,
         "batch_size": 1, "test_batch_size": 8192, "lr_milestones": [100000], "seed": 0}
        """#)
        try tiny.validateAgainstModel()
        let t = try Trainer(spec: tiny, data: syntheticData(train: 3, test: 2), threads: 2)
        #expect(t.network.convolutions.allSatisfy { $0.outChannels == 1 })
        let r = try t.runEpoch()
        #expect(r.epoch == 1 && t.stepsPerEpoch == 3)
    }
}
