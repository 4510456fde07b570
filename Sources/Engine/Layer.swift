// The layer contract and the batch representation shared by every layer.
// Feature maps are stored channel-major, [C, N, H, W]: a channel's values for the whole batch
// are contiguous (BatchNorm and pruning masks work per channel), and a convolution over a tile
// of images writes its GEMM result straight into place with a leading dimension of N·H·W.
// Dense activations are row-major [N, F].

public enum Layout: Sendable, Equatable {
    /// [C, N, H, W]
    case channelMajor
    /// [N, F] with F = channels (height = width = 1)
    case rowMajor
}

/// A view of one batch of activations (or of their gradient). The memory belongs to the
/// layer that produced it and stays valid until that layer's next forward/backward call.
public struct Activation {
    public var data: UnsafeMutablePointer<Float>
    public let channels: Int
    public let batch: Int
    public let height: Int
    public let width: Int
    public let layout: Layout

    public init(data: UnsafeMutablePointer<Float>, channels: Int, batch: Int, height: Int, width: Int,
                layout: Layout = .channelMajor) {
        self.data = data
        self.channels = channels
        self.batch = batch
        self.height = height
        self.width = width
        self.layout = layout
    }

    @inline(__always) public var plane: Int { height * width }
    @inline(__always) public var perChannel: Int { batch * height * width }
    @inline(__always) public var count: Int { channels * batch * height * width }
    public var shape: FeatureShape { FeatureShape(channels: channels, height: height, width: width, layout: layout) }
}

/// Per-sample shape of an activation, used to size buffers and test model shapes.
public struct FeatureShape: Sendable, Equatable, CustomStringConvertible {
    public let channels: Int
    public let height: Int
    public let width: Int
    public let layout: Layout

    public init(channels: Int, height: Int, width: Int, layout: Layout = .channelMajor) {
        self.channels = channels
        self.height = height
        self.width = width
        self.layout = layout
    }

    public var description: String { layout == .rowMajor ? "[\(channels)]" : "[\(channels), \(height), \(width)]" }
}

/// Everything a forward/backward call needs besides its input: the workers, the mode, and
/// per-thread scratch memory that is reused across layers and steps.
public final class ExecutionContext: @unchecked Sendable {
    public let workers: Workers
    public var training: Bool = true
    private var scratchBuffers: [[FloatBuffer]]

    public init(threads: Int) {
        workers = Workers(threads: threads)
        scratchBuffers = (0 ..< max(1, threads)).map { _ in (0 ..< 6).map { _ in FloatBuffer(count: 0) } }
    }

    public var threads: Int { workers.threads }

    /// Scratch memory `slot` of thread `t`, at least `count` floats; contents are unspecified.
    /// Slots: 0 im2col columns, 1 partial weight gradient, 2 spare, 3 Winograd V / dV,
    /// 4 Winograd M / dM, 5 Winograd transform scratch (rows, padded planes).
    @inline(__always)
    public func scratch(_ t: Int, _ slot: Int, _ count: Int) -> UnsafeMutablePointer<Float> {
        let b = scratchBuffers[t][slot]
        if b.count < count { b.reserve(count) }
        return b.ptr
    }
}

/// One differentiable stage of a network. Backward mirrors forward in reverse: it reads the
/// input that forward saw, *accumulates* parameter gradients into the store, and returns the
/// gradient with respect to its input (unless `computesInputGradient` is false).
public protocol Layer: AnyObject {
    var name: String { get }
    var computesInputGradient: Bool { get set }
    func outputShape(_ input: FeatureShape) -> FeatureShape
    func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation
    func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation
}
