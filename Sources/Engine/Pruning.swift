// Pruning during training (docs/EXPERIMENTS.md §5), carrying out a PruningPlan (PruningPlan.swift): the per-layer linear schedule, the scores (L1, L2, E[BN],
// E[BN]_alt, activations), the selection of exactly k units among the unpruned ones (with the
// authors' tie rule), and masks. Masking is done by keeping pruned units at exactly zero in
// storage — weights, BatchNorm γ/β and their optimizer moments — and re-applying that after
// every optimizer step; the network's outputs are identical to the authors' masked forward
// (docs/EXPERIMENTS.md §5.6). The engine then leaves pruned units out of its GEMMs (Compaction.swift),
// which changes results only by float rounding. In noise mode (docs/EXPERIMENTS.md §7) nothing is
// masked: targeted filters are perturbed for a
// window of forward calls instead.
import Foundation

/// The schedule arithmetic of docs/EXPERIMENTS.md §5.2, in IEEE double exactly as the authors' Python.
public enum PruneSchedule {
    /// K_final = ceil((1 − frac) · N)
    public static func finalKept(units n: Int, fraction: Double) -> Int { Int(((1 - fraction) * Double(n)).rounded(.up)) }

    /// kept_i = ceil(K + ((N − K)·(n − i)) / n) for the i-th (1-based) of n events.
    public static func kept(event i: Int, of n: Int, units: Int, finalKept k: Int) -> Int {
        Int((Double(k) + Double((units - k) * (n - i)) / Double(n)).rounded(.up))
    }

    /// Units to prune at the i-th (1-based) of n events of a layer of `units` with `already`
    /// pruned (≤ 0: none at this event). Pruner.prune and the schedule preview both use it.
    public static func toPrune(event i: Int, of n: Int, units: Int, fraction: Double, already: Int) -> Int {
        units - kept(event: i, of: n, units: units, finalKept: finalKept(units: units, fraction: fraction)) - already
    }

    /// The number pruned at each event, given no other pruning.
    public static func amounts(units: Int, fraction: Double, events n: Int) -> [Int] {
        let k = finalKept(units: units, fraction: fraction)
        var pruned = 0
        return (1 ... max(n, 1)).map { i in
            let now = max(0, units - kept(event: i, of: n, units: units, finalKept: k) - pruned)
            pruned += now
            return now
        }
    }

    /// Positions (into `scores`) of the k units to prune: the k largest (or smallest) with the
    /// authors' rule — candidates are those at or beyond the k-th value; if every unit is a
    /// candidate the first k are taken; if ties make more than k, the first k by index.
    public static func select(scores: [Double], k: Int, largest: Bool) -> [Int] {
        let n = scores.count
        guard k > 0, n > 0 else { return [] }
        if k >= n { return Array(0 ..< n) }
        // Total order: NaN counts as the smallest value.
        func key(_ v: Double) -> Double { v.isNaN ? -.infinity : v }
        let sorted = scores.map(key).sorted(by: largest ? (>) : (<))
        let cutoff = sorted[k - 1]
        let candidates = (0 ..< n).filter { largest ? key(scores[$0]) >= cutoff : key(scores[$0]) <= cutoff }
        if candidates.count == n { return Array(0 ..< k) }
        return Array(candidates.prefix(k))
    }

    /// E[ReLU(M)] for M ~ N(β, s²): s = |γ| (or signed γ for the _alt variant). docs/EXPERIMENTS.md §5.3.
    public static func expectedBN(gamma: Double, beta: Double, signed: Bool) -> Double {
        let s = signed ? gamma : abs(gamma)
        let alpha = (0 - beta) / s
        let z = 1 - normalCDF(alpha)
        if z.isNaN { return 0 }
        var t = beta + normalPDF(alpha) / z * s
        if z == 0 { t = 0 }
        let e = z * t
        return e.isNaN ? 0 : e
    }

    static func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }
    static func normalPDF(_ x: Double) -> Double { exp(-0.5 * x * x) / (2 * Double.pi).squareRoot() }
}

/// A layer that can be pruned, located in a network.
public struct PrunableLayer {
    public let name: String
    public let conv: Conv2D?
    public let linear: Linear?
    /// The BatchNorm directly after the conv, if any.
    public let batchNorm: BatchNorm2D?
    /// The residual block whose conv1/conv2 this is.
    public let block: BasicBlock?
    public let isSecondBlockConv: Bool
    /// A top-level layer of the network (noise injection hooks these).
    public let topLevel: Bool

    /// Filters or neurons.
    public var structuredUnits: Int { conv?.outChannels ?? linear?.outFeatures ?? 0 }
    public var kind: String { conv != nil ? "conv" : "dense" }
}

extension Network {
    /// Every prunable layer in forward order: top-level convolutions, dense layers other than
    /// the output layer, and the two convolutions of each residual block (never shortcuts).
    public func prunableLayers() -> [PrunableLayer] {
        var out: [PrunableLayer] = []
        let lastLinear = layers.lastIndex { $0 is Linear }
        for (i, l) in layers.enumerated() {
            switch l {
            case let c as Conv2D where i > 0 || !architecture.isResNet:
                let bn = i + 1 < layers.count ? layers[i + 1] as? BatchNorm2D : nil
                out.append(PrunableLayer(name: c.name, conv: c, linear: nil, batchNorm: bn, block: nil,
                                         isSecondBlockConv: false, topLevel: true))
            case let d as Linear where i != lastLinear:
                out.append(PrunableLayer(name: d.name, conv: nil, linear: d, batchNorm: nil, block: nil,
                                         isSecondBlockConv: false, topLevel: true))
            case let b as BasicBlock:
                out.append(PrunableLayer(name: b.conv1.name, conv: b.conv1, linear: nil, batchNorm: b.bn1, block: b,
                                         isSecondBlockConv: false, topLevel: false))
                out.append(PrunableLayer(name: b.conv2.name, conv: b.conv2, linear: nil, batchNorm: b.bn2, block: b,
                                         isSecondBlockConv: true, topLevel: false))
            default: break
            }
        }
        return out
    }
}

/// What one layer did at a pruning event.
public struct LayerPruning: Sendable, Equatable {
    public var layer: String
    public var k: Int
    /// Mean score of the pruned units.
    public var meanScore: Double

    public init(layer: String, k: Int, meanScore: Double) {
        self.layer = layer
        self.k = k
        self.meanScore = meanScore
    }
}

/// Pruning state of a run: masks, schedule progress, activation and noise state.
public final class Pruner {
    public let plan: PruningPlan
    public let layers: [PrunableLayer]
    public let plans: [LayerPlan]
    /// kept[l][u] — false once unit u of layer l is pruned (or targeted, in noise mode).
    public private(set) var kept: [[Bool]]
    /// Events already performed per layer.
    public private(set) var eventsDone: [Int]
    /// Noise: forward calls since the last targeting event, per layer (large = inactive).
    public private(set) var noiseCounter: [Int]
    /// Noise: units targeted at the latest event, per layer.
    public private(set) var newlyTargeted: [[Int]]
    /// Noise: the epoch of the latest targeting event (part of the random stream key).
    public private(set) var noiseEventEpoch: [Int]
    /// Noise with restore: saved values (weights of each targeted filter, then γ, β, mean, var).
    public private(set) var saved: [[Float]]
    private unowned let network: Network
    private let seed: UInt64
    private var zeroRanges: [Range<Int>] = []
    private var zeroStateRanges: [Range<Int>] = []

    static let inactive = Int.max / 2

    /// Whether pruned units leave the GEMMs (Compaction.swift), refreshed after every event
    /// and on restore; false runs the masked computation over full shapes.
    public var compacts = true { didSet { refreshCompaction() } }

    private func refreshCompaction() { Compaction.install(compacts && plan.noise == nil ? self : nil, on: network) }

    /// Validates `plan` (`PruningPlan.validate`) and then against `network`; every problem
    /// names the field (`layers[i].name`…).
    public init(plan: PruningPlan, network: Network, seed: UInt64, epochs: Int) throws {
        try plan.validate(epochs: epochs)
        self.plan = plan
        self.network = network
        self.seed = seed
        let available = network.prunableLayers()
        let model = network.architecture.rawValue
        var found: [(Int, PrunableLayer, LayerPlan)] = []
        for (i, lp) in plan.layers.enumerated() {
            let f = "layers[\(i)]"
            guard let pos = available.firstIndex(where: { $0.name == lp.name }) else {
                throw PruningPlanError(field: f + ".name", message: "no prunable layer \"\(lp.name)\" in \(model); "
                                       + "prunable layers: \(available.map(\.name).joined(separator: ", "))")
            }
            let layer = available[pos]
            if plan.score.needsBatchNorm && layer.batchNorm == nil {
                throw PruningPlanError(field: "score", message: "\(plan.score.rawValue) needs a BatchNorm after \(lp.name); \(model) has none there")
            }
            if plan.score.needsResidualBlock && layer.block == nil {
                throw PruningPlanError(field: "score", message: "\(plan.score.rawValue) is defined for residual-block convolutions, not \(lp.name)")
            }
            if plan.granularity == .unstructured && layer.linear == nil {
                throw PruningPlanError(field: "granularity", message: "unstructured pruning applies to dense layers; \(lp.name) is a convolution")
            }
            if let noise = plan.noise {
                if !layer.topLevel || layer.conv == nil {
                    throw PruningPlanError(field: f + ".name", message: "noise injection applies to top-level convolutions (VGG11, Conv4), not \(lp.name)")
                }
                if noise.restore && layer.batchNorm == nil {
                    throw PruningPlanError(field: "noise.restore", message: "restore saves the BatchNorm after \(lp.name); it has none")
                }
            }
            found.append((pos, layer, lp))
        }
        found.sort { $0.0 < $1.0 }    // forward order, as the authors' module walk
        layers = found.map(\.1)
        plans = found.map(\.2)
        kept = layers.map { l in [Bool](repeating: true, count: Pruner.units(l, plan.granularity)) }
        eventsDone = [Int](repeating: 0, count: layers.count)
        noiseCounter = [Int](repeating: Pruner.inactive, count: layers.count)
        newlyTargeted = [[Int]](repeating: [], count: layers.count)
        noiseEventEpoch = [Int](repeating: 0, count: layers.count)
        saved = [[Float]](repeating: [], count: layers.count)
        if plan.score.needsActivations { for l in layers { l.block?.enableActivationScores() } }
        if plan.noise != nil { installNoiseHook() }
    }

    static func units(_ l: PrunableLayer, _ g: PruneGranularity) -> Int {
        if g == .unstructured, let d = l.linear { return d.inFeatures * d.outFeatures }
        return l.structuredUnits
    }

    /// Units pruned so far, per layer (forward order).
    public var prunedCounts: [(String, Int)] { zip(layers, kept).map { ($0.name, $1.filter { !$0 }.count) } }

    /// True while some layer's noise window is open.
    public var noiseActive: Bool { plan.noise.map { n in noiseCounter.contains { $0 <= n.batches } } ?? false }

    /// Whether any layer has an event at `epoch`.
    public func hasEvent(at epoch: Int) -> Bool { plans.contains { $0.events.contains(epoch) } }

    // MARK: scores

    /// Scores of every unit of layer `l` (pruned ones included; callers filter).
    public func scores(_ l: Int) -> [Double] {
        let layer = layers[l], store = network.store
        switch plan.score {
        case .ebn, .ebn_alt:
            guard let bn = layer.batchNorm else { return [] }
            let g = store.value(bn.gamma), b = store.value(bn.beta), signed = plan.score.usesSignedGamma
            return (0 ..< bn.channels).map { PruneSchedule.expectedBN(gamma: Double(g[$0]), beta: Double(b[$0]), signed: signed) }
        case .activations:
            guard let block = layer.block, let a = block.activationScores else { return [] }
            return layer.isSecondBlockConv ? a.conv2 : a.conv1
        case .l1, .l2:
            let w: UnsafeMutablePointer<Float>, rows: Int, rowLength: Int
            if let c = layer.conv {
                w = store.value(c.weight); rows = c.outChannels; rowLength = c.fanIn
            } else if let d = layer.linear {
                w = store.value(d.weight); rows = d.outFeatures; rowLength = d.inFeatures
            } else { return [] }
            if plan.granularity == .unstructured { return (0 ..< rows * rowLength).map { Double(abs(w[$0])) } }
            return (0 ..< rows).map { r in
                var s = 0.0
                let row = w + r * rowLength
                if plan.score == .l1 { for j in 0 ..< rowLength { s += Double(abs(row[j])) } }
                else { for j in 0 ..< rowLength { s += Double(row[j]) * Double(row[j]) }; s = s.squareRoot() }
                return s
            }
        }
    }

    // MARK: events

    /// Performs every layer's event at `epoch` (forward order). Returns what each layer pruned
    /// (layers whose k ≤ 0 at this event are omitted), or nil if no layer had an event.
    public func prune(epoch: Int, optimizer: Optimizer) -> [LayerPruning]? {
        var results: [LayerPruning] = []
        var any = false
        for l in layers.indices {
            let events = plans[l].events
            guard let idx = events.firstIndex(of: epoch) else { continue }
            any = true
            eventsDone[l] = idx + 1
            let n = events.count, units = kept[l].count
            let already = kept[l].filter { !$0 }.count
            let k = PruneSchedule.toPrune(event: idx + 1, of: n, units: units, fraction: plans[l].fraction, already: already)
            guard k > 0 else { continue }
            let candidates = (0 ..< units).filter { kept[l][$0] }
            let all = scores(l)
            let s = candidates.map { all[$0] }
            var chosen: [Int]
            if plan.target == .random {
                var rng = CounterRNG(seed: seed, purpose: .pruning, UInt64(l), UInt64(epoch))
                chosen = Array(rng.permutation(candidates.count).prefix(k)).sorted()
            } else {
                chosen = PruneSchedule.select(scores: s, k: k, largest: plan.target == .largest)
            }
            let picked = chosen.map { candidates[$0] }
            let mean = chosen.map { s[$0] }.reduce(0, +) / Double(chosen.count)
            for u in picked { kept[l][u] = false }
            if plan.noise != nil {
                noiseCounter[l] = 0
                newlyTargeted[l] = picked
                noiseEventEpoch[l] = epoch
                saved[l] = []
            } else {
                applyMask(layer: l, units: picked)
            }
            results.append(LayerPruning(layer: layers[l].name, k: k, meanScore: mean))
        }
        if plan.noise == nil { rebuildZeroRanges(); enforce(optimizer: optimizer); refreshCompaction() }
        return any ? results : nil
    }

    /// Mean of max(score, 0) over the layers that pruned (the authors' avg_pruned_magnitude),
    /// or −1 when none did.
    public static func averagePrunedScore(_ r: [LayerPruning]) -> Double {
        r.isEmpty ? -1 : r.map { max($0.meanScore, 0) }.reduce(0, +) / Double(r.count)
    }

    private func applyMask(layer l: Int, units: [Int]) {
        guard let block = layers[l].block, layers[l].isSecondBlockConv else { return }
        // A pruned conv2 channel (or bn2 channel under E[BN]) also drops its residual.
        for u in units { block.keep[u] = 0 }
    }

    /// Parameter ranges held at zero: pruned filters' weights, neurons' rows and biases, single
    /// weights, and (when masked) the following BatchNorm's γ and β.
    private func rebuildZeroRanges() {
        var ranges: [Range<Int>] = []
        for (l, layer) in layers.enumerated() {
            let pruned = (0 ..< kept[l].count).filter { !kept[l][$0] }
            if pruned.isEmpty { continue }
            let throughBatchNorm = plan.score.prunesThroughBatchNorm
            if let c = layer.conv {
                if !throughBatchNorm {
                    let w = c.weight.offset, len = c.fanIn
                    for u in pruned { ranges.append(w + u * len ..< w + (u + 1) * len) }
                }
                if let bn = layer.batchNorm, throughBatchNorm || plan.maskBatchNorm {
                    for u in pruned {
                        ranges.append(bn.gamma.offset + u ..< bn.gamma.offset + u + 1)
                        ranges.append(bn.beta.offset + u ..< bn.beta.offset + u + 1)
                    }
                }
            } else if let d = layer.linear {
                if plan.granularity == .unstructured {
                    for u in pruned { ranges.append(d.weight.offset + u ..< d.weight.offset + u + 1) }
                } else {
                    for u in pruned {
                        ranges.append(d.weight.offset + u * d.inFeatures ..< d.weight.offset + (u + 1) * d.inFeatures)
                        ranges.append(d.bias.offset + u ..< d.bias.offset + u + 1)
                    }
                }
            }
        }
        zeroRanges = ranges
    }

    /// Holds pruned parameters and their optimizer moments at exactly zero. Called after every
    /// optimizer step and after each pruning event.
    public func enforce(optimizer: Optimizer) {
        guard plan.noise == nil, !zeroRanges.isEmpty else { return }
        let p = network.store.values.ptr, m1 = optimizer.moment1.ptr
        let m2 = optimizer.moment2.count > 0 ? optimizer.moment2.ptr : nil
        for r in zeroRanges {
            (p + r.lowerBound).update(repeating: 0, count: r.count)
            (m1 + r.lowerBound).update(repeating: 0, count: r.count)
            if let m2 { (m2 + r.lowerBound).update(repeating: 0, count: r.count) }
        }
    }

    /// Noise mode, last epoch: zeroes the stored weights of every targeted filter, as the
    /// authors' final-epoch `weight[~mask] = 0`. Returns whether anything was non-zero.
    public func zeroTargetedWeights() -> Bool {
        guard plan.noise != nil else { return false }
        var changed = false
        for (l, layer) in layers.enumerated() {
            guard let c = layer.conv else { continue }
            let w = network.store.value(c.weight), len = c.fanIn
            for u in 0 ..< kept[l].count where !kept[l][u] {
                for j in 0 ..< len where w[u * len + j] != 0 { changed = true; w[u * len + j] = 0 }
            }
        }
        return changed
    }

    /// Restores masks and schedule progress (checkpoint resume).
    public func restore(kept k: [[Bool]], eventsDone e: [Int], noiseCounter nc: [Int], newlyTargeted nt: [[Int]],
                        noiseEventEpoch ne: [Int], saved s: [[Float]]) {
        kept = k; eventsDone = e; noiseCounter = nc; newlyTargeted = nt; noiseEventEpoch = ne; saved = s
        for (l, layer) in layers.enumerated() where plan.noise == nil {
            if let b = layer.block, layer.isSecondBlockConv {
                for u in 0 ..< kept[l].count { b.keep[u] = kept[l][u] ? 1 : 0 }
            }
        }
        rebuildZeroRanges()
        refreshCompaction()
    }

    // MARK: noise (docs/EXPERIMENTS.md §7)

    private func installNoiseHook() {
        var index: [ObjectIdentifier: Int] = [:]
        for (l, layer) in layers.enumerated() { if let c = layer.conv { index[ObjectIdentifier(c)] = l } }
        network.beforeConvolution = { [unowned self] conv in
            if let l = index[ObjectIdentifier(conv)] { self.noiseCall(layer: l) }
        }
    }

    /// One forward call of a noised layer: while the counter ≤ N, count the call and perturb
    /// the targeted filters; on call N + 1 with restore, put the saved values back.
    private func noiseCall(layer l: Int) {
        guard let noise = plan.noise, noiseCounter[l] <= noise.batches, let conv = layers[l].conv else { return }
        noiseCounter[l] += 1
        let store = network.store
        let w = store.value(conv.weight), len = conv.fanIn
        let targets: [Int] = noise.mode == .iter ? newlyTargeted[l] : (0 ..< kept[l].count).filter { !kept[l][$0] }
        // σ: unbiased std of the first (lowest-index) untargeted filter's weights.
        var sigma = 0.0
        if let first = kept[l].firstIndex(of: true) {
            let row = w + first * len
            let mean = (0 ..< len).reduce(0.0) { $0 + Double(row[$1]) } / Double(len)
            let ss = (0 ..< len).reduce(0.0) { $0 + (Double(row[$1]) - mean) * (Double(row[$1]) - mean) }
            sigma = len > 1 ? (ss / Double(len - 1)).squareRoot() : 0
        }
        let bn = layers[l].batchNorm
        if noise.restore && noiseCounter[l] == 1 {
            var s: [Float] = []
            for u in targets { s.append(contentsOf: UnsafeBufferPointer(start: w + u * len, count: len)) }
            if let bn {
                for slot in [bn.gamma, bn.beta] { for u in targets { s.append(store.value(slot)[u]) } }
                for slot in [bn.runningMean, bn.runningVar] { for u in targets { s.append(store.stateValue(slot)[u]) } }
            }
            saved[l] = s
        }
        switch noise.kind {
        case .gaussian:
            var rng = CounterRNG(seed: seed, purpose: .noise, UInt64(l) << 32 | UInt64(noiseEventEpoch[l]), UInt64(noiseCounter[l]))
            for u in targets { let row = w + u * len; for j in 0 ..< len { row[j] += Float(rng.normal() * sigma) } }
        case .zeroing:
            for u in targets { (w + u * len).update(repeating: 0, count: len) }
            if noise.restore, let bn {
                for u in targets { store.value(bn.gamma)[u] = 0; store.value(bn.beta)[u] = 0 }
            }
        }
        if noiseCounter[l] > noise.batches && noise.restore {
            let s = saved[l]
            guard s.count == targets.count * len + (bn == nil ? 0 : 4 * targets.count) else { return }
            var i = 0
            for u in targets { for j in 0 ..< len { w[u * len + j] = s[i]; i += 1 } }
            if let bn {
                for slot in [bn.gamma, bn.beta] { for u in targets { store.value(slot)[u] = s[i]; i += 1 } }
                for slot in [bn.runningMean, bn.runningVar] { for u in targets { store.stateValue(slot)[u] = s[i]; i += 1 } }
            }
        }
    }
}
