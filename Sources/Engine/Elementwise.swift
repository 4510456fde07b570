// Elementwise layers: ReLU (max(x, 0) forward; the gradient passes where the output is positive).

public final class ReLU: Layer {
    public let name: String
    public var computesInputGradient = true
    private let output = FloatBuffer(count: 0)
    private let gradInput = FloatBuffer(count: 0)
    private var out: Activation?

    public init(_ name: String) { self.name = name }
    public func outputShape(_ s: FeatureShape) -> FeatureShape { s }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        output.reserve(x.count)
        let y = output.ptr, src = x.data
        ctx.workers.forEachRange(x.count, minimumPerThread: 1 << 14) { r in
            for i in r { y[i] = max(src[i], 0) }
        }
        let a = Activation(data: y, channels: x.channels, batch: x.batch, height: x.height, width: x.width, layout: x.layout)
        out = a
        return a
    }

    public func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        guard let y = out else { return dy }
        gradInput.reserve(y.count)
        let dx = gradInput.ptr, yp = y.data, g = dy.data
        ctx.workers.forEachRange(y.count, minimumPerThread: 1 << 14) { r in
            for i in r { let d = g[i]; dx[i] = yp[i] > 0 ? d : 0 }
        }
        return Activation(data: dx, channels: y.channels, batch: y.batch, height: y.height, width: y.width, layout: y.layout)
    }
}
