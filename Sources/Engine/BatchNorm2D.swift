// BatchNorm over channels of a [C, N, H, W] batch, PyTorch semantics: training normalises with
// the batch mean and biased variance and updates running = 0.9·running + 0.1·batch, where the
// running variance takes the *unbiased* batch variance; eval normalises with running values.
// eps 1e-5, momentum 0.1. γ (weight) and β (bias) are parameters; running stats are buffers.
// Backward reads the input, never the output, so an evaluation forward normalises in place
// when it holds its input alone, and backward overwrites dy when it holds dy alone.
// With `fusedReLU` (set by Network for a ReLU right after it) the forward pass writes
// max(BN(x), 0): the ReLU's forward, the same values in the same pass (its backward, which
// reads that output, stays in ReLU).

public final class BatchNorm2D: Layer {
    public let name: String
    public let channels: Int
    public let eps: Float = 1e-5
    public let momentum: Float = 0.1
    public let gamma: TensorSlot
    public let beta: TensorSlot
    public let runningMean: TensorSlot
    public let runningVar: TensorSlot
    public var computesInputGradient = true
    /// The output is read once, by the step after, and kept by nobody (a residual block's sum):
    /// recording forwards take it from the arena too rather than keeping their own buffer.
    public internal(set) var transientOutput = false
    /// The forward of the ReLU after this layer is applied here (ReLU.fused).
    public internal(set) var fusedReLU = false

    private unowned let store: ParameterStore
    /// Output memory of recording forwards (unless `transientOutput`).
    private let output = FloatBuffer(count: 0)
    private let savedMean = FloatBuffer(count: 0)
    private let savedInvStd = FloatBuffer(count: 0)
    private var input: Activation?
    private var trainedForward = true

    public init(_ name: String, store: ParameterStore, channels: Int) {
        self.name = name
        self.store = store
        self.channels = channels
        gamma = store.parameter(name + ".weight", shape: [channels], init: .ones)
        beta = store.parameter(name + ".bias", shape: [channels], init: .zeros)
        runningMean = store.buffer(name + ".running_mean", shape: [channels], init: .zeros)
        runningVar = store.buffer(name + ".running_var", shape: [channels], init: .ones)
        savedMean.reserve(channels)
        savedInvStd.reserve(channels)
    }

    public func outputShape(_ s: FeatureShape) -> FeatureShape { s }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        let recording = ctx.recordsForBackward
        input = recording ? x : nil
        trainedForward = ctx.training
        let y: UnsafeMutablePointer<Float>
        if !recording && ctx.arena.isExclusive(x.data) {
            y = x.data
        } else if !recording || transientOutput {
            y = ctx.arena.acquire(x.count)
        } else {
            output.reserve(x.count)
            y = output.ptr
        }
        let m = x.perChannel
        let g = store.value(gamma), b = store.value(beta)
        let rm = store.stateValue(runningMean), rv = store.stateValue(runningVar)
        let sm = savedMean.ptr, si = savedInvStd.ptr
        let training = ctx.training, eps = self.eps, mom = momentum, relu = fusedReLU
        ctx.workers.forEachRange(channels) { r in
            for c in r {
                let xc = x.data + c * m, yc = y + c * m
                let mean: Float, invStd: Float
                if training {
                    let mu = channelSum(xc, m) / Double(m)
                    let meanF = Float(mu)
                    let ss = centredSquares(xc, m, meanF)
                    let varBiased = ss / Double(m)
                    mean = meanF
                    invStd = Float(1.0 / (varBiased + Double(eps)).squareRoot())
                    sm[c] = mean
                    si[c] = invStd
                    let unbiased = m > 1 ? ss / Double(m - 1) : varBiased
                    rm[c] = (1 - mom) * rm[c] + mom * meanF
                    rv[c] = (1 - mom) * rv[c] + mom * Float(unbiased)
                } else {
                    mean = rm[c]
                    invStd = 1 / (rv[c] + eps).squareRoot()
                    sm[c] = mean
                    si[c] = invStd
                }
                let scale = g[c] * invStd, shift = b[c] - mean * scale
                if relu {
                    for i in 0 ..< m { yc[i] = max(xc[i] * scale + shift, 0) }
                } else {
                    for i in 0 ..< m { yc[i] = xc[i] * scale + shift }
                }
            }
        }
        if !recording && y != x.data { ctx.arena.release(x.data) }
        return Activation(data: y, channels: x.channels, batch: x.batch, height: x.height, width: x.width)
    }

    public func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        guard let x = input else { return dy }
        let m = x.perChannel
        let dx = ctx.arena.isExclusive(dy.data) ? dy.data : ctx.arena.acquire(x.count)
        let g = store.value(gamma), gg = store.gradient(gamma), gb = store.gradient(beta)
        let sm = savedMean.ptr, si = savedInvStd.ptr
        let needDX = computesInputGradient, training = trainedForward
        ctx.workers.forEachRange(channels) { r in
            for c in r {
                let xc = x.data + c * m, dyc = dy.data + c * m, dxc = dx + c * m
                let mean = sm[c], invStd = si[c]
                // Both sums over the channel come first: dx may be dy itself.
                let (sumDy, sumDyX) = dotSums(dyc, xc, m)
                // Σ dy·x̂ = invStd · (Σ dy·x − mean · Σ dy)
                let sumDyXhat = Double(invStd) * (sumDyX - Double(mean) * sumDy)
                gb[c] += Float(sumDy)
                gg[c] += Float(sumDyXhat)
                guard needDX else { continue }
                if training {
                    let k = g[c] * invStd
                    let a = Float(sumDy / Double(m)), bcoef = Float(sumDyXhat / Double(m)) * invStd
                    // dx = γ·invStd · (dy − mean(dy) − x̂ · mean(dy·x̂))
                    for i in 0 ..< m {
                        dxc[i] = k * (dyc[i] - a - (xc[i] - mean) * bcoef)
                    }
                } else {
                    let k = g[c] * invStd
                    for i in 0 ..< m { dxc[i] = k * dyc[i] }
                }
            }
        }
        if dx != dy.data { ctx.arena.release(dy.data) }
        return Activation(data: dx, channels: x.channels, batch: x.batch, height: x.height, width: x.width)
    }
}

/// Σ (x − mean)² in a fixed order (Double across blocks).
@inline(__always)
func centredSquares(_ p: UnsafePointer<Float>, _ n: Int, _ mean: Float) -> Double {
    var total = 0.0, i = 0
    let mv = SIMD16<Float>(repeating: mean)
    while i < n {
        let end = min(n, i + 4096)
        var acc = SIMD16<Float>(repeating: 0)
        while i + 16 <= end {
            let d = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self) - mv
            acc += d * d
            i += 16
        }
        var block = Double(acc.sum())
        while i < end { let d = Double(p[i] - mean); block += d * d; i += 1 }
        total += block
    }
    return total
}

/// (Σ a, Σ a·b) in a fixed order (Double across blocks).
@inline(__always)
func dotSums(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> (Double, Double) {
    var s1 = 0.0, s2 = 0.0, i = 0
    while i < n {
        let end = min(n, i + 4096)
        var acc1 = SIMD16<Float>(repeating: 0), acc2 = SIMD16<Float>(repeating: 0)
        while i + 16 <= end {
            let va = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            let vb = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
            acc1 += va
            acc2 += va * vb
            i += 16
        }
        var b1 = Double(acc1.sum()), b2 = Double(acc2.sum())
        while i < end { b1 += Double(a[i]); b2 += Double(a[i] * b[i]); i += 1 }
        s1 += b1
        s2 += b2
    }
    return (s1, s2)
}
