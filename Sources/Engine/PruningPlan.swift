// A pruning plan (docs/EXPERIMENTS.md §5): which layers lose which fraction of their units on which
// schedule, by which score, granularity and target, optionally with noise instead of masks
// (docs/EXPERIMENTS.md §7); and `PruningPlan.validate`, the one home of the rules a plan obeys regardless of
// the model. Pruning.swift carries a plan out.

/// How a unit is scored for pruning (docs/EXPERIMENTS.md §5.3). The checks and the pruning code ask the
/// properties below, never for particular cases.
public enum PruneScore: String, CaseIterable, Sendable {
    case l2, l1, ebn, ebn_alt, activations

    /// Scores weight magnitudes (L1 or L2 norm of a filter or neuron, |w| of a single weight):
    /// the only scores unstructured pruning and noise injection allow.
    public var scoresWeights: Bool {
        switch self {
        case .l1, .l2: return true
        case .ebn, .ebn_alt, .activations: return false
        }
    }

    /// Scores a unit by the BatchNorm after it (E[BN]): every pruned layer needs one.
    public var needsBatchNorm: Bool {
        switch self {
        case .ebn, .ebn_alt: return true
        case .l1, .l2, .activations: return false
        }
    }

    /// Prunes through that BatchNorm: a pruned unit's γ and β are held at zero while its
    /// convolution weights keep training (the authors' E[BN] masking).
    public var prunesThroughBatchNorm: Bool { needsBatchNorm }

    /// E[ReLU(M)] with s = signed γ rather than |γ| (the _alt variant).
    public var usesSignedGamma: Bool { self == .ebn_alt }

    /// Scores by activations recorded during the forward pass, which residual blocks keep
    /// (`BasicBlock.enableActivationScores`).
    public var needsActivations: Bool {
        switch self {
        case .activations: return true
        case .l1, .l2, .ebn, .ebn_alt: return false
        }
    }

    /// Defined only for the convolutions of residual blocks (where activations are recorded).
    public var needsResidualBlock: Bool { needsActivations }
}

public enum PruneTarget: String, CaseIterable, Sendable { case smallest, largest, random }
public enum PruneGranularity: String, CaseIterable, Sendable {
    /// Whole filters (conv) or neurons (dense).
    case structured
    /// Individual weights (dense layers; the poster's Conv4 "U" condition).
    case unstructured
}

/// One layer's share of a pruning plan.
public struct LayerPlan: Sendable, Equatable {
    public var name: String
    public var fraction: Double
    public var start: Int
    public var end: Int
    public var period: Int

    public init(name: String, fraction: Double, start: Int, end: Int, period: Int) {
        self.name = name
        self.fraction = fraction
        self.start = start
        self.end = end
        self.period = period
    }

    /// range(start, end + 1, period): the 0-based epochs after whose training this layer prunes.
    public var events: [Int] { Array(stride(from: start, through: end, by: max(period, 1))) }
}

public struct NoisePlan: Sendable, Equatable {
    public enum Mode: String, CaseIterable, Sendable { case iter, cumu }
    public enum Kind: String, CaseIterable, Sendable { case gaussian, zeroing }
    public var mode: Mode
    public var kind: Kind
    /// N: noise is applied on N + 1 forward calls after each targeting event.
    public var batches: Int
    public var restore: Bool

    public init(mode: Mode, kind: Kind, batches: Int, restore: Bool) {
        self.mode = mode
        self.kind = kind
        self.batches = batches
        self.restore = restore
    }
}

public struct PruningPlan: Sendable, Equatable {
    public var layers: [LayerPlan]
    public var score: PruneScore = .l2
    public var target: PruneTarget = .largest
    public var granularity: PruneGranularity = .structured
    /// Mask the BatchNorm that follows a pruned conv (false: the F5_0 "Prune_L" variant where
    /// BN β still passes through).
    public var maskBatchNorm = true
    /// Prune the whole fraction at epoch 0 before any training (start = end = 0).
    public var scratch = false
    public var noise: NoisePlan?

    public init(layers: [LayerPlan]) { self.layers = layers }

    /// The longest pruning period, in epochs (as long as the longest run).
    public static let maxPeriod = 100_000

    /// How the rules of `validate` read in errors ("must be <rule>, got <value>"); a spec
    /// reader words its own messages about the same fields (missing, not a number) with them.
    public enum Rule {
        public static let fraction = "in (0, 1)"
        public static func start(epochs: Int) -> String { "an epoch in 0…\(epochs - 1) (0-based)" }
        public static func end(start: Int) -> String { "≥ start (\(start))" }
        public static let period = "a number of epochs in 1…\(PruningPlan.maxPeriod)"
    }

    /// Checks everything about the plan that does not depend on the model, for a run of
    /// `epochs` epochs: at least one layer, each listed once, with a fraction in (0, 1) and a
    /// schedule inside the run (0 ≤ start ≤ end < epochs, 1 ≤ period ≤ maxPeriod; start = end =
    /// 0 for scratch pruning), and a score that suits the granularity and the noise. Errors name
    /// the field (`layers[i].end`, `score`, `noise`, …). The spec reader and `Pruner.init` (which
    /// adds the checks against a network) both validate here.
    public func validate(epochs: Int) throws {
        if layers.isEmpty {
            throw PruningPlanError(field: "layers", message: "is required: a non-empty array of {name, fraction, start, end[, period]}")
        }
        var seen: Set<String> = []
        for (i, lp) in layers.enumerated() {
            let f = "layers[\(i)]"
            guard lp.fraction > 0 && lp.fraction < 1 else {
                throw PruningPlanError(field: f + ".fraction", message: "must be \(Rule.fraction), got \(PruningPlanError.format(lp.fraction))")
            }
            guard lp.start >= 0 && lp.start < epochs else {
                throw PruningPlanError(field: f + ".start", message: "must be \(Rule.start(epochs: epochs)), got \(lp.start)")
            }
            guard lp.end >= lp.start else {
                throw PruningPlanError(field: f + ".end", message: "must be \(Rule.end(start: lp.start)), got \(lp.end)")
            }
            guard lp.end < epochs else {
                throw PruningPlanError(field: f + ".end",
                                       message: "epoch \(lp.end) is not before the end of training (epochs = \(epochs); epochs are 0-based)")
            }
            if scratch && (lp.start != 0 || lp.end != 0) {
                throw PruningPlanError(field: f + ".start", message: "scratch pruning happens at epoch 0: start and end must be 0")
            }
            guard lp.period >= 1 && lp.period <= PruningPlan.maxPeriod else {
                throw PruningPlanError(field: f + ".period", message: "must be \(Rule.period), got \(lp.period)")
            }
            guard seen.insert(lp.name).inserted else {
                throw PruningPlanError(field: f + ".name", message: "\(lp.name) is listed twice")
            }
        }
        if granularity == .unstructured && !score.scoresWeights {
            throw PruningPlanError(field: "score", message: "unstructured pruning scores weights by magnitude: use l1 or l2")
        }
        if noise != nil && !score.scoresWeights {
            throw PruningPlanError(field: "noise", message: "noise targets filters by weight norm: use score l1 or l2")
        }
        if noise != nil && granularity == .unstructured {
            throw PruningPlanError(field: "noise", message: "noise injection is defined for structured (filter) targets")
        }
    }
}

/// A problem of a pruning plan, naming its field within the plan (`layers[0].end`, `score`,
/// `noise.restore`, …).
public struct PruningPlanError: Error, CustomStringConvertible, Equatable {
    public let field: String
    public let message: String
    public var description: String { "\(field): \(message)" }

    /// A number as a spec's JSON writes it (PrunedJSON's `JSON.format`): whole numbers without
    /// a fraction, `null` for NaN and infinities.
    static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d.rounded() == d && abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }
}
