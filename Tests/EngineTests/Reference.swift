// Naive Double-precision reference implementations of every layer (the test oracle), and a
// finite-difference gradient checker that compares them with the Float engine.
import Engine
import Testing

/// Owns Float storage for an activation used as a test input.
final class Owned {
    let buffer: FloatBuffer
    let act: Activation
    init(_ values: [Float], channels: Int, batch: Int, height: Int = 1, width: Int = 1, layout: Layout = .channelMajor) {
        buffer = FloatBuffer(count: values.count)
        for (i, v) in values.enumerated() { buffer[i] = v }
        act = Activation(data: buffer.ptr, channels: channels, batch: batch, height: height, width: width, layout: layout)
    }
}

func values(_ a: Activation) -> [Float] { Array(UnsafeBufferPointer(start: a.data, count: a.count)) }

struct Shape4 { var c: Int, n: Int, h: Int, w: Int }

enum Ref {
    /// x [Cin, N, H, W] (CNHW) → [Cout, N, Ho, Wo]
    static func conv(_ x: [Double], _ s: Shape4, w: [Double], b: [Double]?, cout: Int, k: Int, stride: Int, pad: Int) -> ([Double], Shape4) {
        let ho = (s.h + 2 * pad - k) / stride + 1, wo = (s.w + 2 * pad - k) / stride + 1
        var y = [Double](repeating: 0, count: cout * s.n * ho * wo)
        for co in 0 ..< cout { for n in 0 ..< s.n { for oy in 0 ..< ho { for ox in 0 ..< wo {
            var acc = b?[co] ?? 0
            for ci in 0 ..< s.c { for ky in 0 ..< k { for kx in 0 ..< k {
                let iy = oy * stride - pad + ky, ix = ox * stride - pad + kx
                if iy < 0 || iy >= s.h || ix < 0 || ix >= s.w { continue }
                acc += w[((co * s.c + ci) * k + ky) * k + kx] * x[((ci * s.n + n) * s.h + iy) * s.w + ix]
            } } }
            y[((co * s.n + n) * ho + oy) * wo + ox] = acc
        } } } }
        return (y, Shape4(c: cout, n: s.n, h: ho, w: wo))
    }

    static func batchNorm(_ x: [Double], _ s: Shape4, gamma: [Double], beta: [Double], training: Bool,
                          runningMean: [Double], runningVar: [Double]) -> [Double] {
        let m = s.n * s.h * s.w
        var y = x
        for c in 0 ..< s.c {
            let xs = x[c * m ..< (c + 1) * m]
            let mean: Double, variance: Double
            if training {
                mean = xs.reduce(0, +) / Double(m)
                variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(m)
            } else {
                mean = runningMean[c]; variance = runningVar[c]
            }
            for i in 0 ..< m { y[c * m + i] = (x[c * m + i] - mean) / (variance + 1e-5).squareRoot() * gamma[c] + beta[c] }
        }
        return y
    }

    static func relu(_ x: [Double]) -> [Double] { x.map { max($0, 0) } }

    static func maxPool(_ x: [Double], _ s: Shape4, k: Int, stride: Int) -> ([Double], Shape4) {
        let ho = (s.h - k) / stride + 1, wo = (s.w - k) / stride + 1
        var y = [Double]()
        for img in 0 ..< s.c * s.n { for oy in 0 ..< ho { for ox in 0 ..< wo {
            var best = -Double.infinity
            for ky in 0 ..< k { for kx in 0 ..< k { best = max(best, x[img * s.h * s.w + (oy * stride + ky) * s.w + ox * stride + kx]) } }
            y.append(best)
        } } }
        return (y, Shape4(c: s.c, n: s.n, h: ho, w: wo))
    }

    static func avgPool(_ x: [Double], _ s: Shape4, k: Int) -> ([Double], Shape4) {
        let ho = s.h / k, wo = s.w / k
        var y = [Double]()
        for img in 0 ..< s.c * s.n { for oy in 0 ..< ho { for ox in 0 ..< wo {
            var t = 0.0
            for ky in 0 ..< k { for kx in 0 ..< k { t += x[img * s.h * s.w + (oy * k + ky) * s.w + ox * k + kx] } }
            y.append(t / Double(k * k))
        } } }
        return (y, Shape4(c: s.c, n: s.n, h: ho, w: wo))
    }

    /// CNHW → [N, C·H·W]
    static func flatten(_ x: [Double], _ s: Shape4) -> [Double] {
        var y = [Double](repeating: 0, count: x.count)
        let f = s.c * s.h * s.w, plane = s.h * s.w
        for c in 0 ..< s.c { for n in 0 ..< s.n { for p in 0 ..< plane { y[n * f + c * plane + p] = x[(c * s.n + n) * plane + p] } } }
        return y
    }

    /// [N, in] → [N, out]
    static func linear(_ x: [Double], n: Int, inF: Int, w: [Double], b: [Double], outF: Int) -> [Double] {
        var y = [Double](repeating: 0, count: n * outF)
        for i in 0 ..< n { for o in 0 ..< outF {
            var acc = b[o]
            for j in 0 ..< inF { acc += x[i * inF + j] * w[o * inF + j] }
            y[i * outF + o] = acc
        } }
        return y
    }

    static func slice(_ arena: [Double], _ slot: TensorSlot) -> [Double] { Array(arena[slot.offset ..< slot.offset + slot.count]) }
}

/// Deterministic test data.
func randomFloats(_ n: Int, seed: UInt64, scale: Double = 1) -> [Float] {
    var rng = CounterRNG(seed: seed, purpose: .noise, 99)
    return (0 ..< n).map { _ in Float(rng.normal() * scale) }
}

/// Compares the engine's analytic gradients (Float) with central differences of the Double
/// reference, for the input and for every parameter in `store`.
/// `reference(x, params)` must return the layer output in the engine's layout.
func gradientCheck(layer: Layer, store: ParameterStore, input: Owned, threads: Int = 2, training: Bool = true,
                   checkInput: Bool = true, tolerance: Double = 2e-3,
                   reference: ([Double], [Double]) -> [Double], sourceLocation: SourceLocation = #_sourceLocation) {
    let ctx = ExecutionContext(threads: threads)
    ctx.training = training
    ctx.gradientsInEvaluation = true   // evaluation mode is differentiated too
    store.zeroGradients()
    let y = layer.forward(input.act, ctx)
    let xD = values(input.act).map(Double.init)
    let pD = store.values.array.map(Double.init)
    // The Float forward must agree with the reference forward.
    let yRef = reference(xD, pD)
    #expect(yRef.count == y.count, sourceLocation: sourceLocation)
    let yF = values(y)
    let forwardErr = zip(yF, yRef).map { abs(Double($0) - $1) }.max() ?? 0
    let yScale = yRef.map(abs).max() ?? 1
    #expect(forwardErr <= 1e-4 * max(yScale, 1), "forward error \(forwardErr)", sourceLocation: sourceLocation)

    let r = randomFloats(y.count, seed: 4242)
    let dyOwned = Owned(r, channels: y.channels, batch: y.batch, height: y.height, width: y.width, layout: y.layout)
    layer.computesInputGradient = checkInput
    let dx = withExtendedLifetime(dyOwned) { layer.backward(dyOwned.act, ctx) }
    let rD = r.map(Double.init)
    func loss(_ x: [Double], _ p: [Double]) -> Double { zip(reference(x, p), rD).map { $0 * $1 }.reduce(0, +) }

    func compare(_ analytic: [Float], _ numeric: [Double], _ what: String) {
        let diff = zip(analytic, numeric).map { (Double($0) - $1) * (Double($0) - $1) }.reduce(0, +).squareRoot()
        let norm = max(numeric.map { $0 * $0 }.reduce(0, +).squareRoot(), analytic.map { Double($0) * Double($0) }.reduce(0, +).squareRoot(), 1e-6)
        #expect(diff / norm < tolerance, "\(layer.name) \(what): relative error \(diff / norm)", sourceLocation: sourceLocation)
        let worst = zip(analytic, numeric).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? 0
        #expect(worst < 20 * tolerance, "\(layer.name) \(what): worst element error \(worst)", sourceLocation: sourceLocation)
    }

    let h = 1e-5
    if checkInput {
        var numeric = [Double](repeating: 0, count: xD.count)
        var xp = xD
        for i in 0 ..< xD.count {
            xp[i] = xD[i] + h; let a = loss(xp, pD)
            xp[i] = xD[i] - h; let b = loss(xp, pD)
            xp[i] = xD[i]
            numeric[i] = (a - b) / (2 * h)
        }
        compare(values(dx), numeric, "input gradient")
    }
    for slot in store.parameters {
        var numeric = [Double](repeating: 0, count: slot.count)
        var pp = pD
        for i in 0 ..< slot.count {
            let j = slot.offset + i
            pp[j] = pD[j] + h; let a = loss(xD, pp)
            pp[j] = pD[j] - h; let b = loss(xD, pp)
            pp[j] = pD[j]
            numeric[i] = (a - b) / (2 * h)
        }
        let analytic = Array(store.gradients.array[slot.offset ..< slot.offset + slot.count])
        compare(analytic, numeric, slot.name)
    }
}
