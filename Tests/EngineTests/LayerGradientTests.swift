// Every layer's gradients against finite differences of the Double reference, on small shapes,
// with 1 and 2 threads; plus hand-computed forward cases.
@testable import Engine
import Testing

@Suite struct LayerGradientTests {
    @Test(arguments: [
        // (cin, cout, k, stride, pad, bias, h, batch, threads)
        (2, 3, 3, 1, 1, true, 5, 3, 2),
        (3, 4, 3, 2, 1, false, 6, 2, 1),
        (3, 2, 1, 1, 0, false, 4, 3, 2),
        (2, 3, 1, 2, 0, false, 5, 2, 2),
        (2, 2, 5, 1, 2, true, 6, 2, 2),
        (1, 2, 2, 2, 0, true, 4, 1, 2),
    ])
    func conv2d(_ p: (Int, Int, Int, Int, Int, Bool, Int, Int, Int)) {
        let (cin, cout, k, s, pad, hasBias, h, n, threads) = p
        let store = ParameterStore()
        let conv = Conv2D("c", store: store, inChannels: cin, outChannels: cout, kernel: k, stride: s, padding: pad,
                          bias: hasBias, weightInit: .normal(std: 0.5), biasInit: .uniform(bound: 0.5))
        store.finalise(seed: 7)
        let shape = Shape4(c: cin, n: n, h: h, w: h + 1)
        let x = Owned(randomFloats(cin * n * h * (h + 1), seed: 1), channels: cin, batch: n, height: h, width: h + 1)
        gradientCheck(layer: conv, store: store, input: x, threads: threads) { xd, pd in
            Ref.conv(xd, shape, w: Ref.slice(pd, conv.weight), b: conv.bias.map { Ref.slice(pd, $0) },
                     cout: cout, k: k, stride: s, pad: pad).0
        }
    }

    /// Winograd F(2×2, 3×3) forced on: even and odd planes (partial edge tiles), 1×1 and 2×2
    /// planes, bias, one and two threads, chunks of one image and of several.
    @Test(arguments: [
        // (cin, cout, bias, h, w, batch, threads)
        (2, 3, true, 5, 6, 3, 2),
        (3, 2, false, 4, 4, 2, 1),
        (2, 2, false, 7, 5, 2, 2),
        (3, 3, true, 2, 2, 3, 2),
        (2, 2, false, 1, 1, 2, 1),
        (2, 2, true, 5, 34, 2, 2),  // vector paths: 17 tiles wide = 2 blocks of 8 + 1
    ])
    func conv2dWinograd(_ p: (Int, Int, Bool, Int, Int, Int, Int)) {
        let (cin, cout, hasBias, h, w, n, threads) = p
        let store = ParameterStore()
        let conv = Conv2D("c", store: store, inChannels: cin, outChannels: cout, kernel: 3, padding: 1,
                          bias: hasBias, weightInit: .normal(std: 0.5), biasInit: .uniform(bound: 0.5))
        conv.algorithm = .winograd
        #expect(conv.usesWinograd)
        store.finalise(seed: 11)
        let shape = Shape4(c: cin, n: n, h: h, w: w)
        let x = Owned(randomFloats(cin * n * h * w, seed: 2), channels: cin, batch: n, height: h, width: w)
        gradientCheck(layer: conv, store: store, input: x, threads: threads) { xd, pd in
            Ref.conv(xd, shape, w: Ref.slice(pd, conv.weight), b: conv.bias.map { Ref.slice(pd, $0) },
                     cout: cout, k: 3, stride: 1, pad: 1).0
        }
    }

    /// Winograd and im2col agree on realistic shapes (32 channels, batch 5) in output, input
    /// gradient and weight gradient, and `automatic` picks Winograd there but not for 3 input
    /// channels or strided and 1×1 convolutions.
    @Test(arguments: [(8, 8), (32, 32), (17, 35), (2, 2)])
    func winogradMatchesIm2col(_ plane: (Int, Int)) {
        let cin = 32, cout = 24, h = plane.0, w = plane.1, n = 5
        var results: [[Float]] = []
        for algorithm in [ConvAlgorithm.im2col, .winograd] {
            let store = ParameterStore()
            let conv = Conv2D("c", store: store, inChannels: cin, outChannels: cout, kernel: 3, padding: 1, bias: true,
                              weightInit: .normal(std: 0.1), biasInit: .uniform(bound: 0.5))
            conv.algorithm = algorithm
            store.finalise(seed: 3)
            let ctx = ExecutionContext(threads: 2)
            let x = Owned(randomFloats(cin * n * h * w, seed: 8), channels: cin, batch: n, height: h, width: w)
            let dy = Owned(randomFloats(cout * n * h * w, seed: 9), channels: cout, batch: n, height: h, width: w)
            store.zeroGradients()
            let y = withExtendedLifetime(x) { values(conv.forward(x.act, ctx)) }
            let dx = withExtendedLifetime(dy) { values(conv.backward(dy.act, ctx)) }
            results.append(y + dx + store.gradients.array)
        }
        let scale = results[0].map(abs).max() ?? 1
        let err = zip(results[0], results[1]).map { abs($0 - $1) }.max() ?? 0
        #expect(err < 1e-4 * scale, "max difference \(err) at scale \(scale)")
        let store = ParameterStore()
        #expect(Conv2D("a", store: store, inChannels: 64, outChannels: 64, kernel: 3, padding: 1, bias: false,
                       weightInit: .zeros).usesWinograd)
        #expect(!Conv2D("b", store: store, inChannels: 3, outChannels: 64, kernel: 3, padding: 1, bias: false,
                        weightInit: .zeros).usesWinograd)
        #expect(!Conv2D("c", store: store, inChannels: 64, outChannels: 64, kernel: 3, stride: 2, padding: 1, bias: false,
                        weightInit: .zeros).usesWinograd)
        #expect(!Conv2D("d", store: store, inChannels: 64, outChannels: 64, kernel: 1, bias: false,
                        weightInit: .zeros).usesWinograd)
    }

    @Test(arguments: [true, false])
    func batchNorm(training: Bool) {
        let store = ParameterStore()
        let bn = BatchNorm2D("bn", store: store, channels: 3)
        store.finalise(seed: 1)
        // Non-trivial γ, β and running statistics.
        for i in 0 ..< 3 {
            store.value(bn.gamma)[i] = Float(0.5 + Double(i) * 0.4)
            store.value(bn.beta)[i] = Float(-0.3 + Double(i) * 0.2)
            store.stateValue(bn.runningMean)[i] = Float(0.1 * Double(i))
            store.stateValue(bn.runningVar)[i] = Float(0.5 + Double(i))
        }
        let rm = (0 ..< 3).map { Double(store.stateValue(bn.runningMean)[$0]) }
        let rv = (0 ..< 3).map { Double(store.stateValue(bn.runningVar)[$0]) }
        let shape = Shape4(c: 3, n: 4, h: 3, w: 2)
        let x = Owned(randomFloats(3 * 4 * 6, seed: 3, scale: 2), channels: 3, batch: 4, height: 3, width: 2)
        gradientCheck(layer: bn, store: store, input: x, training: training) { xd, pd in
            Ref.batchNorm(xd, shape, gamma: Ref.slice(pd, bn.gamma), beta: Ref.slice(pd, bn.beta), training: training,
                          runningMean: rm, runningVar: rv)
        }
    }

    /// BatchNorm with its ReLU's forward fused (as Network sets it for a ReLU right after a BatchNorm)
    /// gives the two layers' results bit for bit: output, input gradient, γ/β gradients and
    /// running statistics, in training and in a differentiated evaluation forward, on 1 and 2
    /// threads; the planes (17 values) leave a SIMD remainder.
    @Test(arguments: [(true, 1), (true, 2), (false, 2)])
    func fusedBatchNormReLUMatchesTheTwoLayers(_ p: (Bool, Int)) {
        let (training, threads) = p
        let channels = 5, n = 17, count = channels * n
        let x = randomFloats(count, seed: 11, scale: 2), dy = randomFloats(count, seed: 12)
        func run(fused: Bool) -> [[Float]] {
            let store = ParameterStore()
            let bn = BatchNorm2D("bn", store: store, channels: channels), relu = ReLU("relu")
            store.finalise(seed: 1)
            for i in 0 ..< channels {
                store.value(bn.gamma)[i] = Float(0.5 + Double(i) * 0.3)
                store.value(bn.beta)[i] = Float(-0.4 + Double(i) * 0.2)
            }
            if fused { bn.fusedReLU = true; relu.fused = true } else { relu.inPlace = true }
            let ctx = ExecutionContext(threads: threads)
            ctx.training = training
            ctx.gradientsInEvaluation = !training
            let xo = Owned(x, channels: channels, batch: n), dyo = Owned(dy, channels: channels, batch: n)
            return withExtendedLifetime((xo, dyo)) {
                let y = values(relu.forward(bn.forward(xo.act, ctx), ctx))
                let dx = values(bn.backward(relu.backward(dyo.act, ctx), ctx))
                let slots = [bn.gamma, bn.beta]
                return [y, dx] + slots.map { s in (0 ..< channels).map { store.gradient(s)[$0] } }
                    + [bn.runningMean, bn.runningVar].map { s in (0 ..< channels).map { store.stateValue(s)[$0] } }
            }
        }
        let fused = run(fused: true), apart = run(fused: false)
        #expect(fused == apart)
        #expect(fused[0].contains(0) && fused[0].contains { $0 > 0 })
    }

    @Test func batchNormRunningStatistics() {
        // running = 0.9·running + 0.1·batch, running variance from the unbiased batch variance.
        let store = ParameterStore()
        let bn = BatchNorm2D("bn", store: store, channels: 1)
        store.finalise(seed: 1)
        let x = Owned([1, 2, 3, 6], channels: 1, batch: 4)
        let ctx = ExecutionContext(threads: 1)
        let y = withExtendedLifetime(x) { values(bn.forward(x.act, ctx)) }
        // mean 3, biased var 3.5, unbiased var 14/3
        #expect(abs(store.stateValue(bn.runningMean)[0] - 0.3) < 1e-6)
        #expect(abs(store.stateValue(bn.runningVar)[0] - Float(0.9 + 0.1 * 14.0 / 3.0)) < 1e-6)
        let inv = 1 / (3.5 + 1e-5).squareRoot()
        for (i, v) in [1.0, 2, 3, 6].enumerated() { #expect(abs(Double(y[i]) - (v - 3) * inv) < 1e-5) }
        ctx.training = false
        let e = withExtendedLifetime(x) { values(bn.forward(x.act, ctx)) }
        let rInv = 1 / (Double(store.stateValue(bn.runningVar)[0]) + 1e-5).squareRoot()
        for (i, v) in [1.0, 2, 3, 6].enumerated() { #expect(abs(Double(e[i]) - (v - 0.3) * rInv) < 1e-5) }
    }

    @Test func relu() {
        let store = ParameterStore(); store.finalise(seed: 0)
        let layer = ReLU("r")
        let x = Owned(randomFloats(40, seed: 5), channels: 2, batch: 4, height: 5)
        gradientCheck(layer: layer, store: store, input: x) { xd, _ in Ref.relu(xd) }
        let hand = Owned([-1, 0, 2.5], channels: 1, batch: 3)
        withExtendedLifetime(hand) { #expect(values(layer.forward(hand.act, ExecutionContext(threads: 1))) == [0, 0, 2.5]) }
    }

    @Test(arguments: [(2, 2, 4), (3, 1, 5), (2, 2, 5)])
    func maxPool(_ p: (Int, Int, Int)) {
        let (k, s, h) = p
        let store = ParameterStore(); store.finalise(seed: 0)
        let layer = MaxPool2D("p", kernel: k, stride: s)
        let shape = Shape4(c: 2, n: 3, h: h, w: h)
        let x = Owned(randomFloats(2 * 3 * h * h, seed: 6), channels: 2, batch: 3, height: h, width: h)
        gradientCheck(layer: layer, store: store, input: x) { xd, _ in Ref.maxPool(xd, shape, k: k, stride: s).0 }
    }

    @Test func maxPoolHandCase() {
        let x = Owned([1, 5, 2, 0,
                       3, 4, 7, 7,
                       -1, -2, 0, 0,
                       -3, -4, 0, 9], channels: 1, batch: 1, height: 4, width: 4)
        let pool = MaxPool2D("p")
        withExtendedLifetime((x, pool)) { #expect(values(pool.forward(x.act, ExecutionContext(threads: 1))) == [5, 7, -1, 9]) }
    }

    @Test func avgPool() {
        let store = ParameterStore(); store.finalise(seed: 0)
        let layer = AvgPool2D("a", kernel: 2)
        let shape = Shape4(c: 3, n: 2, h: 4, w: 4)
        let x = Owned(randomFloats(96, seed: 8), channels: 3, batch: 2, height: 4, width: 4)
        gradientCheck(layer: layer, store: store, input: x) { xd, _ in Ref.avgPool(xd, shape, k: 2).0 }
        let hand = Owned([1, 2, 3, 6], channels: 1, batch: 1, height: 2, width: 2)
        let pool = AvgPool2D("a", kernel: 2)
        withExtendedLifetime((hand, pool)) { #expect(values(pool.forward(hand.act, ExecutionContext(threads: 1))) == [3]) }
    }

    @Test func flatten() {
        let store = ParameterStore(); store.finalise(seed: 0)
        let layer = Flatten("f")
        let shape = Shape4(c: 3, n: 2, h: 2, w: 2)
        let x = Owned(randomFloats(24, seed: 9), channels: 3, batch: 2, height: 2, width: 2)
        gradientCheck(layer: layer, store: store, input: x) { xd, _ in Ref.flatten(xd, shape) }
    }

    @Test(arguments: [1, 2])
    func linear(threads: Int) {
        let store = ParameterStore()
        let layer = Linear("l", store: store, inFeatures: 7, outFeatures: 4)
        store.finalise(seed: 3)
        let x = Owned(randomFloats(17 * 7, seed: 10), channels: 7, batch: 17, layout: .rowMajor)
        gradientCheck(layer: layer, store: store, input: x, threads: threads) { xd, pd in
            Ref.linear(xd, n: 17, inF: 7, w: Ref.slice(pd, layer.weight), b: Ref.slice(pd, layer.bias), outF: 4)
        }
    }

    @Test func convHandCase() {
        // 1 input channel 3×3, one 2×2 filter of ones, bias 0.5, no padding → sums of 2×2 windows.
        let store = ParameterStore()
        let conv = Conv2D("c", store: store, inChannels: 1, outChannels: 1, kernel: 2, bias: true, weightInit: .ones,
                          biasInit: .constant(0.5))
        store.finalise(seed: 0)
        let x = Owned([1, 2, 3, 4, 5, 6, 7, 8, 9], channels: 1, batch: 1, height: 3, width: 3)
        withExtendedLifetime(x) { #expect(values(conv.forward(x.act, ExecutionContext(threads: 1))) == [12.5, 16.5, 24.5, 28.5]) }
    }

    /// The residual block is checked against a reference composed of the reference layers.
    @Test(arguments: [(BasicBlock.ShortcutOption.projection, 2, 2, 4), (.projection, 3, 1, 3), (.padded, 2, 2, 8)])
    func basicBlock(_ p: (BasicBlock.ShortcutOption, Int, Int, Int)) {
        let (option, inPlanes, stride, planes) = p
        let store = ParameterStore()
        let block = BasicBlock("b", store: store, inPlanes: inPlanes, planes: planes, stride: stride, option: option,
                               convInit: { fanIn, _ in .normal(std: (2.0 / Double(fanIn)).squareRoot()) })
        store.finalise(seed: 11)
        for slot in store.parameters where slot.name.hasSuffix("bias") {
            for i in 0 ..< slot.count { store.value(slot)[i] = Float(i % 3) * 0.1 - 0.1 }
        }
        if planes > 2 { block.keep[1] = 0 }    // a pruned conv2 channel drops its residual
        let keep = (0 ..< planes).map { Double(block.keep[$0]) }
        let n = 3, h = 6
        let s0 = Shape4(c: inPlanes, n: n, h: h, w: h)
        let x = Owned(randomFloats(inPlanes * n * h * h, seed: 12), channels: inPlanes, batch: n, height: h, width: h)
        gradientCheck(layer: block, store: store, input: x, tolerance: 3e-3) { xd, pd in
            func bn(_ v: [Double], _ s: Shape4, _ b: BatchNorm2D) -> [Double] {
                Ref.batchNorm(v, s, gamma: Ref.slice(pd, b.gamma), beta: Ref.slice(pd, b.beta), training: true,
                              runningMean: [], runningVar: [])
            }
            let (c1, s1) = Ref.conv(xd, s0, w: Ref.slice(pd, block.conv1.weight), b: nil, cout: planes, k: 3, stride: stride, pad: 1)
            let a1 = Ref.relu(bn(c1, s1, block.bn1))
            let (c2, s2) = Ref.conv(a1, s1, w: Ref.slice(pd, block.conv2.weight), b: nil, cout: planes, k: 3, stride: 1, pad: 1)
            let o = bn(c2, s2, block.bn2)
            var sc: [Double]
            switch block.shortcut {
            case .identity: sc = xd
            case .projection(let conv, let b):
                let (cs, ss) = Ref.conv(xd, s0, w: Ref.slice(pd, conv.weight), b: nil, cout: planes, k: 1, stride: stride, pad: 0)
                sc = bn(cs, ss, b)
            case .paddedSubsample(let pad):
                sc = [Double](repeating: 0, count: o.count)
                for ci in 0 ..< inPlanes { for b in 0 ..< n { for oy in 0 ..< s2.h { for ox in 0 ..< s2.w {
                    sc[(((ci + pad) * n + b) * s2.h + oy) * s2.w + ox] = xd[((ci * n + b) * h + 2 * oy) * h + 2 * ox]
                } } } }
            }
            let m = n * s2.h * s2.w
            return (0 ..< o.count).map { i in max(o[i] + keep[i / m] * sc[i], 0) }
        }
    }
}
