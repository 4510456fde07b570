// The residual BasicBlock: conv3×3(s) → BN → ReLU → conv3×3 → BN → (+ shortcut) → ReLU.
// Shortcuts: identity; option B, a 1×1 conv (stride s, no bias) + BN (ResNet18); option A,
// x[:, :, ::2, ::2] zero-padded with `pad` channels on each side (ResNet20/56).
// `keep` (one float per output channel, 1 or 0) gates the shortcut per channel, so a pruned
// conv2 channel drops its residual too (docs/EXPERIMENTS.md §5.5); all ones means the plain block.
// Memory: training keeps conv1's and conv2's outputs and inputs (BN1's output, which ReLU1
// overwrites) and the block's output; BN2's output and the shortcut's are transient (arena),
// read once by the sum. In evaluation every inner result lives in the arena: BN and ReLU work
// in place and the sum overwrites BN2's output, so a block needs its input and two slots.

public enum Shortcut {
    case identity
    case projection(Conv2D, BatchNorm2D)
    case paddedSubsample(pad: Int)
}

public final class BasicBlock: Layer {
    public let name: String
    public let conv1: Conv2D
    public let bn1: BatchNorm2D
    public let relu1: ReLU
    public let conv2: Conv2D
    public let bn2: BatchNorm2D
    public let shortcut: Shortcut
    public let keep: FloatBuffer
    public var computesInputGradient = true {
        didSet { conv1.computesInputGradient = computesInputGradient; if case .projection(let c, _) = shortcut { c.computesInputGradient = computesInputGradient } }
    }

    /// The "activations" pruning score (docs/EXPERIMENTS.md §5.3), when enabled: per-channel EMAs of the L1
    /// norm (sum over batch and space) of BN1(conv1(x)) and of the post-shortcut, pre-ReLU sum,
    /// updated on every 10th training forward of the block (A ← 0.1·Σ|·| + 0.9·A).
    public private(set) var activationScores: (conv1: [Double], conv2: [Double])?
    /// Training forwards seen since activation scoring was enabled.
    public var trainingForwards = 0

    public func enableActivationScores() {
        if activationScores == nil {
            activationScores = ([Double](repeating: 0, count: conv1.outChannels), [Double](repeating: 0, count: conv2.outChannels))
        }
    }

    /// Restores scoring state (checkpoint resume).
    public func restoreActivationScores(conv1 a: [Double], conv2 b: [Double], trainingForwards n: Int) {
        activationScores = (a, b)
        trainingForwards = n
    }

    /// Output memory of recording forwards.
    private let sum = FloatBuffer(count: 0)
    private var input: Activation?
    private var out: Activation?

    public init(_ name: String, store: ParameterStore, inPlanes: Int, planes: Int, stride: Int,
                option: ShortcutOption, convInit: (Int, Int) -> Initialiser) {
        self.name = name
        conv1 = Conv2D(name + ".conv1", store: store, inChannels: inPlanes, outChannels: planes, kernel: 3,
                       stride: stride, padding: 1, bias: false, weightInit: convInit(inPlanes * 9, planes * 9))
        bn1 = BatchNorm2D(name + ".bn1", store: store, channels: planes)
        relu1 = ReLU(name + ".relu1")
        conv2 = Conv2D(name + ".conv2", store: store, inChannels: planes, outChannels: planes, kernel: 3,
                       stride: 1, padding: 1, bias: false, weightInit: convInit(planes * 9, planes * 9))
        bn2 = BatchNorm2D(name + ".bn2", store: store, channels: planes)
        if stride == 1 && inPlanes == planes {
            shortcut = .identity
        } else if option == .projection {
            let c = Conv2D(name + ".shortcut.0", store: store, inChannels: inPlanes, outChannels: planes, kernel: 1,
                           stride: stride, padding: 0, bias: false, weightInit: convInit(inPlanes, planes))
            shortcut = .projection(c, BatchNorm2D(name + ".shortcut.1", store: store, channels: planes))
        } else {
            shortcut = .paddedSubsample(pad: planes / 4)
        }
        keep = FloatBuffer(count: planes)
        keep.ptr.update(repeating: 1, count: planes)
        relu1.inPlace = true
        bn2.transientOutput = true
        if case .projection(_, let bn) = shortcut { bn.transientOutput = true }
    }

    public enum ShortcutOption { case projection, padded }

    public func outputShape(_ s: FeatureShape) -> FeatureShape { conv2.outputShape(conv1.outputShape(s)) }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        let recording = ctx.recordsForBackward
        input = recording ? x : nil
        var scoring = false
        if activationScores != nil && ctx.training {
            trainingForwards += 1
            scoring = trainingForwards % 10 == 0
        }
        // conv1 and the shortcut each consume x.
        ctx.arena.retain(x.data)
        let b1 = bn1.forward(conv1.forward(x, ctx), ctx)
        var sums1 = [Double](repeating: 0, count: scoring ? b1.channels : 0)
        var sums2 = [Double](repeating: 0, count: scoring ? conv2.outChannels : 0)
        if scoring {
            sums1.withUnsafeMutableBufferPointer { out in
                let o = out.baseAddress!, m = b1.perChannel
                ctx.workers.forEachRange(b1.channels) { r in for c in r { o[c] = absoluteSum(b1.data + c * m, m) } }
            }
        }
        let o = bn2.forward(conv2.forward(relu1.forward(b1, ctx), ctx), ctx)
        let s = shortcutForward(x, like: o, ctx)
        let y: UnsafeMutablePointer<Float>
        if recording {
            sum.reserve(o.count)
            y = sum.ptr
        } else {
            // BN2's output, held alone: the sum overwrites it.
            y = ctx.arena.isExclusive(o.data) ? o.data : ctx.arena.acquire(o.count)
        }
        let m = o.perChannel, kp = keep.ptr
        sums2.withUnsafeMutableBufferPointer { out in
            // An empty array's buffer may still have a base address: gate on `scoring`.
            let acc = scoring ? out.baseAddress : nil
            ctx.workers.forEachRange(o.channels) { r in
                for c in r {
                    let yc = y + c * m, oc = o.data + c * m, sc = s + c * m, k = kp[c]
                    if let acc {
                        // Pre-ReLU sum first (for the score), then the ReLU in place.
                        for i in 0 ..< m { yc[i] = oc[i] + k * sc[i] }
                        acc[c] = absoluteSum(yc, m)
                        for i in 0 ..< m { yc[i] = max(yc[i], 0) }
                    } else {
                        for i in 0 ..< m { yc[i] = max(oc[i] + k * sc[i], 0) }
                    }
                }
            }
        }
        // The shortcut's result (x itself for the identity) and BN2's output are done with.
        ctx.arena.release(s)
        if y != o.data { ctx.arena.release(o.data) }
        if scoring, var scores = activationScores {
            for c in 0 ..< scores.conv1.count { scores.conv1[c] = 0.1 * sums1[c] + 0.9 * scores.conv1[c] }
            for c in 0 ..< scores.conv2.count { scores.conv2[c] = 0.1 * sums2[c] + 0.9 * scores.conv2[c] }
            activationScores = scores
        }
        let a = Activation(data: y, channels: o.channels, batch: o.batch, height: o.height, width: o.width)
        out = recording ? a : nil
        return a
    }

    /// The shortcut of x, consuming one hold of x: x itself (identity), or a result the caller
    /// releases (the projection's BatchNorm output, the padded subsample; both arena memory).
    private func shortcutForward(_ x: Activation, like o: Activation, _ ctx: ExecutionContext) -> UnsafeMutablePointer<Float> {
        switch shortcut {
        case .identity:
            return x.data
        case .projection(let conv, let bn):
            return bn.forward(conv.forward(x, ctx), ctx).data
        case .paddedSubsample(let pad):
            let d = ctx.arena.acquire(o.count), m = o.perChannel
            d.update(repeating: 0, count: o.count)
            for ci in 0 ..< x.channels {
                for n in 0 ..< x.batch {
                    let src = x.data + ci * x.perChannel + n * x.plane
                    let dst = d + (ci + pad) * m + n * o.plane
                    for oy in 0 ..< o.height {
                        for ox in 0 ..< o.width { dst[oy * o.width + ox] = src[(2 * oy) * x.width + 2 * ox] }
                    }
                }
            }
            ctx.arena.release(x.data)
            return d
        }
    }

    public func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        guard let x = input, let y = out else { return dy }
        let ds = ctx.arena.isExclusive(dy.data) ? dy.data : ctx.arena.acquire(y.count)
        let yp = y.data, g = dy.data
        ctx.workers.forEachRange(y.count, minimumPerThread: 1 << 14) { r in
            for i in r { let d = g[i]; ds[i] = yp[i] > 0 ? d : 0 }
        }
        if ds != dy.data { ctx.arena.release(dy.data) }
        let dSum = Activation(data: ds, channels: y.channels, batch: y.batch, height: y.height, width: y.width)
        // BN2 and the shortcut each consume dSum.
        ctx.arena.retain(ds)
        let dMain = conv1.backward(bn1.backward(relu1.backward(conv2.backward(bn2.backward(dSum, ctx), ctx), ctx), ctx), ctx)
        // The shortcut sees keep ⊙ dSum.
        let m = y.perChannel, kp = keep.ptr
        let gated: UnsafeMutablePointer<Float>
        var allKept = true
        for c in 0 ..< y.channels where kp[c] != 1 { allKept = false }
        if allKept {
            gated = ds
        } else {
            gated = ctx.arena.isExclusive(ds) ? ds : ctx.arena.acquire(y.count)
            for c in 0 ..< y.channels {
                let k = kp[c]
                for i in 0 ..< m { gated[c * m + i] = k * ds[c * m + i] }
            }
            if gated != ds { ctx.arena.release(ds) }
        }
        // The gradient reaching x through the shortcut, when it is a separate array.
        var projected: UnsafeMutablePointer<Float>?
        if case .projection(let conv, let bn) = shortcut {
            let gs = Activation(data: gated, channels: y.channels, batch: y.batch, height: y.height, width: y.width)
            projected = conv.backward(bn.backward(gs, ctx), ctx).data
        }
        guard computesInputGradient else {
            ctx.arena.release(projected ?? gated)
            return dMain
        }
        // dX = dMain + the shortcut's gradient, written over dMain (held alone: conv1's result).
        let dx = dMain.data
        switch shortcut {
        case .identity:
            ctx.workers.forEachRange(x.count, minimumPerThread: 1 << 14) { r in
                for i in r { dx[i] = dx[i] + gated[i] }
            }
            ctx.arena.release(gated)
        case .projection:
            guard let dsc = projected else { return dMain }
            ctx.workers.forEachRange(x.count, minimumPerThread: 1 << 14) { r in
                for i in r { dx[i] = dx[i] + dsc[i] }
            }
            ctx.arena.release(dsc)
        case .paddedSubsample(let pad):
            for ci in 0 ..< x.channels {
                for n in 0 ..< x.batch {
                    let dst = dx + ci * x.perChannel + n * x.plane
                    let src = gated + (ci + pad) * m + n * y.plane
                    for oy in 0 ..< y.height {
                        for ox in 0 ..< y.width { dst[(2 * oy) * x.width + 2 * ox] += src[oy * y.width + ox] }
                    }
                }
            }
            ctx.arena.release(gated)
        }
        return Activation(data: dx, channels: x.channels, batch: x.batch, height: x.height, width: x.width)
    }
}

/// Σ|x| over n floats in a fixed order (16 lanes, Double across blocks).
@inline(__always)
func absoluteSum(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
    var total = 0.0, i = 0
    while i < n {
        let end = min(n, i + 4096)
        var acc = SIMD16<Float>(repeating: 0)
        while i + 16 <= end {
            let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
            acc += v.replacing(with: -v, where: v .< 0)
            i += 16
        }
        var block = Double(acc.sum())
        while i < end { block += Double(abs(p[i])); i += 1 }
        total += block
    }
    return total
}
