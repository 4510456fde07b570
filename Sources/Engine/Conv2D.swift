// 2-D convolution by im2col + OpenBLAS sgemm over tiles of images.
// Shapes: x [Cin, N, H, W] → y [Cout, N, Ho, Wo], Ho = (H + 2p − k)/s + 1; weight
// [Cout, Cin, k, k] (PyTorch order, also the GEMM's A matrix [Cout, Cin·k·k]); bias [Cout].
// Each worker owns a fixed contiguous range of images; within it, tiles of images are
// unfolded so a GEMM has about `targetColumns` columns and stays in cache. Weight-gradient
// partials are summed in worker order, so results are bit-identical for a given thread count.

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
    /// Columns per GEMM tile (images × output plane); tuned by the benchmark.
    public static let targetColumns = 1024

    private unowned let store: ParameterStore
    private let output = FloatBuffer(count: 0)
    private let gradInput = FloatBuffer(count: 0)
    private var input: Activation?

    public init(_ name: String, store: ParameterStore, inChannels: Int, outChannels: Int, kernel: Int,
                stride: Int = 1, padding: Int = 0, bias: Bool, weightInit: Initialiser, biasInit: Initialiser = .zeros) {
        self.name = name
        self.store = store
        self.inChannels = inChannels
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

    private func tileSize(batch: Int, plane: Int) -> Int {
        max(1, min(batch, Conv2D.targetColumns / max(plane, 1)))
    }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        input = x
        let o = outputShape(x.shape)
        let n = x.batch, plane = o.height * o.width, kk = fanIn
        output.reserve(outChannels * n * plane)
        let y = output.ptr, w = store.value(weight)
        let tile = tileSize(batch: n, plane: plane)
        let threads = min(ctx.threads, n)
        ctx.workers.run { t in
            guard t < threads else { return }
            let range = partition(n, parts: threads, index: t)
            let col = isPointwise ? x.data : ctx.scratch(t, 0, kk * tile * plane)
            var n0 = range.lowerBound
            while n0 < range.upperBound {
                let nt = min(tile, range.upperBound - n0)
                let b: UnsafeMutablePointer<Float>, ldb: Int
                if isPointwise {
                    b = x.data + n0 * plane; ldb = n * plane
                } else {
                    im2col(x, n0: n0, count: nt, out: o, col: col); b = col; ldb = nt * plane
                }
                gemm(m: outChannels, n: nt * plane, k: kk, a: w, lda: kk, b: b, ldb: ldb,
                     c: y + n0 * plane, ldc: n * plane)
                if let bias {
                    let bv = store.value(bias)
                    for co in 0 ..< outChannels {
                        let row = y + co * n * plane + n0 * plane, v = bv[co]
                        for i in 0 ..< nt * plane { row[i] += v }
                    }
                }
                n0 += nt
            }
        }
        return Activation(data: y, channels: outChannels, batch: n, height: o.height, width: o.width)
    }

    public func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        guard let x = input else { return dy }
        let n = x.batch, plane = dy.plane, kk = fanIn
        let o = FeatureShape(channels: outChannels, height: dy.height, width: dy.width)
        let tile = tileSize(batch: n, plane: plane)
        let threads = min(ctx.threads, n)
        let w = store.value(weight), gw = store.gradient(weight)
        let needDX = computesInputGradient
        if needDX { gradInput.reserve(x.count) }
        let dx = gradInput.ptr
        ctx.workers.run { t in
            guard t < threads else { return }
            let range = partition(n, parts: threads, index: t)
            let dW = t == 0 ? gw : ctx.scratch(t, 1, outChannels * kk)
            if t != 0 { dW.update(repeating: 0, count: outChannels * kk) }
            let col = isPointwise ? x.data : ctx.scratch(t, 0, kk * tile * plane)
            var n0 = range.lowerBound
            while n0 < range.upperBound {
                let nt = min(tile, range.upperBound - n0)
                let dyTile = dy.data + n0 * plane
                let b: UnsafeMutablePointer<Float>, ldb: Int
                if isPointwise {
                    b = x.data + n0 * plane; ldb = n * plane
                } else {
                    im2col(x, n0: n0, count: nt, out: o, col: col); b = col; ldb = nt * plane
                }
                // dW[Cout, K] += dY[Cout, cols] · colᵀ[cols, K]
                gemm(transB: true, m: outChannels, n: kk, k: nt * plane, a: dyTile, lda: n * plane,
                     b: b, ldb: ldb, beta: 1, c: dW, ldc: kk)
                if needDX {
                    if isPointwise {
                        gemm(transA: true, m: kk, n: nt * plane, k: outChannels, a: w, lda: kk,
                             b: dyTile, ldb: n * plane, c: dx + n0 * plane, ldc: n * plane)
                    } else {
                        // dcol[K, cols] = Wᵀ[K, Cout] · dY[Cout, cols], then fold back into dX.
                        gemm(transA: true, m: kk, n: nt * plane, k: outChannels, a: w, lda: kk,
                             b: dyTile, ldb: n * plane, c: col, ldc: nt * plane)
                        col2im(col, n0: n0, count: nt, input: x, out: o, dx: dx)
                    }
                }
                n0 += nt
            }
        }
        for t in 1 ..< max(threads, 1) {
            let p = ctx.scratch(t, 1, outChannels * kk)
            for i in 0 ..< outChannels * kk { gw[i] += p[i] }
        }
        if let bias {
            let gb = store.gradient(bias)
            let m = dy.perChannel
            ctx.workers.forEachRange(outChannels) { r in
                for co in r { gb[co] += Float(channelSum(dy.data + co * m, m)) }
            }
        }
        return Activation(data: dx, channels: inChannels, batch: n, height: x.height, width: x.width)
    }

    /// Unfolds images n0..<n0+count of x into col[(ci·k + ky)·k + kx, j], j = image·Ho·Wo + oy·Wo + ox.
    func im2col(_ x: Activation, n0: Int, count: Int, out o: FeatureShape, col: UnsafeMutablePointer<Float>) {
        let h = x.height, wd = x.width, ho = o.height, wo = o.width, plane = ho * wo
        let k = kernel, s = stride, p = padding, rowLen = count * plane
        let chanStride = x.perChannel, imgStride = h * wd
        for ci in 0 ..< inChannels {
            for ky in 0 ..< k {
                for kx in 0 ..< k {
                    let row = col + ((ci &* k &+ ky) &* k &+ kx) &* rowLen
                    let lo = s == 1 ? max(0, p - kx) : 0
                    let hi = s == 1 ? min(wo, wd + p - kx) : 0
                    for nn in 0 ..< count {
                        let src = x.data + ci &* chanStride + (n0 &+ nn) &* imgStride
                        let dst = row + nn &* plane
                        for oy in 0 ..< ho {
                            let iy = oy &* s &- p &+ ky
                            let d = dst + oy &* wo
                            if iy < 0 || iy >= h { d.update(repeating: 0, count: wo); continue }
                            let srow = src + iy &* wd
                            if s == 1 {
                                if lo > 0 { d.update(repeating: 0, count: lo) }
                                if hi > lo { (d + lo).update(from: srow + (lo &- p &+ kx), count: hi &- lo) }
                                if hi < wo { (d + max(hi, lo)).update(repeating: 0, count: wo &- max(hi, lo)) }
                            } else {
                                for ox in 0 ..< wo {
                                    let ix = ox &* s &- p &+ kx
                                    d[ox] = (ix >= 0 && ix < wd) ? srow[ix] : 0
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of im2col: zeroes dX for images n0..<n0+count and accumulates col into it.
    func col2im(_ col: UnsafeMutablePointer<Float>, n0: Int, count: Int, input x: Activation, out o: FeatureShape,
                dx: UnsafeMutablePointer<Float>) {
        let h = x.height, wd = x.width, ho = o.height, wo = o.width, plane = ho * wo
        let k = kernel, s = stride, p = padding, rowLen = count * plane
        let chanStride = x.perChannel, imgStride = h * wd
        for ci in 0 ..< inChannels {
            (dx + ci * chanStride + n0 * imgStride).update(repeating: 0, count: count * imgStride)
        }
        for ci in 0 ..< inChannels {
            for ky in 0 ..< k {
                for kx in 0 ..< k {
                    let row = col + ((ci &* k &+ ky) &* k &+ kx) &* rowLen
                    let lo = s == 1 ? max(0, p - kx) : 0
                    let hi = s == 1 ? min(wo, wd + p - kx) : 0
                    for nn in 0 ..< count {
                        let dst = dx + ci &* chanStride + (n0 &+ nn) &* imgStride
                        let src = row + nn &* plane
                        for oy in 0 ..< ho {
                            let iy = oy &* s &- p &+ ky
                            if iy < 0 || iy >= h { continue }
                            let srow = src + oy &* wo, drow = dst + iy &* wd
                            if s == 1 {
                                if hi > lo {
                                    let dd = drow + (lo &- p &+ kx), ss = srow + lo
                                    for i in 0 ..< (hi &- lo) { dd[i] += ss[i] }
                                }
                            } else {
                                for ox in 0 ..< wo {
                                    let ix = ox &* s &- p &+ kx
                                    if ix >= 0 && ix < wd { drow[ix] += srow[ox] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
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
