// Elementwise layers: ReLU (max(x, 0) forward; the gradient passes where the output is positive).
// Backward reads only the output, so ReLU can overwrite its input: in training when `inPlace`
// (the network sets it where the layer before keeps nothing that backward reads in its output),
// in evaluation whenever it holds its input alone; backward overwrites dy when it holds it alone.
// A ReLU right after a BatchNorm2D is `fused`: the BatchNorm's forward applies it (the same
// values), so forward here only records that output for backward.

public final class ReLU: Layer {
    public let name: String
    public var computesInputGradient = true
    /// Training forwards overwrite their input (which backward then reads as the output).
    public internal(set) var inPlace = false
    /// The BatchNorm2D before it applies the forward (BatchNorm2D.fusedReLU).
    public internal(set) var fused = false
    /// Whether training keeps no output of its own (in place or fused).
    public var keepsNoOutput: Bool { inPlace || fused }
    /// Output memory of recording forwards that are not in place.
    private let output = FloatBuffer(count: 0)
    private var out: Activation?

    public init(_ name: String) { self.name = name }
    public func outputShape(_ s: FeatureShape) -> FeatureShape { s }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        if fused {
            out = ctx.recordsForBackward ? x : nil
            return x
        }
        let recording = ctx.recordsForBackward
        let y: UnsafeMutablePointer<Float>
        if recording {
            if inPlace {
                y = x.data
            } else {
                output.reserve(x.count)
                y = output.ptr
            }
        } else {
            y = ctx.arena.isExclusive(x.data) ? x.data : ctx.arena.acquire(x.count)
        }
        let src = x.data
        ctx.workers.forEachRange(x.count, minimumPerThread: 1 << 14) { r in
            for i in r { y[i] = max(src[i], 0) }
        }
        let a = Activation(data: y, channels: x.channels, batch: x.batch, height: x.height, width: x.width, layout: x.layout)
        out = recording ? a : nil
        if !recording && y != x.data { ctx.arena.release(x.data) }
        return a
    }

    public func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        guard let y = out else { return dy }
        let dx = ctx.arena.isExclusive(dy.data) ? dy.data : ctx.arena.acquire(y.count)
        let yp = y.data, g = dy.data
        ctx.workers.forEachRange(y.count, minimumPerThread: 1 << 14) { r in
            for i in r { let d = g[i]; dx[i] = yp[i] > 0 ? d : 0 }
        }
        if dx != dy.data { ctx.arena.release(dy.data) }
        return Activation(data: dx, channels: y.channels, batch: y.batch, height: y.height, width: y.width, layout: y.layout)
    }
}
