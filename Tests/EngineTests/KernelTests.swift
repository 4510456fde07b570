// The specialised kernels against their element-by-element specifications: im2col/col2im for
// every stride/padding/plane shape the fast paths distinguish; plus gradient checks on the
// shapes (tiny planes, wide tiles) that only the benchmark models would otherwise reach.
import Engine
import Testing

@Suite struct KernelTests {
    // (cin, h, w, k, stride, pad, batch, n0, count)
    static let geometries: [(Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
        (2, 5, 5, 3, 1, 1, 3, 0, 3),     // same, stride 1
        (3, 6, 7, 3, 1, 1, 4, 1, 2),     // same, non-square, tile in the middle
        (2, 2, 2, 3, 1, 1, 5, 2, 3),     // same, 2×2 plane
        (2, 1, 1, 3, 1, 1, 3, 0, 3),     // same, 1×1 plane (only the centre tap is valid)
        (1, 7, 6, 5, 1, 2, 2, 0, 2),     // same, 5×5
        (2, 6, 6, 3, 1, 0, 2, 0, 2),     // valid conv, stride 1
        (2, 5, 4, 3, 1, 2, 2, 1, 1),     // over-padded, stride 1
        (3, 8, 8, 3, 2, 1, 3, 0, 3),     // stride 2, pad 1
        (2, 7, 7, 3, 2, 1, 2, 0, 2),     // stride 2, odd plane
        (2, 6, 5, 1, 2, 0, 2, 0, 2),     // 1×1 stride 2
        (2, 2, 2, 3, 2, 1, 2, 0, 2),     // stride 2 on a 2×2 plane
        (2, 9, 9, 3, 3, 1, 2, 0, 2),     // stride 3
        (2, 4, 4, 2, 2, 0, 2, 1, 1),     // 2×2 stride 2
    ]

    @Test(arguments: 0 ..< geometries.count)
    func im2colMatchesReference(_ i: Int) {
        let (cin, h, w, k, s, p, n, n0, count) = Self.geometries[i]
        let g = ConvGeometry(channels: cin, height: h, width: w, kernel: k, stride: s, padding: p)
        let x = randomFloats(cin * n * h * w, seed: UInt64(40 + i))
        let rows = cin * k * k, cols = count * g.outHeight * g.outWidth
        var fast = [Float](repeating: .nan, count: rows * cols), slow = [Float](repeating: 0, count: rows * cols)
        x.withUnsafeBufferPointer { xp in
            fast.withUnsafeMutableBufferPointer { ConvKernels.im2col(xp.baseAddress!, chanStride: n * h * w, n0: n0, count: count, g, col: $0.baseAddress!) }
            slow.withUnsafeMutableBufferPointer { ConvKernels.im2colReference(xp.baseAddress!, chanStride: n * h * w, n0: n0, count: count, g, col: $0.baseAddress!) }
        }
        #expect(fast == slow)
    }

    @Test(arguments: 0 ..< geometries.count)
    func col2imMatchesReference(_ i: Int) {
        let (cin, h, w, k, s, p, n, n0, count) = Self.geometries[i]
        let g = ConvGeometry(channels: cin, height: h, width: w, kernel: k, stride: s, padding: p)
        let cols = count * g.outHeight * g.outWidth
        let col = randomFloats(cin * k * k * cols, seed: UInt64(60 + i))
        var fast = [Float](repeating: .nan, count: cin * n * h * w), slow = fast
        var scratch = col
        scratch.withUnsafeMutableBufferPointer { c in
            fast.withUnsafeMutableBufferPointer { ConvKernels.col2im(c.baseAddress!, n0: n0, count: count, g, dx: $0.baseAddress!, chanStride: n * h * w) }
        }
        col.withUnsafeBufferPointer { c in
            slow.withUnsafeMutableBufferPointer { ConvKernels.col2imReference(c.baseAddress!, n0: n0, count: count, g, dx: $0.baseAddress!, chanStride: n * h * w) }
        }
        // Only the tile's images are written; summation order differs, so compare to 1e-5.
        for ci in 0 ..< cin {
            for j in (ci * n + n0) * h * w ..< (ci * n + n0 + count) * h * w {
                #expect(abs(fast[j] - slow[j]) <= 1e-5 * max(1, abs(slow[j])), "element \(j)")
            }
        }
    }

    /// Convolutions on the small planes that take wide tiles (≤ 8×8), same and strided.
    @Test(arguments: [
        // (cin, cout, k, stride, pad, h, batch, threads)
        (3, 4, 3, 1, 1, 2, 5, 2),
        (2, 3, 3, 1, 1, 4, 6, 2),
        (2, 3, 3, 2, 1, 4, 3, 1),
        (2, 2, 3, 1, 1, 1, 3, 2),
    ])
    func smallPlaneConv(_ p: (Int, Int, Int, Int, Int, Int, Int, Int)) {
        let (cin, cout, k, s, pad, h, n, threads) = p
        let store = ParameterStore()
        let conv = Conv2D("c", store: store, inChannels: cin, outChannels: cout, kernel: k, stride: s, padding: pad,
                          bias: true, weightInit: .normal(std: 0.5), biasInit: .uniform(bound: 0.5))
        store.finalise(seed: 9)
        let shape = Shape4(c: cin, n: n, h: h, w: h)
        let x = Owned(randomFloats(cin * n * h * h, seed: 2), channels: cin, batch: n, height: h, width: h)
        gradientCheck(layer: conv, store: store, input: x, threads: threads) { xd, pd in
            Ref.conv(xd, shape, w: Ref.slice(pd, conv.weight), b: conv.bias.map { Ref.slice(pd, $0) },
                     cout: cout, k: k, stride: s, pad: pad).0
        }
    }
}

@Suite struct OptimKernelTests {
    /// The vectorised Adam step equals the scalar formula bit for bit (ranges not multiples of 4).
    @Test(arguments: [0.0, 0.01])
    func adamMatchesScalar(weightDecay: Double) {
        let n = 37
        let g0 = randomFloats(n, seed: 3), p0 = randomFloats(n, seed: 4)
        let m0 = randomFloats(n, seed: 5, scale: 0.1), v0 = randomFloats(n, seed: 6, scale: 0.1).map { $0 * $0 }
        let s = AdamScalars(beta1: 0.9, beta2: 0.999, oneMinusBeta1: Float(1 - 0.9), oneMinusBeta2: Float(1 - 0.999),
                            stepSize: 0.0123, sqrtBiasCorrection2: 0.0447, eps: 1e-8, weightDecay: Float(weightDecay))
        var p = p0, m = m0, v = v0
        p.withUnsafeMutableBufferPointer { pp in m.withUnsafeMutableBufferPointer { mp in v.withUnsafeMutableBufferPointer { vp in
            g0.withUnsafeBufferPointer { gp in
                for r in [0 ..< 5, 5 ..< 22, 22 ..< 37] {
                    OptimKernels.adam(p: pp.baseAddress!, g: gp.baseAddress!, m: mp.baseAddress!, v: vp.baseAddress!, range: r, s)
                }
            }
        } } }
        for i in 0 ..< n {
            var gi = g0[i]
            if s.weightDecay != 0 { gi += s.weightDecay * p0[i] }
            let mi = s.beta1 * m0[i] + s.oneMinusBeta1 * gi
            let vi = s.beta2 * v0[i] + s.oneMinusBeta2 * gi * gi
            let pi = p0[i] - s.stepSize * (mi / (vi.squareRoot() / s.sqrtBiasCorrection2 + s.eps))
            #expect(m[i] == mi && v[i] == vi && p[i] == pi, "element \(i)")
        }
    }
}

@Suite struct PoolKernelTests {
    /// 2×2/stride-2 max pooling: first maximum wins ties; backward routes to it and zeroes the rest.
    @Test func maxPoolTiesAndOddEdges() {
        let x = Owned([1, 1, 0, 2, 9,
                       0, 1, 2, 0, 9,
                       3, 3, 3, 3, 9], channels: 1, batch: 1, height: 3, width: 5)
        let pool = MaxPool2D("p")
        let ctx = ExecutionContext(threads: 1)
        let y = withExtendedLifetime(x) { values(pool.forward(x.act, ctx)) }
        #expect(y == [1, 2])
        let dy = Owned([10, 20], channels: 1, batch: 1, height: 1, width: 2)
        let dx = withExtendedLifetime((x, dy)) { values(pool.backward(dy.act, ctx)) }
        #expect(dx == [10, 0, 0, 20, 0,
                       0, 0, 0, 0, 0,
                       0, 0, 0, 0, 0])
    }
}
