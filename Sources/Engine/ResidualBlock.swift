// The residual BasicBlock: conv3×3(s) → BN → ReLU → conv3×3 → BN → (+ shortcut) → ReLU.
// Shortcuts: identity; option B, a 1×1 conv (stride s, no bias) + BN (ResNet18); option A,
// x[:, :, ::2, ::2] zero-padded with `pad` channels on each side (ResNet20/56).
// `keep` (one float per output channel, 1 or 0) gates the shortcut per channel, so a pruned
// conv2 channel drops its residual too (spec §5.5); all ones means the plain block.

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

    private let sum = FloatBuffer(count: 0)
    private let scOut = FloatBuffer(count: 0)
    private let gradSum = FloatBuffer(count: 0)
    private let gradInput = FloatBuffer(count: 0)
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
    }

    public enum ShortcutOption { case projection, padded }

    public func outputShape(_ s: FeatureShape) -> FeatureShape { conv2.outputShape(conv1.outputShape(s)) }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        input = x
        let o = bn2.forward(conv2.forward(relu1.forward(bn1.forward(conv1.forward(x, ctx), ctx), ctx), ctx), ctx)
        let s = shortcutForward(x, like: o, ctx)
        sum.reserve(o.count)
        let m = o.perChannel, y = sum.ptr, kp = keep.ptr
        ctx.workers.forEachRange(o.channels) { r in
            for c in r {
                let yc = y + c * m, oc = o.data + c * m, sc = s + c * m, k = kp[c]
                for i in 0 ..< m { yc[i] = max(oc[i] + k * sc[i], 0) }
            }
        }
        let a = Activation(data: y, channels: o.channels, batch: o.batch, height: o.height, width: o.width)
        out = a
        return a
    }

    private func shortcutForward(_ x: Activation, like o: Activation, _ ctx: ExecutionContext) -> UnsafeMutablePointer<Float> {
        switch shortcut {
        case .identity:
            return x.data
        case .projection(let conv, let bn):
            return bn.forward(conv.forward(x, ctx), ctx).data
        case .paddedSubsample(let pad):
            scOut.reserve(o.count)
            let d = scOut.ptr, m = o.perChannel
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
            return d
        }
    }

    public func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        guard let x = input, let y = out else { return dy }
        gradSum.reserve(y.count)
        let ds = gradSum.ptr, yp = y.data, g = dy.data
        ctx.workers.forEachRange(y.count, minimumPerThread: 1 << 14) { r in
            for i in r { let d = g[i]; ds[i] = yp[i] > 0 ? d : 0 }
        }
        let dSum = Activation(data: ds, channels: y.channels, batch: y.batch, height: y.height, width: y.width)
        let dMain = conv1.backward(bn1.backward(relu1.backward(conv2.backward(bn2.backward(dSum, ctx), ctx), ctx), ctx), ctx)
        // The shortcut sees keep ⊙ dSum.
        let m = y.perChannel, kp = keep.ptr
        let gated: UnsafeMutablePointer<Float>
        var allKept = true
        for c in 0 ..< y.channels where kp[c] != 1 { allKept = false }
        if allKept {
            gated = ds
        } else {
            scOut.reserve(y.count)
            gated = scOut.ptr
            for c in 0 ..< y.channels {
                let k = kp[c]
                for i in 0 ..< m { gated[c * m + i] = k * ds[c * m + i] }
            }
        }
        var projected: UnsafeMutablePointer<Float>?
        if case .projection(let conv, let bn) = shortcut {
            let gs = Activation(data: gated, channels: y.channels, batch: y.batch, height: y.height, width: y.width)
            projected = conv.backward(bn.backward(gs, ctx), ctx).data
        }
        guard computesInputGradient else { return dMain }
        gradInput.reserve(x.count)
        let dx = gradInput.ptr
        switch shortcut {
        case .identity:
            let a = dMain.data
            ctx.workers.forEachRange(x.count, minimumPerThread: 1 << 14) { r in
                for i in r { dx[i] = a[i] + gated[i] }
            }
        case .projection:
            guard let dsc = projected else { return dMain }
            let a = dMain.data
            ctx.workers.forEachRange(x.count, minimumPerThread: 1 << 14) { r in
                for i in r { dx[i] = a[i] + dsc[i] }
            }
        case .paddedSubsample(let pad):
            dx.update(from: dMain.data, count: x.count)
            for ci in 0 ..< x.channels {
                for n in 0 ..< x.batch {
                    let dst = dx + ci * x.perChannel + n * x.plane
                    let src = gated + (ci + pad) * m + n * y.plane
                    for oy in 0 ..< y.height {
                        for ox in 0 ..< y.width { dst[(2 * oy) * x.width + 2 * ox] += src[oy * y.width + ox] }
                    }
                }
            }
        }
        return Activation(data: dx, channels: x.channels, batch: x.batch, height: x.height, width: x.width)
    }
}
