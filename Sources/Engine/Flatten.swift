// Flatten: [C, N, H, W] → [N, C·H·W] in PyTorch's (c, h, w) order, the reshape between the
// convolutional features and the dense classifier.

public final class Flatten: Layer {
    public let name: String
    public var computesInputGradient = true
    /// Output memory of recording forwards.
    private let output = FloatBuffer(count: 0)
    private var input: Activation?

    public init(_ name: String) { self.name = name }
    public func outputShape(_ s: FeatureShape) -> FeatureShape {
        FeatureShape(channels: s.channels * s.height * s.width, height: 1, width: 1, layout: .rowMajor)
    }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        let recording = ctx.recordsForBackward
        input = recording ? x : nil
        let f = x.channels * x.plane, n = x.batch, plane = x.plane
        let y = ctx.forwardOutput(output, x.count)
        for c in 0 ..< x.channels {
            for b in 0 ..< n {
                (y + b * f + c * plane).update(from: x.data + c * x.perChannel + b * plane, count: plane)
            }
        }
        if !recording { ctx.arena.release(x.data) }
        return Activation(data: y, channels: f, batch: n, height: 1, width: 1, layout: .rowMajor)
    }

    public func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        guard let x = input else { return dy }
        let f = x.channels * x.plane, n = x.batch, plane = x.plane
        let dx = ctx.arena.acquire(x.count)
        for c in 0 ..< x.channels {
            for b in 0 ..< n {
                (dx + c * x.perChannel + b * plane).update(from: dy.data + b * f + c * plane, count: plane)
            }
        }
        ctx.arena.release(dy.data)
        return Activation(data: dx, channels: x.channels, batch: n, height: x.height, width: x.width)
    }
}
