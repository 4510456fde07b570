// 2-D convolution by im2col + OpenBLAS sgemm over tiles of images.
// Shapes: x [Cin, N, H, W] → y [Cout, N, Ho, Wo], Ho = (H + 2p − k)/s + 1; weight
// [Cout, Cin, k, k] (PyTorch order, also the GEMM's A matrix [Cout, Cin·k·k]); bias [Cout].
// Each worker owns a fixed contiguous range of images; within it, tiles of images are unfolded
// (KernelsConv.swift) so a GEMM has about `targetColumns` columns (4× that for planes of 8×8 and
// below). Tiles depend only on shapes, and weight-gradient partials are summed in worker order,
// so results are bit-identical for a given thread count.
// Same-padded 3×3 convolutions (stride 1, padding 1) with at least `winogradMinimumChannels`
// input channels use Winograd instead, with the same partition and reduction rules (`automatic`):
// F(4×4, 3×3) on planes of at least `winograd4MinimumSize` (KernelsWinograd4.swift: 36 GEMMs
// over transformed tiles, 4× fewer multiplies, about 6× the rounding error of F(2×2)), F(2×2, 3×3)
// on smaller ones (KernelsWinograd.swift: 16 GEMMs, 2.25× fewer multiplies). Conv2DWinograd.swift
// runs both.
// Memory: a recording forward keeps its input and Winograd's transformed weights (backward
// reads both) and writes its own output buffer; an evaluation forward writes an arena slot and
// transforms the weights into the context's scratch.

/// How a Conv2D computes: `automatic` picks the Winograd variant where Winograd applies and
/// pays off.
public enum ConvAlgorithm: String, Sendable, CaseIterable {
    case automatic, im2col
    /// Winograd F(2×2, 3×3) wherever it applies (3×3, stride 1, padding 1).
    case winograd
    /// Winograd F(4×4, 3×3) wherever it applies.
    case winograd4
    /// As `automatic` but F(2×2) on every plane: the default of builds before F(4×4) (before
    /// commit 420e9ed), to reproduce runs made with those.
    case automatic2
}

public final class Conv2D: Layer {
    public let name: String
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    public let weight: TensorSlot
    public let bias: TensorSlot?
    public var computesInputGradient = true
    /// The algorithm; `.winograd` or `.winograd4` on a shape it does not apply to falls back
    /// to im2col.
    public var algorithm: ConvAlgorithm = .automatic
    /// Columns per GEMM tile (images × output plane); tuned by the benchmark.
    public static let targetColumns = 1024
    /// Winograd tiles per GEMM chunk (images × tiles per image); tuned by the benchmark.
    public static let winogradTargetTiles = 512
    /// The same for F(4×4) tiles (36 transformed values per tile and channel, not 16).
    public static let winograd4TargetTiles = 256
    /// Below this many input channels the Winograd GEMMs are too thin to pay off.
    public static let winogradMinimumChannels = 16
    /// `automatic` runs F(4×4) on planes at least this high and wide: on smaller ones most of
    /// a 6×6 tile is padding (a 2×2 plane costs 36 multiplies per 4 outputs, F(2×2) 16).
    public static let winograd4MinimumSize = 4
    /// Set by pruning when channels leave this convolution's GEMMs (Compaction.swift); forward
    /// and backward then run over the selected channels only.
    public internal(set) var compact: CompactConv2D?

    unowned let store: ParameterStore
    /// Output memory of recording forwards (CompactConv2D expands its inner convolution's
    /// results to full shape in place in it).
    let output = FloatBuffer(count: 0)
    /// Winograd-transformed weights U [Cout][points][ldu] of the last recording forward.
    let transformedWeight = FloatBuffer(count: 0)
    /// Winograd-transformed input V [points][Cin][tiles] of the last recording forward when it
    /// was batch-wide (small planes: Conv2DWinograd.swift), for backward; `keptInputBatch` is
    /// that forward's batch size, nil when V was not kept.
    let transformedInput = FloatBuffer(count: 0)
    var keptInputBatch: Int?
    private var input: Activation?

    public init(_ name: String, store: ParameterStore, inChannels: Int, outChannels: Int, kernel: Int,
                stride: Int = 1, padding: Int = 0, bias: Bool, weightInit: Initialiser, biasInit: Initialiser = .zeros) {
        self.name = name
        self.store = store
        self.inChannels = inChannels
        algorithmChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        weight = store.parameter(name + ".weight", shape: [outChannels, inChannels, kernel, kernel], init: weightInit)
        self.bias = bias ? store.parameter(name + ".bias", shape: [outChannels], init: biasInit) : nil
    }

    public var fanIn: Int { inChannels * kernel * kernel }
    public var fanOut: Int { outChannels * kernel * kernel }

    public func outputShape(_ s: FeatureShape) -> FeatureShape {
        FeatureShape(channels: outChannels, height: (s.height + 2 * padding - kernel) / stride + 1,
                     width: (s.width + 2 * padding - kernel) / stride + 1)
    }

    private var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }

    /// The input channels `automatic` and `automatic2` decide by: the layer's own, or for a
    /// compacted convolution's inner convolution its full convolution's, so that pruning
    /// inputs never changes the algorithm (below Conv2D.winogradMinimumChannels inputs a
    /// pruned 16-channel layer would switch to im2col, slower than the dense layer it replaces).
    var algorithmChannels: Int

    /// Whether forward/backward use Winograd (F(2×2, 3×3) or F(4×4, 3×3)).
    public var usesWinograd: Bool {
        let applies = kernel == 3 && stride == 1 && padding == 1
        switch algorithm {
        case .im2col: return false
        case .winograd, .winograd4: return applies
        case .automatic, .automatic2: return applies && algorithmChannels >= Conv2D.winogradMinimumChannels
        }
    }

    /// The Winograd variant for an H×W input, nil for im2col.
    func winogradPlan(height: Int, width: Int) -> WinogradPlan? {
        guard usesWinograd else { return nil }
        let large = min(height, width) >= Conv2D.winograd4MinimumSize
        switch algorithm {
        case .winograd4: return .f4x4(Winograd4Tiling(height: height, width: width))
        case .automatic where large: return .f4x4(Winograd4Tiling(height: height, width: width))
        default: return .f2x2(WinogradTiling(height: height, width: width))
        }
    }

    /// Images per GEMM tile: about `columns(plane:)` columns, at least one image.
    private func tileSize(batch: Int, plane: Int, threads: Int) -> Int {
        let perThread = (batch + threads - 1) / max(threads, 1)
        return max(1, min(perThread, Conv2D.columns(plane: plane) / max(plane, 1)))
    }

    /// Target GEMM columns for an output plane of `plane` pixels. Small planes (8×8 and below)
    /// take wider tiles: more images per im2col and longer GEMMs.
    static func columns(plane: Int) -> Int {
        plane <= 64 ? 4 * targetColumns : targetColumns
    }

    private func geometry(_ x: Activation) -> ConvGeometry {
        ConvGeometry(channels: inChannels, height: x.height, width: x.width, kernel: kernel, stride: stride, padding: padding)
    }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        if let compact { return compact.forward(x, ctx) }
        let o = outputShape(x.shape), count = outChannels * x.batch * o.height * o.width
        let recording = ctx.recordsForBackward
        let y = ctx.forwardOutput(output, count)
        input = recording ? x : nil
        compute(x, into: y, ctx)
        if !recording { ctx.arena.release(x.data) }
        return Activation(data: y, channels: outChannels, batch: x.batch, height: o.height, width: o.width)
    }

    public func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        if let compact { return compact.backward(dy, ctx) }
        guard let x = input else { return dy }
        let dx = ctx.arena.acquire(x.count)
        computeGradients(dy, input: x, dx: computesInputGradient ? dx : nil, ctx)
        ctx.arena.release(dy.data)
        return Activation(data: dx, channels: inChannels, batch: x.batch, height: x.height, width: x.width)
    }

    /// y (outChannels · N · Ho · Wo floats) = the convolution of x; keeps nothing.
    func compute(_ x: Activation, into y: UnsafeMutablePointer<Float>, _ ctx: ExecutionContext) {
        if let plan = winogradPlan(height: x.height, width: x.width) {
            winogradForward(x, plan, y, ctx)
        } else {
            im2colForward(x, y, ctx)
        }
    }

    /// Accumulates the parameter gradients for output gradient dy at input x and, when `dx` is
    /// given, overwrites it with the input gradient.
    func computeGradients(_ dy: Activation, input x: Activation, dx: UnsafeMutablePointer<Float>?, _ ctx: ExecutionContext) {
        if let plan = winogradPlan(height: x.height, width: x.width) {
            winogradBackward(x, dy, plan, dx, ctx)
        } else {
            im2colBackward(x, dy, dx, ctx)
        }
    }
}

extension Conv2D {
    private func im2colForward(_ x: Activation, _ y: UnsafeMutablePointer<Float>, _ ctx: ExecutionContext) {
        let g = geometry(x)
        let n = x.batch, plane = g.outHeight * g.outWidth, kk = fanIn, cout = outChannels
        let w = store.value(weight)
        let bv = bias.map { store.value($0) }
        let threads = min(ctx.threads, n)
        let tile = tileSize(batch: n, plane: plane, threads: threads)
        let pointwise = isPointwise, chanStride = x.perChannel, ld = n * plane
        ctx.workers.run { t in
            guard t < threads else { return }
            let range = partition(n, parts: threads, index: t)
            let col = pointwise ? x.data : ctx.scratch(t, .columns, kk * tile * plane)
            var n0 = range.lowerBound
            while n0 < range.upperBound {
                let nt = min(tile, range.upperBound - n0), cols = nt * plane
                let b: UnsafeMutablePointer<Float>, ldb: Int
                if pointwise {
                    b = x.data + n0 * plane; ldb = ld
                } else {
                    ConvKernels.im2col(x.data, chanStride: chanStride, n0: n0, count: nt, g, col: col)
                    b = col; ldb = cols
                }
                let c = y + n0 * plane
                gemm(m: cout, n: cols, k: kk, a: w, lda: kk, b: b, ldb: ldb, c: c, ldc: ld)
                if let bv {
                    for co in 0 ..< cout { addScalar(c + co &* ld, cols, bv[co]) }
                }
                n0 += nt
            }
        }
    }

    private func im2colBackward(_ x: Activation, _ dy: Activation, _ dx: UnsafeMutablePointer<Float>?, _ ctx: ExecutionContext) {
        let g = geometry(x)
        let n = x.batch, plane = dy.plane, kk = fanIn, cout = outChannels
        let threads = min(ctx.threads, n)
        let tile = tileSize(batch: n, plane: plane, threads: threads)
        let w = store.value(weight), gw = store.gradient(weight)
        let pointwise = isPointwise, chanStride = x.perChannel, ld = n * plane
        ctx.workers.run { t in
            guard t < threads else { return }
            let range = partition(n, parts: threads, index: t)
            let dW = t == 0 ? gw : ctx.scratch(t, .weightGradient, cout * kk)
            if t != 0 { dW.update(repeating: 0, count: cout * kk) }
            let col = pointwise ? x.data : ctx.scratch(t, .columns, kk * tile * plane)
            var n0 = range.lowerBound
            while n0 < range.upperBound {
                let nt = min(tile, range.upperBound - n0), cols = nt * plane
                let dyTile = dy.data + n0 * plane
                let b: UnsafeMutablePointer<Float>, ldb: Int
                if pointwise {
                    b = x.data + n0 * plane; ldb = ld
                } else {
                    ConvKernels.im2col(x.data, chanStride: chanStride, n0: n0, count: nt, g, col: col)
                    b = col; ldb = cols
                }
                // dW[Cout, K] += dY[Cout, cols] · colᵀ[cols, K]
                gemm(transB: true, m: cout, n: kk, k: cols, a: dyTile, lda: ld, b: b, ldb: ldb, beta: 1, c: dW, ldc: kk)
                if let dx {
                    if pointwise {
                        gemm(transA: true, m: kk, n: cols, k: cout, a: w, lda: kk, b: dyTile, ldb: ld,
                             c: dx + n0 * plane, ldc: ld)
                    } else {
                        // dcol[K, cols] = Wᵀ[K, Cout] · dY[Cout, cols], then fold back into dX.
                        gemm(transA: true, m: kk, n: cols, k: cout, a: w, lda: kk, b: dyTile, ldb: ld, c: col, ldc: cols)
                        ConvKernels.col2im(col, n0: n0, count: nt, g, dx: dx, chanStride: chanStride)
                    }
                }
                n0 += nt
            }
        }
        if threads > 1 {
            // Partials are added in thread order for every element: deterministic for a thread count.
            let partials = (1 ..< threads).map { ctx.scratch($0, .weightGradient, cout * kk) }
            ctx.workers.forEachRange(cout * kk, minimumPerThread: 1 << 14) { r in
                for p in partials { for i in r { gw[i] += p[i] } }
            }
        }
        accumulateBiasGradient(dy, ctx)
    }

    /// gb[co] += Σ dY[co, ·] (channel sums with a fixed association order).
    func accumulateBiasGradient(_ dy: Activation, _ ctx: ExecutionContext) {
        guard let bias else { return }
        let gb = store.gradient(bias), m = dy.perChannel
        ctx.workers.forEachRange(outChannels) { r in
            for co in r { gb[co] += Float(channelSum(dy.data + co * m, m)) }
        }
    }
}

/// p[i] += v for i in 0..<n.
@inline(__always)
func addScalar(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ v: Float) {
    for i in 0 ..< n { p[i] += v }
}

/// Sum of n floats with a fixed association order (16 lanes, then lanes in order), in Double
/// across blocks to keep long BatchNorm reductions accurate.
@inline(__always)
public func channelSum(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
    var total = 0.0
    var i = 0
    while i < n {
        let end = min(n, i + 4096)
        var acc = SIMD16<Float>(repeating: 0)
        while i + 16 <= end {
            acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
            i += 16
        }
        var block = Double(acc.sum())
        while i < end { block += Double(p[i]); i += 1 }
        total += block
    }
    return total
}
