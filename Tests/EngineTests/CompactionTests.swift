// Compaction (Compaction.swift) against the masked computation it replaces: per layer kind
// (convolution by im2col and by Winograd, dense, BatchNorm after a compacted convolution, the
// residual block) and on whole models (VGG11-BN, ResNet18, Conv4 at small width), forward and
// backward and over optimizer steps; the planner's claims (a channel it drops really is zero in
// the masked forward); the executed multiply-add count.
@testable import Engine
import Testing

/// max |a − b| over the entries where `include` holds, relative to max |a| (at least 1e-3).
private func relativeError(_ a: [Float], _ b: [Float], where include: (Int) -> Bool = { _ in true }) -> Double {
    var err = 0.0, scale = 1e-3
    for i in a.indices where include(i) {
        err = max(err, Double(abs(a[i] - b[i])))
        scale = max(scale, Double(abs(a[i])))
    }
    return err / scale
}

@Suite struct CompactLayerTests {
    /// A convolution with some filters zeroed (pruned) and some input channels exactly zero,
    /// run masked (full shapes) and compacted: outputs, input gradients of the live channels,
    /// weight gradients of the kept filters, and every bias gradient agree; a skipped filter's
    /// output is exactly its bias; dropped inputs get a zero gradient.
    @Test(arguments: [
        // (cin, cout, k, stride, pad, bias, h, algorithm, threads)
        (24, 20, 3, 1, 1, true, 8, ConvAlgorithm.winograd, 2),
        (24, 20, 3, 1, 1, false, 5, ConvAlgorithm.winograd, 1),
        (24, 20, 3, 1, 1, true, 8, ConvAlgorithm.im2col, 2),
        (24, 20, 3, 1, 1, true, 9, ConvAlgorithm.winograd4, 2),
        (24, 20, 3, 1, 1, false, 4, ConvAlgorithm.winograd4, 3),
        (12, 10, 3, 2, 1, false, 7, ConvAlgorithm.automatic, 2),
        (12, 10, 1, 1, 0, false, 4, ConvAlgorithm.automatic, 2),
        (12, 10, 1, 2, 0, true, 6, ConvAlgorithm.automatic, 1),
        (32, 16, 3, 1, 1, true, 2, ConvAlgorithm.automatic, 2),
        (16, 16, 3, 1, 1, false, 8, ConvAlgorithm.automatic, 2),
    ])
    func convolution(_ p: (Int, Int, Int, Int, Int, Bool, Int, ConvAlgorithm, Int)) {
        let (cin, cout, k, s, pad, hasBias, h, algorithm, threads) = p
        let n = 3, w = h + 1
        let prunedOut = Set(stride(from: 1, to: cout, by: 3)), deadIn = Set(stride(from: 0, to: cin, by: 4))
        var results: [[[Float]]] = []
        for compacted in [false, true] {
            let store = ParameterStore()
            let conv = Conv2D("c", store: store, inChannels: cin, outChannels: cout, kernel: k, stride: s, padding: pad,
                              bias: hasBias, weightInit: .normal(std: 0.3), biasInit: .uniform(bound: 0.5))
            conv.algorithm = algorithm
            store.finalise(seed: 4)
            let wv = store.value(conv.weight)
            for u in prunedOut { (wv + u * cin * k * k).update(repeating: 0, count: cin * k * k) }
            var xs = randomFloats(cin * n * h * w, seed: 5)
            for c in deadIn { for i in 0 ..< n * h * w { xs[c * n * h * w + i] = 0 } }
            let x = Owned(xs, channels: cin, batch: n, height: h, width: w)
            if compacted {
                let sel = ChannelSelection(outputs: (0 ..< cout).filter { !prunedOut.contains($0) }, inputs: (0 ..< cin).filter { !deadIn.contains($0) },
                                           outputCount: cout, inputCount: cin)
                conv.compact = CompactConv2D(conv, store: store, selection: sel)
            }
            let ctx = ExecutionContext(threads: threads)
            let ho = (h + 2 * pad - k) / s + 1, wo = (w + 2 * pad - k) / s + 1
            let dy = Owned(randomFloats(cout * n * ho * wo, seed: 6), channels: cout, batch: n, height: ho, width: wo)
            store.zeroGradients()
            let y = withExtendedLifetime(x) { values(conv.forward(x.act, ctx)) }
            let dx = withExtendedLifetime(dy) { values(conv.backward(dy.act, ctx)) }
            let gw = Array(store.gradients.array[conv.weight.offset ..< conv.weight.offset + conv.weight.count])
            let gb = conv.bias.map { Array(store.gradients.array[$0.offset ..< $0.offset + $0.count]) } ?? []
            results.append([y, dx, gw, gb])
            if compacted {
                let m = n * ho * wo, bias = conv.bias.map { store.value($0) }
                for u in prunedOut { for i in 0 ..< m { #expect(y[u * m + i] == (bias?[u] ?? 0)) } }
                for c in deadIn { #expect(dx[c * n * h * w ..< (c + 1) * n * h * w].allSatisfy { $0 == 0 }) }
            }
        }
        let (masked, compact) = (results[0], results[1])
        let plane = n * h * w, fan = cin * k * k
        #expect(relativeError(masked[0], compact[0]) < 1e-5, "forward")
        #expect(relativeError(masked[1], compact[1], where: { !deadIn.contains($0 / plane) }) < 1e-5, "input gradient")
        #expect(relativeError(masked[2], compact[2], where: { !prunedOut.contains($0 / fan) }) < 1e-5, "weight gradient")
        #expect(relativeError(masked[3], compact[3]) < 1e-6, "bias gradient")
        // Gradients of weights reading a zero input are exactly zero in both.
        for u in 0 ..< cout where !prunedOut.contains(u) {
            for c in deadIn { for t in 0 ..< k * k { #expect(compact[2][u * fan + c * k * k + t] == 0 && masked[2][u * fan + c * k * k + t] == 0) } }
        }
    }

    /// Nothing left to multiply (every input dropped): each output is its bias, the input
    /// gradient is zero and the bias gradients are the channel sums.
    @Test func convolutionWithoutInputs() throws {
        let store = ParameterStore()
        let conv = Conv2D("c", store: store, inChannels: 4, outChannels: 3, kernel: 3, padding: 1, bias: true,
                          weightInit: .normal(std: 0.3), biasInit: .uniform(bound: 0.5))
        store.finalise(seed: 2)
        conv.compact = CompactConv2D(conv, store: store, selection: ChannelSelection(outputs: [0, 2], inputs: [], outputCount: 3, inputCount: 4))
        let ctx = ExecutionContext(threads: 2)
        let x = Owned([Float](repeating: 0, count: 4 * 2 * 16), channels: 4, batch: 2, height: 4, width: 4)
        let dy = Owned(randomFloats(3 * 2 * 16, seed: 3), channels: 3, batch: 2, height: 4, width: 4)
        store.zeroGradients()
        let y = withExtendedLifetime(x) { values(conv.forward(x.act, ctx)) }
        let dx = withExtendedLifetime(dy) { values(conv.backward(dy.act, ctx)) }
        let biasSlot = try #require(conv.bias)
        let b = store.value(biasSlot)
        for c in 0 ..< 3 { #expect(y[c * 32 ..< (c + 1) * 32].allSatisfy { $0 == b[c] }) }
        #expect(dx.allSatisfy { $0 == 0 })
        let gb = store.gradient(biasSlot)
        for c in 0 ..< 3 { #expect(gb[c] == Float(channelSum(dy.buffer.ptr + c * 32, 32))) }
    }

    /// The compact convolution keeps its full convolution's algorithm: a 16-channel layer
    /// (Winograd under `automatic`) that loses inputs stays on Winograd of the same variant,
    /// and an im2col layer stays on im2col.
    @Test(arguments: [(16, 3, 1, 16), (12, 3, 1, nil), (32, 3, 2, nil), (32, 1, 1, nil)] as [(Int, Int, Int, Int?)],
          [ConvAlgorithm.automatic, .automatic2])
    func compactConvolutionKeepsTheFullAlgorithm(_ p: (Int, Int, Int, Int?), _ algorithm: ConvAlgorithm) {
        let (cin, k, stride, f2Points) = p
        let store = ParameterStore()
        let conv = Conv2D("c", store: store, inChannels: cin, outChannels: 8, kernel: k, stride: stride, padding: k / 2, bias: false,
                          weightInit: .normal(std: 0.3))
        conv.algorithm = algorithm
        store.finalise(seed: 1)
        // F(4×4) on the 6×6 plane under automatic wherever automatic2 takes F(2×2).
        let expected = f2Points.map { algorithm == .automatic ? 36 : $0 }
        #expect(conv.winogradPlan(height: 6, width: 6)?.points == expected)
        let compact = CompactConv2D(conv, store: store, selection: ChannelSelection(outputs: [0, 1, 2, 3, 4, 5, 6], inputs: Array(2 ..< cin),
                                                                                     outputCount: 8, inputCount: cin))
        conv.compact = compact
        let x = Owned(randomFloats(cin * 2 * 36, seed: 2), channels: cin, batch: 2, height: 6, width: 6)
        _ = withExtendedLifetime(x) { conv.forward(x.act, ExecutionContext(threads: 1)) }
        #expect(compact.innerWinogradPoints(height: 6, width: 6) == expected)
    }

    @Test func indexRunsCopyWholeRuns() {
        let runs = IndexRuns([0, 1, 2, 5, 7, 8])
        #expect(runs.runs.map { [$0.start, $0.position, $0.count] } == [[0, 0, 3], [5, 3, 1], [7, 4, 2]])
        #expect(IndexRuns(Array(0 ..< 9)).runs.count == 1 && IndexRuns([]).runs.isEmpty)
        let full = FloatBuffer(count: 18), compact = FloatBuffer(count: 12)
        for i in 0 ..< 18 { full[i] = Float(i) }
        runs.gather(full.ptr, into: compact.ptr, block: 2)
        #expect(compact.array == [0, 1, 2, 3, 4, 5, 10, 11, 14, 15, 16, 17])
        let back = FloatBuffer(count: 18)
        runs.scatter(compact.ptr, into: back.ptr, block: 2)
        runs.scatterAdd(compact.ptr, into: back.ptr, block: 2)
        #expect(back.array == [0, 2, 4, 6, 8, 10, 0, 0, 0, 0, 20, 22, 0, 0, 28, 30, 32, 34])
    }

    /// A dense layer with pruned neurons (row and bias zero) and zero input features.
    @Test(arguments: [1, 2])
    func dense(threads: Int) {
        let inF = 40, outF = 12, n = 20
        let prunedOut = Set([0, 5, 6, 11]), deadIn = Set(stride(from: 3, to: inF, by: 5))
        var results: [[[Float]]] = []
        for compacted in [false, true] {
            let store = ParameterStore()
            let d = Linear("d", store: store, inFeatures: inF, outFeatures: outF)
            store.finalise(seed: 9)
            for u in prunedOut {
                (store.value(d.weight) + u * inF).update(repeating: 0, count: inF)
                store.value(d.bias)[u] = 0
            }
            var xs = randomFloats(n * inF, seed: 1)
            for i in 0 ..< n { for c in deadIn { xs[i * inF + c] = 0 } }
            let x = Owned(xs, channels: inF, batch: n, layout: .rowMajor)
            if compacted {
                d.compact = CompactLinear(d, store: store, selection: ChannelSelection(
                    outputs: (0 ..< outF).filter { !prunedOut.contains($0) }, inputs: (0 ..< inF).filter { !deadIn.contains($0) },
                    outputCount: outF, inputCount: inF))
            }
            let ctx = ExecutionContext(threads: threads)
            let dy = Owned(randomFloats(n * outF, seed: 2), channels: outF, batch: n, layout: .rowMajor)
            store.zeroGradients()
            let y = withExtendedLifetime(x) { values(d.forward(x.act, ctx)) }
            let dx = withExtendedLifetime(dy) { values(d.backward(dy.act, ctx)) }
            results.append([y, dx, store.gradients.array])
            if compacted {
                for i in 0 ..< n { for u in prunedOut { #expect(y[i * outF + u] == 0) }; for c in deadIn { #expect(dx[i * inF + c] == 0) } }
            }
        }
        let (masked, compact) = (results[0], results[1])
        #expect(relativeError(masked[0], compact[0]) < 1e-5, "forward")
        #expect(relativeError(masked[1], compact[1], where: { !deadIn.contains($0 % inF) }) < 1e-5, "input gradient")
        // Kept rows of the weight gradient, and every bias gradient.
        #expect(relativeError(masked[2], compact[2], where: { $0 >= outF * inF || !prunedOut.contains($0 / inF) }) < 1e-5, "parameter gradients")
    }

    /// A pruned convolution followed by its masked BatchNorm: BN sees the same constant in the
    /// pruned channels, so outputs, running statistics and γ/β gradients agree — the pruned
    /// channels' running statistics bit for bit.
    @Test(arguments: [ConvAlgorithm.winograd, .winograd4, .im2col])
    func convolutionThenMaskedBatchNorm(_ algorithm: ConvAlgorithm) {
        let cin = 16, cout = 20, n = 4, h = 6
        let pruned = Set([2, 3, 9, 19])
        var results: [[[Float]]] = []
        for compacted in [false, true] {
            let store = ParameterStore()
            let conv = Conv2D("c", store: store, inChannels: cin, outChannels: cout, kernel: 3, padding: 1, bias: true,
                              weightInit: .normal(std: 0.3), biasInit: .uniform(bound: 0.5))
            conv.algorithm = algorithm
            let bn = BatchNorm2D("bn", store: store, channels: cout)
            store.finalise(seed: 12)
            for u in pruned {
                (store.value(conv.weight) + u * cin * 9).update(repeating: 0, count: cin * 9)
                store.value(bn.gamma)[u] = 0
                store.value(bn.beta)[u] = 0
            }
            for c in 0 ..< cout { store.value(bn.beta)[c] += c % 2 == 0 ? 0.25 : 0 }
            for u in pruned { store.value(bn.beta)[u] = 0 }
            if compacted {
                conv.compact = CompactConv2D(conv, store: store, selection: ChannelSelection(
                    outputs: (0 ..< cout).filter { !pruned.contains($0) }, inputs: Array(0 ..< cin), outputCount: cout, inputCount: cin))
            }
            let ctx = ExecutionContext(threads: 2)
            let x = Owned(randomFloats(cin * n * h * h, seed: 13), channels: cin, batch: n, height: h, width: h)
            let dy = Owned(randomFloats(cout * n * h * h, seed: 14), channels: cout, batch: n, height: h, width: h)
            store.zeroGradients()
            var out: [Float] = []
            withExtendedLifetime((x, dy)) {
                for training in [true, false] {
                    ctx.training = training
                    out += values(bn.forward(conv.forward(x.act, ctx), ctx))
                }
                ctx.training = true
                _ = bn.forward(conv.forward(x.act, ctx), ctx)
                _ = conv.backward(bn.backward(dy.act, ctx), ctx)
            }
            let bnGradients = Array(store.gradients.array[bn.gamma.offset ..< bn.beta.offset + cout])
            results.append([out, store.state.array, bnGradients])
            if compacted {
                let m = n * h * h
                for u in pruned { for r in 0 ..< 2 { #expect(out[r * cout * m + u * m ..< r * cout * m + (u + 1) * m].allSatisfy { $0 == 0 }) } }
            }
        }
        #expect(relativeError(results[0][0], results[1][0]) < 1e-4, "outputs")
        #expect(relativeError(results[0][1], results[1][1]) < 1e-5, "running statistics")
        for u in pruned { for slot in [u, cout + u] { #expect(results[0][1][slot] == results[1][1][slot]) } }
        #expect(relativeError(results[0][2], results[1][2], where: { !pruned.contains($0 % cout) }) < 1e-4, "γ and β gradients")
    }
}

// MARK: whole networks, through the pruner

/// Two copies of a network (same seed), pruned by the same plan at epoch 0; one compacted, one
/// masked. `steps` Adam or SGD steps on the same random batches; checks after the event and
/// after each step.
private struct Pair {
    let compact: Network
    let masked: Network
    let pc: Pruner
    let pm: Pruner
    let oc: Optimizer
    let om: Optimizer

    init(_ make: () -> Network, plan: PruningPlan, sgd: Bool = false, algorithm: ConvAlgorithm = .automatic) throws {
        compact = make()
        masked = make()
        for c in compact.convolutions + masked.convolutions { c.algorithm = algorithm }
        shiftBatchNorms(compact)
        shiftBatchNorms(masked)
        let kind: OptimizerKind = sgd ? .sgd(momentum: 0.9, weightDecay: 5e-4) : .adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-4)
        oc = Optimizer(kind: kind, parameterCount: compact.parameterCount)
        om = Optimizer(kind: kind, parameterCount: masked.parameterCount)
        pc = try Pruner(plan: plan, network: compact, seed: 1, epochs: 10)
        pm = try Pruner(plan: plan, network: masked, seed: 1, epochs: 10)
        pm.compacts = false
    }

    /// Parameter indices held at zero by the masks (as Pruner's zero ranges).
    func held() -> Set<Int> {
        var out = Set<Int>()
        let ebn = pm.plan.score == .ebn || pm.plan.score == .ebn_alt
        for (l, layer) in pm.layers.enumerated() {
            for u in pm.kept[l].indices where !pm.kept[l][u] {
                if let c = layer.conv {
                    if !ebn { for i in 0 ..< c.fanIn { out.insert(c.weight.offset + u * c.fanIn + i) } }
                    if let bn = layer.batchNorm, ebn || pm.plan.maskBatchNorm { out.insert(bn.gamma.offset + u); out.insert(bn.beta.offset + u) }
                } else if let d = layer.linear {
                    if pm.plan.granularity == .unstructured { out.insert(d.weight.offset + u) } else {
                        for i in 0 ..< d.inFeatures { out.insert(d.weight.offset + u * d.inFeatures + i) }
                        out.insert(d.bias.offset + u)
                    }
                }
            }
        }
        return out
    }

    /// One training step on both; returns (logits, parameter gradients) of each.
    func step(batch n: Int, seed: UInt64, threads: Int = 2) -> (lc: [Float], lm: [Float], gc: [Float], gm: [Float]) {
        var out: [[Float]] = []
        for (net, opt, pruner) in [(compact, oc, pc), (masked, om, pm)] {
            let ctx = ExecutionContext(threads: threads)
            let x = Owned(randomFloats(n * 3 * 32 * 32, seed: seed), channels: 3, batch: n, height: 32, width: 32)
            let labels = (0 ..< n).map { Int32((Int($0) * 7 + Int(seed)) % net.classes) }
            let loss = SoftmaxCrossEntropy()
            let logits = withExtendedLifetime(x) { net.forward(x.act, ctx) }
            out.append(values(logits))
            _ = labels.withUnsafeBufferPointer { loss.evaluate(logits, labels: $0.baseAddress!, computeGradient: true) }
            net.store.zeroGradients()
            net.backward(Activation(data: loss.gradient.ptr, channels: net.classes, batch: n, height: 1, width: 1, layout: .rowMajor), ctx)
            out.append(net.store.gradients.array)
            opt.apply(net.store, lr: 1e-3, workers: ctx.workers)
            pruner.enforce(optimizer: opt)
        }
        return (out[0], out[2], out[1], out[3])
    }

    func prune() { _ = pc.prune(epoch: 0, optimizer: oc); _ = pm.prune(epoch: 0, optimizer: om) }

    /// Runs `steps` steps and checks logits, gradients of the unmasked parameters, parameters,
    /// moments and BatchNorm statistics against the masked copy; the masked parameters and their
    /// moments stay exactly zero in both.
    func check(steps: Int, batch: Int = 4, tolerance: Double = 2e-4, sourceLocation: SourceLocation = #_sourceLocation) {
        let heldAt = held()
        #expect(!heldAt.isEmpty, sourceLocation: sourceLocation)
        for s in 0 ..< steps {
            let r = step(batch: batch, seed: UInt64(20 + s))
            #expect(relativeError(r.lm, r.lc) < tolerance, "logits, step \(s)", sourceLocation: sourceLocation)
            #expect(relativeError(r.gm, r.gc, where: { !heldAt.contains($0) }) < tolerance * 10, "gradients, step \(s)",
                    sourceLocation: sourceLocation)
        }
        let pc = compact.store.values.array, pm = masked.store.values.array
        #expect(relativeError(pm, pc) < tolerance * 10, "parameters", sourceLocation: sourceLocation)
        #expect(relativeError(om.moment1.array, oc.moment1.array) < tolerance * 100, "first moments", sourceLocation: sourceLocation)
        #expect(relativeError(masked.store.state.array, compact.store.state.array) < tolerance * 10, "BatchNorm statistics",
                sourceLocation: sourceLocation)
        for i in heldAt {
            #expect(pc[i] == 0 && pm[i] == 0 && oc.moment1[i] == 0 && om.moment1[i] == 0, sourceLocation: sourceLocation)
            if oc.moment2.count > 0 { #expect(oc.moment2[i] == 0, sourceLocation: sourceLocation) }
        }
    }
}

/// Every BatchNorm of a network, residual blocks included.
private func batchNorms(_ net: Network) -> [BatchNorm2D] {
    net.layers.flatMap { l -> [BatchNorm2D] in
        switch l {
        case let bn as BatchNorm2D: return [bn]
        case let b as BasicBlock:
            if case .projection(_, let bn) = b.shortcut { return [b.bn1, b.bn2, bn] }
            return [b.bn1, b.bn2]
        default: return []
        }
    }
}

/// Non-zero BatchNorm shifts (β starts at 0), so a channel whose β passes through is visibly
/// non-zero from the first step.
private func shiftBatchNorms(_ net: Network) {
    for (i, bn) in batchNorms(net).enumerated() {
        let b = net.store.value(bn.beta), r = randomFloats(bn.channels, seed: 50 + UInt64(i), scale: 0.2)
        for c in 0 ..< bn.channels { b[c] = r[c] }
    }
}

private func plan(_ layers: [(String, Double)], score: PruneScore = .l2, target: PruneTarget = .largest) -> PruningPlan {
    var p = PruningPlan(layers: layers.map { LayerPlan(name: $0.0, fraction: $0.1, start: 0, end: 0, period: 1) })
    p.score = score
    p.target = target
    return p
}

@Suite(.serialized) struct CompactNetworkTests {
    static let vggLayers = [("features.conv1", 0.5), ("features.conv3", 0.25), ("features.conv5", 0.3), ("features.conv7", 0.3),
                            ("features.conv8", 0.9)]

    /// VGG11 through F(2×2) everywhere (automatic2) and through F(4×4) on its planes of 4×4 and
    /// more (automatic), whose rounding is about 6× larger (logits after three steps: 3.3e-4
    /// relative, measured).
    @Test(arguments: [(ConvAlgorithm.automatic2, 2e-4), (.automatic, 1e-3)])
    func vgg11(_ p: (ConvAlgorithm, Double)) throws {
        let pair = try Pair({ ModelFactory.make(.vgg11_bn, width: 0.125, seed: 3) }, plan: plan(Self.vggLayers), algorithm: p.0)
        pair.prune()
        // Every convolution loses filters, inputs or both; the classifier loses conv8's features.
        #expect(pair.compact.convolutions.allSatisfy { $0.compact != nil })
        #expect(pair.compact.layers.contains { ($0 as? Linear)?.compact != nil })
        pair.check(steps: 3, tolerance: p.1)
    }

    /// E[BN] scores zero only the BatchNorm: the convolutions still compute the pruned
    /// filters (their statistics), the next layers drop them as inputs.
    @Test func vgg11WithBatchNormScores() throws {
        let pair = try Pair({ ModelFactory.make(.vgg11_bn, width: 0.125, seed: 4) }, plan: plan(Self.vggLayers, score: .ebn), sgd: true)
        pair.prune()
        for c in pair.compact.convolutions { #expect(c.compact.map { $0.selection.outputs.count == c.outChannels } ?? true) }
        pair.check(steps: 3)
    }

    /// BN not masked (F5_0): β passes through, the pruned channels stay inputs of the next layer.
    /// SGD: a pruned filter's bias then gets only rounding noise as gradient (its BatchNorm
    /// input is constant), which Adam would scale up to ±lr per step in either computation.
    @Test func vgg11WithoutBatchNormMasking() throws {
        var p = plan(Self.vggLayers)
        p.maskBatchNorm = false
        let pair = try Pair({ ModelFactory.make(.vgg11_bn, width: 0.125, seed: 5) }, plan: p, sgd: true)
        pair.prune()
        for c in pair.compact.convolutions { #expect(c.compact.map { $0.selection.inputs.count == c.inChannels } ?? true) }
        pair.check(steps: 3)
    }

    @Test func resnet18() throws {
        let layers = [("layer1.0.conv1", 0.5), ("layer1.0.conv2", 0.25), ("layer2.0.conv2", 0.25), ("layer3.1.conv1", 0.5),
                      ("layer4.0.conv1", 0.25), ("layer4.0.conv2", 0.4), ("layer4.1.conv1", 0.25), ("layer4.1.conv2", 0.95)]
        let pair = try Pair({ ModelFactory.make(.resnet18, width: 0.125, seed: 6) }, plan: plan(layers), sgd: true)
        pair.prune()
        pair.check(steps: 3)
    }

    /// Activation scores (F2_RN_*): the block keeps scoring every channel.
    @Test func resnet20WithActivationScores() throws {
        let layers = [("layer1.0.conv2", 0.25), ("layer2.0.conv1", 0.5), ("layer2.1.conv2", 0.5), ("layer3.2.conv2", 0.5)]
        let pair = try Pair({ ModelFactory.make(.resnet20, width: 1, seed: 7) }, plan: plan(layers, score: .activations, target: .random))
        for _ in 0 ..< 10 { _ = pair.step(batch: 2, seed: 3) }
        pair.prune()
        // layer1.1.conv1 reads 12 of 16 channels through Winograd in both computations (the
        // masked one sums 16 transformed channels, the compact one 12); over ten Adam steps at
        // batch 2 that rounding difference grows to ~5e-3 of the gradients' scale.
        pair.check(steps: 10, batch: 2, tolerance: 6e-4)
        let blocks = pair.compact.layers.compactMap { $0 as? BasicBlock }, masked = pair.masked.layers.compactMap { $0 as? BasicBlock }
        for (b, m) in zip(blocks, masked) {
            let (a, e) = (b.activationScores?.conv2 ?? [], m.activationScores?.conv2 ?? [])
            #expect(zip(a, e).allSatisfy { abs($0 - $1) <= 1e-3 * max(1, abs($1)) })
        }
    }

    @Test(arguments: [PruneGranularity.structured, .unstructured])
    func conv4(_ granularity: PruneGranularity) throws {
        var p = plan(granularity == .structured ? [("features.conv2", 0.5), ("classifier.fc1", 0.3), ("classifier.fc2", 0.5)]
                                                : [("classifier.fc1", 0.3)])
        p.granularity = granularity
        let pair = try Pair({ ModelFactory.make(.conv4, width: 0.25, seed: 8) }, plan: p)
        pair.prune()
        let compacted = pair.compact.layers.contains { ($0 as? Linear)?.compact != nil || ($0 as? Conv2D)?.compact != nil }
        #expect(compacted == (granularity == .structured))
        pair.check(steps: 3)
    }

    /// A channel the planner drops as an input is exactly zero in the masked forward, at every
    /// top-level layer and residual-block input.
    @Test(arguments: [(Architecture.vgg11_bn, PruneScore.l2, true), (.vgg11_bn, .l2, false), (.vgg11_bn, .ebn, true),
                      (.resnet18, .l1, true), (.resnet18, .l1, false), (.resnet20, .ebn_alt, true), (.conv4, .l2, true)])
    func droppedInputsAreZeroInTheMaskedForward(_ p: (Architecture, PruneScore, Bool)) throws {
        let (arch, score, maskBatchNorm) = p
        let net = ModelFactory.make(arch, width: arch == .resnet20 ? 0.5 : 0.125, seed: 2)
        shiftBatchNorms(net)
        let names = net.prunableLayers().map(\.name)
        var pl = plan(names.map { ($0, 0.5) }, score: score, target: .random)
        pl.maskBatchNorm = maskBatchNorm
        let pruner = try Pruner(plan: pl, network: net, seed: 2, epochs: 2)
        _ = pruner.prune(epoch: 0, optimizer: Optimizer(kind: .sgd(momentum: 0, weightDecay: 0), parameterCount: net.parameterCount))
        let selections = Compaction.selections(net, pruner: pruner)
        pruner.compacts = false
        let ctx = ExecutionContext(threads: 2)
        let x = Owned(randomFloats(2 * 3 * 32 * 32, seed: 1), channels: 3, batch: 2, height: 32, width: 32)
        var a = x.act, checked = 0
        func expectZero(_ layer: AnyObject, _ input: Activation) {
            guard let s = selections[ObjectIdentifier(layer)] else { return }
            let per = input.layout == .rowMajor ? 1 : input.perChannel
            for c in 0 ..< s.inputCount where !s.inputs.contains(c) {
                checked += 1
                if input.layout == .rowMajor {
                    for i in 0 ..< input.batch { #expect(input.data[i * input.channels + c] == 0) }
                } else {
                    for i in 0 ..< per { #expect(input.data[c * per + i] == 0) }
                }
            }
        }
        withExtendedLifetime(x) {
            for l in net.layers {
                expectZero(l, a)
                if let b = l as? BasicBlock {
                    expectZero(b.conv1, a)
                    if case .projection(let c, _) = b.shortcut { expectZero(c, a) }
                }
                a = l.forward(a, ctx)
            }
        }
        // Where BatchNorm is not masked nothing is exactly zero, so nothing is dropped.
        #expect(maskBatchNorm ? checked > 0 : checked == 0)
    }

    @Test func executedMultiplyAddsCountTheSelectedChannels() throws {
        let net = ModelFactory.make(.vgg11_bn, width: 0.125, seed: 1)
        let dense = net.forwardMACs()
        #expect(net.executedForwardMACs() == dense)
        let pruner = try Pruner(plan: plan([("features.conv8", 0.5)]), network: net, seed: 1, epochs: 2)
        _ = pruner.prune(epoch: 0, optimizer: Optimizer(kind: .sgd(momentum: 0, weightDecay: 0), parameterCount: net.parameterCount))
        // conv8 (64 → 64 at 2×2) keeps 32 filters; the classifier (64 → 10) reads 32 features.
        #expect(dense - net.executedForwardMACs() == 32 * 64 * 9 * 4 + 32 * 10)
        pruner.compacts = false
        #expect(net.executedForwardMACs() == dense)
    }
}
