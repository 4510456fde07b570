// Compaction: structured pruning removes filters, so the engine skips them instead of
// multiplying zeros. Masks and full-shape parameters stay the source of truth (checkpoints,
// forks and exports are unchanged); after every pruning event and on resume the pruner asks
// this planner which channels of each convolution and dense layer take part in its GEMMs, and
// the layers run over those only (CompactConv2D.swift, CompactLinear.swift).
//
// What leaves the computation, following the masked forward exactly:
// • Output channels whose weights are held at zero (a pruned filter or structured neuron; not
//   under E[BN] scores, which zero only the BatchNorm): their output is the layer's bias (or 0)
//   over the whole plane, written without a GEMM, so the BatchNorm after them sees the same
//   constant and its running statistics are those of the masked run.
// • Input channels that are exactly zero: the output of a masked BatchNorm (γ = β = 0 gives 0
//   for any input), of a pruned bias-free convolution or neuron, carried through ReLU, pooling
//   and Flatten; a residual block's output channel is zero only when both its residual branch
//   and its (keep-gated) shortcut are. Where BatchNorm is not masked (F5_0, Prune_L without BN
//   masking) the pruned channel carries BN's β, which is not folded: that channel is kept as an
//   input of the next layer (only the pruned conv's own output GEMM row is skipped).
// Backward follows: gradients of skipped weights are not accumulated (they are held at zero
// after every step, with their optimizer moments), and an input channel known to be zero gets a
// zero input gradient; on its way back it meets the ReLU or masked BatchNorm that made it zero,
// where the masked computation zeroes it too. The results equal the masked computation's up to
// float rounding (fewer terms in each GEMM sum), and are deterministic in the same way.

/// The channels of one convolution (or the neurons and features of one dense layer) that take
/// part in its GEMMs.
public struct ChannelSelection: Sendable, Equatable {
    /// Output channels computed, ascending; each other one is its bias (or 0) everywhere.
    public let outputs: [Int]
    /// Input channels (dense layers: features) read, ascending; the others are exactly zero.
    public let inputs: [Int]
    /// The layer's full output and input channel counts.
    public let outputCount: Int
    public let inputCount: Int

    public init(outputs: [Int], inputs: [Int], outputCount: Int, inputCount: Int) {
        self.outputs = outputs
        self.inputs = inputs
        self.outputCount = outputCount
        self.inputCount = inputCount
    }

    public var isFull: Bool { outputs.count == outputCount && inputs.count == inputCount }
}

public enum Compaction {
    /// What a pruner holds at zero, by layer identity.
    struct ZeroFacts {
        /// Convolutions and dense layers: units whose weights are held at zero (dense: and bias).
        var units: [ObjectIdentifier: Set<Int>] = [:]
        /// BatchNorms: channels whose γ and β are held at zero.
        var batchNorm: [ObjectIdentifier: Set<Int>] = [:]

        init(_ pruner: Pruner) {
            let plan = pruner.plan
            guard plan.noise == nil else { return }
            let ebn = plan.score == .ebn || plan.score == .ebn_alt
            for (l, layer) in pruner.layers.enumerated() {
                let pruned = Set(pruner.kept[l].indices.filter { !pruner.kept[l][$0] })
                guard !pruned.isEmpty else { continue }
                if let c = layer.conv {
                    if !ebn { units[ObjectIdentifier(c)] = pruned }
                    if let bn = layer.batchNorm, ebn || plan.maskBatchNorm { batchNorm[ObjectIdentifier(bn)] = pruned }
                } else if let d = layer.linear, plan.granularity == .structured {
                    units[ObjectIdentifier(d)] = pruned
                }
            }
        }

        func zeroUnits(_ layer: AnyObject) -> Set<Int> { units[ObjectIdentifier(layer)] ?? [] }
        func zeroChannels(_ bn: BatchNorm2D) -> Set<Int> { batchNorm[ObjectIdentifier(bn)] ?? [] }
    }

    /// The selection of every convolution and dense layer of `network` implied by `pruner`'s
    /// masks (full selections included), keyed by layer identity.
    public static func selections(_ network: Network, pruner: Pruner) -> [ObjectIdentifier: ChannelSelection] {
        let facts = ZeroFacts(pruner)
        var out: [ObjectIdentifier: ChannelSelection] = [:]

        func select(_ layer: AnyObject, outputs: Int, skipped: Set<Int>, dead: [Bool]) {
            out[ObjectIdentifier(layer)] = ChannelSelection(outputs: (0 ..< outputs).filter { !skipped.contains($0) },
                                                            inputs: dead.indices.filter { !dead[$0] },
                                                            outputCount: outputs, inputCount: dead.count)
        }
        func mask(_ count: Int, _ zero: Set<Int>) -> [Bool] { (0 ..< count).map { zero.contains($0) } }
        /// Runs a convolution's selection; returns which of its output channels are zero.
        func conv(_ c: Conv2D, _ dead: [Bool]) -> [Bool] {
            let skipped = facts.zeroUnits(c)
            select(c, outputs: c.outChannels, skipped: skipped, dead: dead)
            return c.bias == nil ? mask(c.outChannels, skipped) : [Bool](repeating: false, count: c.outChannels)
        }

        var shape = network.inputShape
        var dead = [Bool](repeating: false, count: shape.channels)
        for layer in network.layers {
            let next = layer.outputShape(shape)
            switch layer {
            case let c as Conv2D:
                dead = conv(c, dead)
            case let bn as BatchNorm2D:
                dead = mask(bn.channels, facts.zeroChannels(bn))
            case is ReLU, is MaxPool2D, is AvgPool2D:
                break
            case is Flatten:
                let plane = shape.layout == .rowMajor ? 1 : shape.height * shape.width
                dead = dead.flatMap { [Bool](repeating: $0, count: plane) }
            case let d as Linear:
                let skipped = facts.zeroUnits(d)
                select(d, outputs: d.outFeatures, skipped: skipped, dead: dead)
                dead = mask(d.outFeatures, skipped)
            case let b as BasicBlock:
                _ = conv(b.conv1, dead)
                let residual1 = mask(b.bn1.channels, facts.zeroChannels(b.bn1))
                _ = conv(b.conv2, residual1)
                let residual = mask(b.bn2.channels, facts.zeroChannels(b.bn2))
                let shortcut: [Bool]
                switch b.shortcut {
                case .identity:
                    shortcut = dead
                case .projection(let c, _):
                    _ = conv(c, dead)
                    shortcut = [Bool](repeating: false, count: next.channels)  // its BatchNorm is never masked
                case .paddedSubsample(let pad):
                    shortcut = (0 ..< next.channels).map { c in c < pad || c - pad >= dead.count || dead[c - pad] }
                }
                dead = (0 ..< next.channels).map { c in residual[c] && (b.keep[c] == 0 || shortcut[c]) }
            default:
                dead = [Bool](repeating: false, count: next.channels)
            }
            if dead.count != next.channels { dead = [Bool](repeating: false, count: next.channels) }
            shape = next
        }
        return out
    }

    /// Installs on every convolution and dense layer of `network` the selection `pruner`
    /// implies (a layer whose selection is full runs as before), or removes all compaction when
    /// `pruner` is nil. A layer whose selection is unchanged keeps its compact state.
    public static func install(_ pruner: Pruner?, on network: Network) {
        let chosen = pruner.map { selections(network, pruner: $0) } ?? [:]
        for c in network.convolutions {
            guard let s = chosen[ObjectIdentifier(c)], !s.isFull else { c.compact = nil; continue }
            if c.compact?.selection != s { c.compact = CompactConv2D(c, store: network.store, selection: s) }
        }
        for case let d as Linear in network.layers {
            guard let s = chosen[ObjectIdentifier(d)], !s.isFull else { d.compact = nil; continue }
            if d.compact?.selection != s { d.compact = CompactLinear(d, store: network.store, selection: s) }
        }
    }
}

extension Network {
    /// Multiply-accumulates of one forward pass of one sample as executed: like `forwardMACs`,
    /// but over the channels that compaction keeps in each GEMM (equal to it when none is on).
    public func executedForwardMACs() -> Int {
        var s = inputShape, total = 0
        func conv(_ c: Conv2D, _ input: FeatureShape) -> Int {
            let o = c.outputShape(input)
            let outputs = c.compact?.selection.outputs.count ?? c.outChannels
            let inputs = c.compact?.selection.inputs.count ?? c.inChannels
            return outputs * o.height * o.width * inputs * c.kernel * c.kernel
        }
        for l in layers {
            switch l {
            case let c as Conv2D: total += conv(c, s)
            case let d as Linear:
                total += (d.compact?.selection.inputs.count ?? d.inFeatures) * (d.compact?.selection.outputs.count ?? d.outFeatures)
            case let b as BasicBlock:
                total += conv(b.conv1, s) + conv(b.conv2, b.conv1.outputShape(s))
                if case .projection(let c, _) = b.shortcut { total += conv(c, s) }
            default: break
            }
            s = l.outputShape(s)
        }
        return total
    }
}

/// An ascending index list as maximal runs of consecutive indices, so that gathers and
/// scatters between full and compact layouts copy whole runs (one run when nothing is dropped).
struct IndexRuns {
    struct Run {
        /// Index `start + k` of the full layout is element `position + k` of the compact one.
        let start: Int
        let position: Int
        let count: Int
    }

    let runs: [Run]

    init(_ ascending: [Int]) {
        var out: [Run] = []
        var i = 0
        while i < ascending.count {
            var j = i + 1
            while j < ascending.count && ascending[j] == ascending[j - 1] + 1 { j += 1 }
            out.append(Run(start: ascending[i], position: i, count: j - i))
            i = j
        }
        runs = out
    }

    /// compact[position·block …] = full[start·block …] for every run.
    @inline(__always) func gather(_ full: UnsafePointer<Float>, into compact: UnsafeMutablePointer<Float>, block: Int = 1) {
        for r in runs { (compact + r.position &* block).update(from: full + r.start &* block, count: r.count &* block) }
    }

    /// full[start·block …] = compact[position·block …] for every run (other entries untouched).
    @inline(__always) func scatter(_ compact: UnsafePointer<Float>, into full: UnsafeMutablePointer<Float>, block: Int = 1) {
        for r in runs { (full + r.start &* block).update(from: compact + r.position &* block, count: r.count &* block) }
    }

    /// full[start·block …] += compact[position·block …] for every run.
    @inline(__always) func scatterAdd(_ compact: UnsafePointer<Float>, into full: UnsafeMutablePointer<Float>, block: Int = 1) {
        for r in runs {
            let d = full + r.start &* block, s = compact + r.position &* block
            for t in 0 ..< r.count &* block { d[t] += s[t] }
        }
    }
}
