// Winograd F(4×4, 3×3) (KernelsWinograd4.swift) against a float64 direct convolution:
// forward, input gradient and weight gradient over odd plane sizes (partial edge tiles,
// planes smaller than a tile, rows of more than 8 tiles), channel counts, batch sizes and
// thread counts 1, 2 and 3; bit-identical repeats for a thread count; and the rounding error
// of F(4×4), F(2×2) and im2col measured against float64 on a realistic layer.
@testable import Engine
import Testing

/// A 3×3, stride-1, padding-1 convolution in Double: output, input gradient and weight
/// gradient for input x [Cin, N, H, W], weights [Cout, Cin, 3, 3] and output gradient dy.
private struct DirectConvolution {
    var y: [Double], dx: [Double], dw: [Double], db: [Double]

    init(x: [Double], w: [Double], b: [Double]?, dy: [Double], cin: Int, cout: Int, n: Int, h: Int, width: Int) {
        let plane = h * width
        y = [Double](repeating: 0, count: cout * n * plane)
        dx = [Double](repeating: 0, count: cin * n * plane)
        dw = [Double](repeating: 0, count: cout * cin * 9)
        db = (0 ..< cout).map { co in (0 ..< n * plane).reduce(0.0) { $0 + dy[co * n * plane + $1] } }
        for co in 0 ..< cout { for img in 0 ..< n { for oy in 0 ..< h { for ox in 0 ..< width {
            let o = (co * n + img) * plane + oy * width + ox
            var acc = b?[co] ?? 0
            for ci in 0 ..< cin { for ky in 0 ..< 3 { for kx in 0 ..< 3 {
                let iy = oy - 1 + ky, ix = ox - 1 + kx
                guard iy >= 0 && iy < h && ix >= 0 && ix < width else { continue }
                let i = (ci * n + img) * plane + iy * width + ix, k = ((co * cin + ci) * 3 + ky) * 3 + kx
                acc += w[k] * x[i]
                dx[i] += w[k] * dy[o]
                dw[k] += x[i] * dy[o]
            } } }
            y[o] = acc
        } } } }
    }
}

/// One forward and backward call of a Conv2D: output, input gradient, weight and bias gradients.
private struct ConvResult {
    var y: [Float], dx: [Float], dw: [Float], db: [Float]
}

/// A 3×3 same convolution with weights from `seed`, run on x and dy with `algorithm`.
private func runConvolution(_ algorithm: ConvAlgorithm, cin: Int, cout: Int, n: Int, h: Int, w: Int, bias: Bool, threads: Int,
                            x: [Float], dy: [Float], seed: UInt64, weightStd: Double = 0.3) -> (ConvResult, [Double]) {
    let store = ParameterStore()
    let conv = Conv2D("c", store: store, inChannels: cin, outChannels: cout, kernel: 3, padding: 1, bias: bias,
                      weightInit: .normal(std: weightStd), biasInit: .uniform(bound: 0.5))
    conv.algorithm = algorithm
    store.finalise(seed: seed)
    let ctx = ExecutionContext(threads: threads)
    let xa = Owned(x, channels: cin, batch: n, height: h, width: w)
    let dya = Owned(dy, channels: cout, batch: n, height: h, width: w)
    store.zeroGradients()
    let y = withExtendedLifetime(xa) { values(conv.forward(xa.act, ctx)) }
    let dx = withExtendedLifetime(dya) { values(conv.backward(dya.act, ctx)) }
    let grads = store.gradients.array
    let dw = Array(grads[conv.weight.offset ..< conv.weight.offset + conv.weight.count])
    let db = conv.bias.map { Array(grads[$0.offset ..< $0.offset + $0.count]) } ?? []
    return (ConvResult(y: y, dx: dx, dw: dw, db: db), store.values.array.map(Double.init))
}

/// ‖a − b‖ / ‖b‖ (b the float64 reference).
private func relativeError(_ a: [Float], _ b: [Double]) -> Double {
    let d = zip(a, b).map { (Double($0) - $1) * (Double($0) - $1) }.reduce(0, +).squareRoot()
    return d / max(b.map { $0 * $0 }.reduce(0, +).squareRoot(), 1e-30)
}

/// max |a − b| / max |b|.
private func maxError(_ a: [Float], _ b: [Double]) -> Double {
    let d = zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
    return d / max(b.map(abs).max() ?? 0, 1e-30)
}

@Suite struct Winograd4Tests {
    /// F(4×4) against float64 on awkward shapes: planes not a multiple of 4 (partial tiles),
    /// smaller than one tile (1×1, 2×3), wider than 8 tiles (34 columns: vector blocks spanning
    /// tile rows), tile blocks spanning images, 1 to 3 threads, the weight gradient summed over
    /// the whole batch (one chunk per worker) and from per-worker partials (several chunks).
    @Test(arguments: [
        // (cin, cout, bias, h, w, batch, threads)
        (3, 5, true, 5, 7, 3, 2),
        (1, 2, false, 1, 1, 2, 1),
        (2, 3, true, 2, 3, 5, 3),
        (4, 4, false, 4, 4, 9, 2),
        (5, 3, true, 8, 8, 3, 3),
        (3, 2, false, 9, 13, 2, 1),
        (2, 3, true, 6, 34, 2, 2),
        (17, 9, true, 11, 10, 4, 3),
        (16, 16, false, 3, 3, 40, 2),
        (2, 3, true, 40, 37, 6, 2),  // 100 tiles per image: chunks of 2 images, per-worker dU partials
    ])
    func matchesFloat64(_ p: (Int, Int, Bool, Int, Int, Int, Int)) {
        let (cin, cout, hasBias, h, w, n, threads) = p
        let x = randomFloats(cin * n * h * w, seed: 31), dy = randomFloats(cout * n * h * w, seed: 32)
        let (r, params) = runConvolution(.winograd4, cin: cin, cout: cout, n: n, h: h, w: w, bias: hasBias, threads: threads,
                                         x: x, dy: dy, seed: 33)
        let wCount = cout * cin * 9
        let ref = DirectConvolution(x: x.map(Double.init), w: Array(params[0 ..< wCount]), b: hasBias ? Array(params[wCount...]) : nil,
                                    dy: dy.map(Double.init), cin: cin, cout: cout, n: n, h: h, width: w)
        #expect(maxError(r.y, ref.y) < 2e-5, "forward")
        #expect(maxError(r.dx, ref.dx) < 2e-5, "input gradient")
        #expect(maxError(r.dw, ref.dw) < 2e-5, "weight gradient")
        if hasBias { #expect(maxError(r.db, ref.db) < 1e-6, "bias gradient") }
    }

    /// The same layer and data give bit-identical results on repeated runs with 1, 2 and 3
    /// threads (fresh layers and contexts; a partial last block; 280 tiles: per-worker partials
    /// with 1 thread, the whole-batch sum with 2 and 3).
    @Test(arguments: [1, 2, 3])
    func deterministic(threads: Int) {
        let cin = 20, cout = 12, n = 70, h = 6, w = 5
        let x = randomFloats(cin * n * h * w, seed: 41), dy = randomFloats(cout * n * h * w, seed: 42)
        func run() -> ConvResult {
            runConvolution(.winograd4, cin: cin, cout: cout, n: n, h: h, w: w, bias: true, threads: threads, x: x, dy: dy, seed: 43).0
        }
        let a = run(), b = run()
        #expect(a.y == b.y)
        #expect(a.dx == b.dx)
        #expect(a.dw == b.dw)
        #expect(a.db == b.db)
    }

    /// `winograd4` applies to every 3×3 stride-1 padding-1 convolution, whatever its channels,
    /// and to nothing else.
    @Test func selection() {
        let store = ParameterStore()
        func conv(_ cin: Int, kernel: Int, stride: Int = 1, padding: Int) -> Conv2D {
            let c = Conv2D("c", store: store, inChannels: cin, outChannels: 8, kernel: kernel, stride: stride, padding: padding,
                           bias: false, weightInit: .zeros)
            c.algorithm = .winograd4
            return c
        }
        #expect(conv(3, kernel: 3, padding: 1).usesWinograd)
        #expect(conv(64, kernel: 3, padding: 1).usesWinograd)
        #expect(!conv(64, kernel: 3, stride: 2, padding: 1).usesWinograd)
        #expect(!conv(64, kernel: 1, padding: 0).usesWinograd)
        #expect(!conv(64, kernel: 3, padding: 0).usesWinograd)
    }

    /// `automatic` takes F(4×4) on planes of at least 4×4, F(2×2) below, im2col for fewer than
    /// 16 input channels; `automatic2` the same with F(2×2) on every plane.
    @Test func automaticVariants() {
        let store = ParameterStore()
        func plan(_ cin: Int, _ h: Int, _ w: Int, _ algorithm: ConvAlgorithm = .automatic) -> String {
            let c = Conv2D("c", store: store, inChannels: cin, outChannels: 8, kernel: 3, padding: 1, bias: false, weightInit: .zeros)
            c.algorithm = algorithm
            switch c.winogradPlan(height: h, width: w) {
            case .f2x2?: return "F2"
            case .f4x4?: return "F4"
            case nil: return "im2col"
            }
        }
        #expect(Conv2D.winograd4MinimumSize == 4)
        #expect(plan(64, 32, 32) == "F4" && plan(64, 4, 4) == "F4" && plan(16, 5, 4) == "F4")
        #expect(plan(64, 2, 2) == "F2" && plan(64, 3, 32) == "F2")
        #expect(plan(3, 32, 32) == "im2col" && plan(15, 8, 8) == "im2col")
        #expect(plan(64, 32, 32, .automatic2) == "F2" && plan(64, 2, 2, .automatic2) == "F2" && plan(15, 8, 8, .automatic2) == "im2col")
    }

    /// Rounding error against float64 on a VGG-like layer (64 → 64 channels, He-initialised
    /// weights, unit-normal inputs and output gradients, batch 8) at 8×8 and 16×16: F(4×4)
    /// is within 1e-5 relative (‖·‖₂) in output, input gradient and weight gradient; measured
    /// 1.2–2.4e-6, 4–15× the error of F(2×2) and im2col (printed for the record).
    @Test(arguments: [8, 16])
    func roundingError(plane: Int) {
        let cin = 64, cout = 64, n = 8, h = plane, w = plane
        let x = randomFloats(cin * n * h * w, seed: 51), dy = randomFloats(cout * n * h * w, seed: 52)
        let std = (2.0 / Double(cin * 9)).squareRoot()
        var errors: [(ConvAlgorithm, Double, Double, Double)] = []
        var reference: DirectConvolution?
        for algorithm in [ConvAlgorithm.im2col, .winograd, .winograd4] {
            let (r, params) = runConvolution(algorithm, cin: cin, cout: cout, n: n, h: h, w: w, bias: false, threads: 2,
                                             x: x, dy: dy, seed: 53, weightStd: std)
            // The same seed gives every algorithm the same weights.
            let ref = reference ?? DirectConvolution(x: x.map(Double.init), w: params, b: nil, dy: dy.map(Double.init),
                                                     cin: cin, cout: cout, n: n, h: h, width: w)
            reference = ref
            errors.append((algorithm, relativeError(r.y, ref.y), relativeError(r.dx, ref.dx), relativeError(r.dw, ref.dw)))
        }
        for (a, y, dx, dw) in errors {
            print("rounding error \(plane)×\(plane), \(a.rawValue): forward \(y), input gradient \(dx), weight gradient \(dw)")
        }
        let f4 = errors[2]
        #expect(f4.1 < 1e-5 && f4.2 < 1e-5 && f4.3 < 1e-5)
        // F(4×4) trades accuracy for multiplies: it is never more accurate than F(2×2) here.
        #expect(f4.1 > errors[1].1)
    }
}

