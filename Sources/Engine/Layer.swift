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

/// A view of one batch of activations (or of their gradient). The memory belongs to the layer
/// that produced it (valid until that layer's next forward/backward call) or is a slot of the
/// context's arena (valid until released, at the latest until the network's next forward).
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

/// Per-thread and per-layer scratch memory of an ExecutionContext, reused across layers (one
/// layer runs at a time) and steps, so each is as large as the largest layer needs.
public enum ScratchSlot: Int, CaseIterable {
    /// im2col columns (per thread).
    case columns
    /// Partial weight gradients (per thread; Winograd's dU, summed into thread 0's).
    case weightGradient
    /// Winograd V / dV, M / dM (per thread; batch-wide in thread 0's on small planes, where a
    /// recording forward keeps V in its layer instead) and the transforms' scratch (rows,
    /// padded planes; per thread).
    case winogradV, winogradM, winogradTransform
    /// Winograd-transformed weights U of an evaluation forward (thread 0; a recording forward
    /// keeps its layer's U for backward).
    case transformedWeights
    /// A compacted layer's gathered input channels and output-gradient channels (thread 0);
    /// backward gathers the input again rather than keeping every layer's copy.
    case gatheredInput, gatheredGradient
}

/// Everything a forward/backward call needs besides its input: the workers, the mode, the
/// arena for activations read once, and scratch memory reused across layers and steps.
public final class ExecutionContext: @unchecked Sendable {
    public let workers: Workers
    /// Training mode: BatchNorm uses and updates batch statistics, residual blocks record
    /// activation scores. Evaluation forwards (false) keep nothing for backward unless
    /// `gradientsInEvaluation` is set.
    public var training: Bool = true
    /// Keep what backward reads in evaluation mode too, to differentiate an evaluation-mode
    /// forward (BatchNorm with running statistics); off, such a forward keeps nothing and its
    /// activations live in `arena`, reused layer by layer.
    public var gradientsInEvaluation = false
    /// Activations of evaluation forwards, gradients, transient results (ActivationArena.swift).
    public let arena = ActivationArena()
    private var scratchBuffers: [[FloatBuffer]]

    public init(threads: Int) {
        workers = Workers(threads: threads)
        scratchBuffers = (0 ..< max(1, threads)).map { _ in ScratchSlot.allCases.map { _ in FloatBuffer(count: 0) } }
    }

    public var threads: Int { workers.threads }

    /// Whether forward calls keep what backward reads (their input, masks); otherwise they
    /// take their outputs from the arena and release their inputs to it.
    @inline(__always) public var recordsForBackward: Bool { training || gradientsInEvaluation }

    /// Where a forward call writes its result of `count` floats: the layer's own buffer `own`
    /// when the pass records for backward (backward reads it later), else an arena slot.
    @inline(__always)
    public func forwardOutput(_ own: FloatBuffer, _ count: Int) -> UnsafeMutablePointer<Float> {
        if recordsForBackward {
            own.reserve(count)
            return own.ptr
        }
        return arena.acquire(count)
    }

    /// Scratch memory `slot` of thread `t`, at least `count` floats; contents are unspecified.
    @inline(__always)
    public func scratch(_ t: Int, _ slot: ScratchSlot, _ count: Int) -> UnsafeMutablePointer<Float> {
        let b = scratchBuffers[t][slot.rawValue]
        if b.count < count { b.reserve(count) }
        return b.ptr
    }

    /// Floats allocated by every scratch slot of every thread.
    public var scratchCapacity: Int { scratchBuffers.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } } }
}

/// One differentiable stage of a network. Backward mirrors forward in reverse: it reads the
/// input that forward saw, *accumulates* parameter gradients into the store, and returns the
/// gradient with respect to its input (unless `computesInputGradient` is false: then its
/// contents are unspecified).
/// Memory: a forward that records for backward (`ctx.recordsForBackward`) keeps what backward
/// reads and writes its output into memory of its own, unless it is transient by construction
/// (a residual block's inner results); an evaluation forward keeps nothing, takes its output
/// from `ctx.arena` and releases its input there. Backward takes its result from the arena
/// and releases `dy`. Arena memory is never kept from a forward to a backward.
public protocol Layer: AnyObject {
    var name: String { get }
    var computesInputGradient: Bool { get set }
    func outputShape(_ input: FeatureShape) -> FeatureShape
    func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation
    func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation
}
