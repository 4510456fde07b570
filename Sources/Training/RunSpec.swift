// The run spec: everything that defines one training run, read strictly from JSON and written
// back in canonical form (all defaults filled in) into the run directory, so a run records
// exactly what it ran. The pruning and noise sections of the experiments slot in beside
// "optimizer" as further objects.
import Engine
import Foundation
import PrunedJSON

public struct OptimizerSpec: Sendable, Equatable {
    public enum Kind: String, CaseIterable, Sendable { case adam, sgd }
    public var kind: Kind = .adam
    public var lr: Double = 1e-3
    public var weightDecay: Double = 0
    public var momentum: Double = 0.9
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8

    public var engineKind: OptimizerKind {
        switch kind {
        case .adam: return .adam(beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        case .sgd: return .sgd(momentum: momentum, weightDecay: weightDecay)
        }
    }
}

public struct DataSpec: Sendable, Equatable {
    public var kind: DatasetKind
    public var path: String
    /// Use only the first N training / test samples (file order); nil = all.
    public var trainLimit: Int?
    public var testLimit: Int?

    public init(kind: DatasetKind, path: String, trainLimit: Int? = nil, testLimit: Int? = nil) {
        self.kind = kind
        self.path = path
        self.trainLimit = trainLimit
        self.testLimit = testLimit
    }
}

/// When and how a run checkpoints (spec key "checkpoint"); a checkpoint is always written at
/// each epoch end, and additionally every K steps and/or every T seconds.
public struct CheckpointSpec: Sendable, Equatable {
    public var everySteps: Int?
    public var everySeconds: Double?
    public var keepLast: Int = 3
    /// Pruning-milestone checkpoints kept: the first (the model just before the first prune)
    /// and the newest `keepMilestones − 1`; the rest are thinned like ordinary checkpoints.
    public var keepMilestones: Int = 8
    public var level: Int = 1

    public init(everySteps: Int? = nil, everySeconds: Double? = nil, keepLast: Int = 3, level: Int = 1) {
        self.everySteps = everySteps
        self.everySeconds = everySeconds
        self.keepLast = keepLast
        self.level = level
    }

    var json: JSON {
        var out: [(String, JSON)] = []
        if let k = everySteps { out.append(("every_steps", .number(Double(k)))) }
        if let t = everySeconds { out.append(("every_seconds", .number(t))) }
        return .object(out + [("keep_last", .number(Double(keepLast))), ("keep_milestones", .number(Double(keepMilestones))),
                              ("level", .number(Double(level)))])
    }
}

public struct RunSpec: Sendable, Equatable {
    /// The longest run (`epochs`); LR milestones are bounded by it too, pruning periods by
    /// the same number (`PruningPlan.maxPeriod`).
    public static let maxEpochs = 100_000
    /// Entries of `lr_milestones`.
    public static let maxMilestones = 1000

    public var name: String = ""
    public var architecture: Architecture
    public var width: Double = 1
    public var data: DataSpec
    public var augment: Bool = false
    public var optimizer = OptimizerSpec()
    public var milestones: [Int] = [150, 300]
    public var gamma: Double = 0.1
    public var epochs: Int
    public var batchSize: Int = 128
    public var testBatchSize: Int = 256
    public var seed: UInt64 = 0
    /// Pruning during training (docs/EXPERIMENTS.md §5) and, optionally, noise instead of masking (§7).
    public var pruning: PruningPlan?
    /// Checkpoint cadence and retention (nil: the defaults, a checkpoint at each epoch end).
    public var checkpoint: CheckpointSpec?
    /// Set when the schedule was scaled from a preset's epoch count (ScheduleScaling.swift):
    /// the original count and a note per property of the shape the scaling lost.
    public var scaling: ScalingRecord?

    public init(architecture: Architecture, data: DataSpec, epochs: Int, seed: UInt64 = 0) {
        self.architecture = architecture
        self.data = data
        self.epochs = epochs
        self.seed = seed
    }

    public var schedule: MultiStepSchedule { MultiStepSchedule(baseLR: optimizer.lr, milestones: milestones, gamma: gamma) }

    /// Parses and validates a spec; every problem is a SpecError naming its field.
    public static func parse(_ text: String) throws -> RunSpec {
        let json: JSON
        do { json = try JSON.parse(text) } catch let e as JSONParseError {
            throw SpecError(field: "", message: e.description)
        }
        return try RunSpec(json: json)
    }

    public init(json: JSON) throws {
        let r = try FieldReader(json, path: "")
        name = try r.string("name", default: "")
        architecture = try r.choice("model", Architecture.self)
        width = try r.double("width", default: 1, { $0 > 0 && $0 <= 4 }, "in (0, 4]")
        guard let d = try r.object("dataset") else {
            throw SpecError(field: "dataset", message: "is required (an object with kind and path)")
        }
        data = DataSpec(kind: try d.choice("kind", DatasetKind.self), path: try d.string("path"),
                        trainLimit: try d.optionalInt("train_limit", { $0 > 0 }, "a positive integer below 9e15"),
                        testLimit: try d.optionalInt("test_limit", { $0 > 0 }, "a positive integer below 9e15"))
        if data.path.isEmpty { throw SpecError(field: "dataset.path", message: "must not be empty") }
        try d.finish()
        augment = try r.bool("augment", default: false)
        if let o = try r.object("optimizer") {
            optimizer.kind = try o.choice("kind", OptimizerSpec.Kind.self, default: .adam)
            let defaultLR = optimizer.kind == .adam ? 1e-3 : 0.1
            optimizer.lr = try o.double("lr", default: defaultLR, { $0 > 0 && $0 < 10 }, "in (0, 10)")
            optimizer.weightDecay = try o.double("weight_decay", default: 0, { $0 >= 0 && $0 < 1 }, "in [0, 1)")
            switch optimizer.kind {
            case .sgd:
                optimizer.momentum = try o.double("momentum", default: 0.9, { $0 >= 0 && $0 < 1 }, "in [0, 1)")
            case .adam:
                optimizer.beta1 = try o.double("beta1", default: 0.9, { $0 >= 0 && $0 < 1 }, "in [0, 1)")
                optimizer.beta2 = try o.double("beta2", default: 0.999, { $0 >= 0 && $0 < 1 }, "in [0, 1)")
                optimizer.eps = try o.double("eps", default: 1e-8, { $0 > 0 && $0 < 1 }, "in (0, 1)")
            }
            try o.finish()
        }
        epochs = try r.int("epochs", { $0 >= 1 && $0 <= RunSpec.maxEpochs }, "in 1…\(RunSpec.maxEpochs)")
        milestones = try r.intArray("lr_milestones", default: [150, 300], maxCount: RunSpec.maxMilestones,
                                    { $0 >= 1 && $0 <= RunSpec.maxEpochs }, "an epoch in 1…\(RunSpec.maxEpochs)")
        if milestones != milestones.sorted() {
            throw SpecError(field: "lr_milestones", message: "must be increasing, got \(milestones)")
        }
        gamma = try r.double("lr_gamma", default: 0.1, { $0 > 0 && $0 <= 1 }, "in (0, 1]")
        batchSize = try r.int("batch_size", default: 128, { $0 >= 1 && $0 <= 8192 }, "in 1…8192")
        testBatchSize = try r.int("test_batch_size", default: 256, { $0 >= 1 && $0 <= 8192 }, "in 1…8192")
        // `int` yields only |x| < 9e15, so the conversion is exact.
        seed = UInt64(try r.int("seed", default: 0, { $0 >= 0 }, "a non-negative integer below 9e15"))
        if let p = try r.object("pruning") { pruning = try RunSpec.readPruning(p, epochs: epochs) }
        if let n = try r.object("noise") {
            guard pruning != nil else {
                throw SpecError(field: "noise", message: "needs a \"pruning\" section: noise targets the filters pruning would remove")
            }
            pruning?.noise = NoisePlan(mode: try n.choice("mode", NoisePlan.Mode.self), kind: try n.choice("kind", NoisePlan.Kind.self),
                                       batches: try n.int("batches", { $0 >= 0 && $0 <= 100_000_000 }, "in 0…100000000"),
                                       restore: try n.bool("restore", default: false))
            try n.finish()
        }
        if let plan = pruning {
            do { try plan.validate(epochs: epochs) } catch let e as PruningPlanError { throw SpecError(e) }
        }
        if let c = try r.object("checkpoint") {
            var cs = CheckpointSpec()
            cs.everySteps = try c.optionalInt("every_steps", { $0 >= 1 && $0 <= 1_000_000_000 }, "a number of steps in 1…1000000000")
            if c.raw("every_seconds") != nil {
                cs.everySeconds = try c.double("every_seconds", default: nil, { $0 > 0 && $0 <= 1e7 }, "in (0, 1e7] seconds")
            }
            cs.keepLast = try c.int("keep_last", default: 3, { $0 >= 1 && $0 <= 10_000 }, "in 1…10000")
            cs.keepMilestones = try c.int("keep_milestones", default: 8, { $0 >= 0 && $0 <= 100_000 }, "in 0…100000")
            cs.level = try c.int("level", default: 1, { $0 >= -7 && $0 <= 19 }, "a zstd level in -7…19")
            try c.finish()
            checkpoint = cs
        }
        if let sc = try r.object("scaling") {
            let from = try sc.int("from_epochs", { $0 >= 1 && $0 <= RunSpec.maxEpochs }, "in 1…\(RunSpec.maxEpochs)")
            var notes: [String] = []
            switch sc.raw("notes") {
            case nil: break
            case .array(let items)?:
                for item in items.prefix(1000) {
                    guard let t = item.stringValue else { throw SpecError(field: sc.field("notes"), message: "must be an array of strings") }
                    notes.append(t)
                }
            default: throw SpecError(field: sc.field("notes"), message: "must be an array of strings")
            }
            try sc.finish()
            scaling = ScalingRecord(fromEpochs: from, notes: notes)
        }
        try r.finish()
    }

    /// Reads the "pruning" section: each field's type here, the plan's rules in
    /// `PruningPlan.validate` (called once the noise section is read too).
    static func readPruning(_ p: FieldReader, epochs: Int) throws -> PruningPlan {
        typealias Rule = PruningPlan.Rule
        let scratch = try p.bool("scratch", default: false)
        let period = try p.int("period", default: 1, { $0 >= 1 && $0 <= PruningPlan.maxPeriod }, Rule.period)
        var layers: [LayerPlan] = []
        for item in try p.objects("layers") ?? [] {
            let name = try item.string("name")
            let fraction = try item.double("fraction", default: nil, nil, Rule.fraction)
            let start = try item.int("start", default: scratch ? 0 : nil, nil, Rule.start(epochs: epochs))
            let end = try item.int("end", default: scratch ? 0 : nil, nil, Rule.end(start: start))
            let lp = LayerPlan(name: name, fraction: fraction, start: start, end: end,
                               period: try item.int("period", default: period, nil, Rule.period))
            try item.finish()
            layers.append(lp)
        }
        var plan = PruningPlan(layers: layers)
        plan.scratch = scratch
        plan.score = try p.choice("score", PruneScore.self, default: .l2)
        plan.target = try p.choice("target", PruneTarget.self, default: .largest)
        plan.granularity = try p.choice("granularity", PruneGranularity.self, default: .structured)
        plan.maskBatchNorm = try p.bool("mask_batchnorm", default: true)
        try p.finish()
        return plan
    }

    /// Checks the spec against the model it builds (layer names, scores that need BatchNorm or
    /// residual blocks, noise on top-level convolutions). Errors name the spec field.
    /// Also refuses a spec whose estimated memory (`estimatedMemory`) exceeds
    /// `memoryLimit` bytes (default: the machine's physical memory), naming the batch size that
    /// dominates: such a run could only be killed for lack of memory, and its process with it.
    public func validateAgainstModel(classes: Int = 10, memoryLimit: Double? = Double(ProcessInfo.processInfo.physicalMemory)) throws {
        // Layer names do not depend on width: validate on a narrow copy (fast).
        let narrowWidth = min(width, 1.0 / 16)
        let net = ModelFactory.make(architecture, classes: classes, width: narrowWidth, seed: seed)
        if let limit = memoryLimit {
            let m = RunSpec.memoryEstimate(narrow: net, scale: width / narrowWidth, batchSize: batchSize, testBatchSize: testBatchSize)
            if m.train + m.parameters > limit || m.test + m.parameters > limit {
                let trainDominates = m.train >= m.test
                func gib(_ b: Double) -> String { String(format: "%.1f GiB", b / 1_073_741_824) }
                throw SpecError(field: trainDominates ? "batch_size" : "test_batch_size",
                                message: "\(trainDominates ? batchSize : testBatchSize) images of \(architecture.rawValue) at width \(JSON.format(width)) "
                                    + "need about \(gib(max(m.train, m.test) + m.parameters)) of memory to \(trainDominates ? "train" : "evaluate"); "
                                    + "at most \(gib(limit)) are available (lower the batch size or the width)")
            }
        }
        guard let plan = pruning else { return }
        do { _ = try Pruner(plan: plan, network: net, seed: seed, epochs: epochs) } catch let e as PruningPlanError { throw SpecError(e) }
    }

    /// A rough estimate of the memory of one run, in bytes: what one training batch keeps for
    /// backward plus its gradients, what one test batch holds at a time, and the parameters
    /// with their gradients and two optimizer moments. It omits convolution scratch, Winograd's
    /// transformed weights and (small planes) inputs kept for backward, the dataset and allocator
    /// overhead, so real use is higher; it only serves to refuse runs that cannot fit.
    public func estimatedMemory(classes: Int = 10) -> (train: Double, test: Double, parameters: Double) {
        let narrowWidth = min(width, 1.0 / 16)
        let net = ModelFactory.make(architecture, classes: classes, width: narrowWidth, seed: seed)
        return RunSpec.memoryEstimate(narrow: net, scale: width / narrowWidth, batchSize: batchSize, testBatchSize: testBatchSize)
    }

    /// Scales the sizes of `narrow` (the model at a narrower width) by `scale`, the ratio of the
    /// widths: activations grow linearly with the width, parameters with its square.
    static func memoryEstimate(narrow: Network, scale: Double, batchSize: Int, testBatchSize: Int)
        -> (train: Double, test: Double, parameters: Double) {
        // Training keeps a map per layer (none for a ReLU in place or fused, four of its output
        // size for a residual block: two convolution outputs, BN1's output, the sum); gradients,
        // and an evaluation's activations, take up to three maps of the largest size (the
        // context's arena, Engine/ActivationArena.swift).
        var kept = 0.0, largest = 0.0
        for (layer, (_, shape)) in zip(narrow.layers, narrow.shapes()) {
            let n = Double(shape.channels * shape.height * shape.width)
            largest = max(largest, n)
            if let relu = layer as? ReLU, relu.keepsNoOutput { continue }
            kept += layer is BasicBlock ? 4 * n : n
        }
        let bytes = 4.0
        return (train: Double(batchSize) * (kept + 3 * largest) * scale * bytes, test: Double(testBatchSize) * 3 * largest * scale * bytes,
                parameters: Double(narrow.parameterCount) * scale * scale * bytes * 4)
    }

    /// Canonical JSON with every default filled in.
    public var json: JSON {
        var opt: [(String, JSON)] = [("kind", .string(optimizer.kind.rawValue)), ("lr", .number(optimizer.lr)),
                                     ("weight_decay", .number(optimizer.weightDecay))]
        switch optimizer.kind {
        case .sgd: opt.append(("momentum", .number(optimizer.momentum)))
        case .adam: opt += [("beta1", .number(optimizer.beta1)), ("beta2", .number(optimizer.beta2)), ("eps", .number(optimizer.eps))]
        }
        var dataset: [(String, JSON)] = [("kind", .string(data.kind.rawValue)), ("path", .string(data.path))]
        if let l = data.trainLimit { dataset.append(("train_limit", .number(Double(l)))) }
        if let l = data.testLimit { dataset.append(("test_limit", .number(Double(l)))) }
        return .object([
            ("name", .string(name)), ("model", .string(architecture.rawValue)), ("width", .number(width)),
            ("dataset", .object(dataset)), ("augment", .bool(augment)), ("optimizer", .object(opt)),
            ("epochs", .number(Double(epochs))), ("lr_milestones", .array(milestones.map { .number(Double($0)) })),
            ("lr_gamma", .number(gamma)), ("batch_size", .number(Double(batchSize))),
            ("test_batch_size", .number(Double(testBatchSize))), ("seed", .number(Double(seed))),
        ] + pruningJSON + (checkpoint.map { [("checkpoint", $0.json)] } ?? [])
          + (scaling.map { [("scaling", .object([("from_epochs", .number(Double($0.fromEpochs))),
                                                 ("notes", .array($0.notes.map { .string($0) }))]))] } ?? []))
    }

    private var pruningJSON: [(String, JSON)] {
        guard let p = pruning else { return [] }
        var out: [(String, JSON)] = [("pruning", .object([
            ("score", .string(p.score.rawValue)), ("target", .string(p.target.rawValue)),
            ("granularity", .string(p.granularity.rawValue)), ("mask_batchnorm", .bool(p.maskBatchNorm)),
            ("scratch", .bool(p.scratch)),
            ("layers", .array(p.layers.map { l in
                .object([("name", .string(l.name)), ("fraction", .number(l.fraction)), ("start", .number(Double(l.start))),
                         ("end", .number(Double(l.end))), ("period", .number(Double(l.period)))])
            })),
        ]))]
        if let n = p.noise {
            out.append(("noise", .object([("mode", .string(n.mode.rawValue)), ("kind", .string(n.kind.rawValue)),
                                          ("batches", .number(Double(n.batches))), ("restore", .bool(n.restore))])))
        }
        return out
    }
}

extension SpecError {
    /// A pruning plan's problem under the spec's field names: the plan's fields are in the
    /// "pruning" section, the noise fields in "noise".
    init(_ e: PruningPlanError) {
        self.init(field: e.field.hasPrefix("noise") ? e.field : "pruning." + e.field, message: e.message)
    }
}
