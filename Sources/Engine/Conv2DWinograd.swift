// Conv2D's Winograd path, F(2×2, 3×3) (KernelsWinograd.swift) or F(4×4, 3×3)
// (KernelsWinograd4.swift): the weights transformed once per forward call, the batch split
// into fixed per-worker image ranges by `partition` and those into chunks of about
// `targetTiles` tiles, per chunk the input transform, one GEMM per transform point and the
// output transform (backward: the output-gradient transform, the two GEMMs per point and the
// input-gradient transform). Weight-gradient partials are summed in worker order, so results
// are bit-identical for a given thread count.

/// The Winograd variant of one forward call and its tile grid on the input plane.
enum WinogradPlan {
    case f2x2(WinogradTiling)
    case f4x4(Winograd4Tiling)

    /// Transform points per tile (GEMMs per chunk).
    var points: Int {
        switch self {
        case .f2x2: return 16
        case .f4x4: return 36
        }
    }

    var tilesPerImage: Int {
        switch self {
        case .f2x2(let g): return g.tilesPerImage
        case .f4x4(let g): return g.tilesPerImage
        }
    }

    var targetTiles: Int {
        switch self {
        case .f2x2: return Conv2D.winogradTargetTiles
        case .f4x4: return Conv2D.winograd4TargetTiles
        }
    }

    /// Per-thread scratch floats of the transforms for chunks of up to `images` images.
    func scratchCount(images: Int) -> Int {
        switch self {
        case .f2x2(let g): return WinogradKernels.rowScratchCount(g)
        case .f4x4(let g): return Winograd4Kernels.scratchCount(g, images: images)
        }
    }

    func transformWeights(_ w: UnsafePointer<Float>, cout: Int, cin: Int, range: Range<Int>, u: UnsafeMutablePointer<Float>, ldu: Int) {
        switch self {
        case .f2x2: WinogradKernels.transformWeights(w, cout: cout, cin: cin, range: range, u: u, ldu: ldu)
        case .f4x4: Winograd4Kernels.transformWeights(w, cout: cout, cin: cin, range: range, u: u, ldu: ldu)
        }
    }

    func accumulateWeightGradient(_ du: UnsafePointer<Float>, cout: Int, cin: Int, range: Range<Int>, gw: UnsafeMutablePointer<Float>,
                                  ldu: Int) {
        switch self {
        case .f2x2: WinogradKernels.accumulateWeightGradient(du, cout: cout, cin: cin, range: range, gw: gw, ldu: ldu)
        case .f4x4: Winograd4Kernels.accumulateWeightGradient(du, cout: cout, cin: cin, range: range, gw: gw, ldu: ldu)
        }
    }

    func transformInput(_ x: Activation, n0: Int, count: Int, v: UnsafeMutablePointer<Float>, ldv: Int,
                        scratch: UnsafeMutablePointer<Float>) {
        switch self {
        case .f2x2(let g):
            WinogradKernels.transformInput(x.data, channels: x.channels, chanStride: x.perChannel, n0: n0, count: count, g,
                                           v: v, ldv: ldv, rowScratch: scratch)
        case .f4x4(let g):
            Winograd4Kernels.transformInput(x.data, channels: x.channels, chanStride: x.perChannel, n0: n0, count: count, g,
                                            v: v, ldv: ldv, scratch: scratch)
        }
    }

    func transformOutput(_ m: UnsafePointer<Float>, cout: Int, ldm: Int, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                         ld: Int, n0: Int, count: Int, scratch: UnsafeMutablePointer<Float>) {
        switch self {
        case .f2x2(let g):
            WinogradKernels.transformOutput(m, cout: cout, ldm: ldm, g, bias: bias, y: y, ld: ld, n0: n0, count: count)
        case .f4x4(let g):
            Winograd4Kernels.transformOutput(m, cout: cout, ldm: ldm, g, bias: bias, y: y, ld: ld, n0: n0, count: count, scratch: scratch)
        }
    }

    func transformOutputGradient(_ dy: UnsafePointer<Float>, cout: Int, ld: Int, n0: Int, count: Int,
                                 dm: UnsafeMutablePointer<Float>, ldm: Int, scratch: UnsafeMutablePointer<Float>) {
        switch self {
        case .f2x2(let g):
            WinogradKernels.transformOutputGradient(dy, cout: cout, ld: ld, n0: n0, count: count, g, dm: dm, ldm: ldm)
        case .f4x4(let g):
            Winograd4Kernels.transformOutputGradient(dy, cout: cout, ld: ld, n0: n0, count: count, g, dm: dm, ldm: ldm, scratch: scratch)
        }
    }

    func transformInputGradient(_ dv: UnsafePointer<Float>, channels: Int, ldv: Int, dx: UnsafeMutablePointer<Float>, chanStride: Int,
                                n0: Int, count: Int, scratch: UnsafeMutablePointer<Float>) {
        switch self {
        case .f2x2(let g):
            WinogradKernels.transformInputGradient(dv, channels: channels, ldv: ldv, g, dx: dx, chanStride: chanStride,
                                                   n0: n0, count: count, rowScratch: scratch)
        case .f4x4(let g):
            Winograd4Kernels.transformInputGradient(dv, channels: channels, ldv: ldv, g, dx: dx, chanStride: chanStride,
                                                    n0: n0, count: count, scratch: scratch)
        }
    }
}

/// The row length of transformed weights U [Cout][points][ldu] for `cin` input channels: cin
/// rounded up to 8, plus 8, so that a filter's `points` rows fall into different cache sets
/// (row lengths of a power of two would map them all to a few).
func winogradWeightStride(_ cin: Int) -> Int { (cin + 7) / 8 * 8 + 8 }

extension Conv2D {
    /// One chunk of a worker's images, its input already transformed into `v`.
    private struct WinogradChunk {
        let thread: Int
        let n0: Int
        let count: Int
        let tiles: Int
        let v: UnsafeMutablePointer<Float>
        let m: UnsafeMutablePointer<Float>
        let scratch: UnsafeMutablePointer<Float>
    }

    /// Runs `body` on every chunk of the batch: images split by `partition` among the workers,
    /// then about `plan.targetTiles` tiles per chunk, each chunk's input transformed into V
    /// first. `start(t)` runs once on each active worker before its chunks. Returns the number
    /// of active workers (n > 0).
    private func forEachWinogradChunk(_ x: Activation, _ plan: WinogradPlan, _ ctx: ExecutionContext,
                                      start: (Int) -> Void = { _ in }, _ body: (WinogradChunk) -> Void) -> Int {
        let n = x.batch, cin = inChannels, cout = outChannels, tpi = plan.tilesPerImage, points = plan.points
        let threads = min(ctx.threads, n)
        let perThread = (n + threads - 1) / threads
        let tileImages = max(1, min(perThread, plan.targetTiles / max(tpi, 1)))
        ctx.workers.run { t in
            guard t < threads else { return }
            start(t)
            let range = partition(n, parts: threads, index: t)
            let v = ctx.scratch(t, 3, points * cin * tileImages * tpi)
            let m = ctx.scratch(t, 4, points * cout * tileImages * tpi)
            let scratch = ctx.scratch(t, 5, plan.scratchCount(images: tileImages))
            var n0 = range.lowerBound
            while n0 < range.upperBound {
                let nt = min(tileImages, range.upperBound - n0), tiles = nt * tpi
                plan.transformInput(x, n0: n0, count: nt, v: v, ldv: tiles, scratch: scratch)
                body(WinogradChunk(thread: t, n0: n0, count: nt, tiles: tiles, v: v, m: m, scratch: scratch))
                n0 += nt
            }
        }
        return threads
    }

    func winogradForward(_ x: Activation, _ plan: WinogradPlan, _ ctx: ExecutionContext) -> Activation {
        let n = x.batch, cin = inChannels, cout = outChannels, ld = n * x.plane, points = plan.points
        let ldu = winogradWeightStride(cin)
        output.reserve(cout * ld)
        guard n > 0 else { return Activation(data: output.ptr, channels: cout, batch: 0, height: x.height, width: x.width) }
        transformedWeight.reserve(cout * points * ldu)
        let y = output.ptr, u = transformedWeight.ptr, w = store.value(weight)
        let bv = bias.map { UnsafePointer(store.value($0)) }
        ctx.workers.forEachRange(cout, minimumPerThread: 8) { r in
            plan.transformWeights(w, cout: cout, cin: cin, range: r, u: u, ldu: ldu)
        }
        _ = forEachWinogradChunk(x, plan, ctx) { c in
            for xi in 0 ..< points {
                gemm(m: cout, n: c.tiles, k: cin, a: u + xi * ldu, lda: points * ldu, b: c.v + xi * cin * c.tiles, ldb: c.tiles,
                     c: c.m + xi * cout * c.tiles, ldc: c.tiles)
            }
            plan.transformOutput(c.m, cout: cout, ldm: c.tiles, bias: bv, y: y, ld: ld, n0: c.n0, count: c.count, scratch: c.scratch)
        }
        return Activation(data: y, channels: cout, batch: n, height: x.height, width: x.width)
    }

    func winogradBackward(_ x: Activation, _ dy: Activation, _ plan: WinogradPlan, _ ctx: ExecutionContext) -> Activation {
        let n = x.batch, cin = inChannels, cout = outChannels, points = plan.points
        let ld = n * x.plane, chanStride = x.perChannel, ldu = winogradWeightStride(cin), uCount = cout * points * ldu
        let u = transformedWeight.ptr, gw = store.gradient(weight)
        let needDX = computesInputGradient
        if needDX { gradInput.reserve(x.count) }
        let dx = gradInput.ptr
        guard n > 0 else { return Activation(data: dx, channels: inChannels, batch: 0, height: x.height, width: x.width) }
        let threads = forEachWinogradChunk(x, plan, ctx, start: { t in
            ctx.scratch(t, 1, uCount).update(repeating: 0, count: uCount)
        }) { c in
            let du = ctx.scratch(c.thread, 1, uCount), tiles = c.tiles
            plan.transformOutputGradient(dy.data, cout: cout, ld: ld, n0: c.n0, count: c.count, dm: c.m, ldm: tiles, scratch: c.scratch)
            for xi in 0 ..< points {
                let vx = c.v + xi * cin * tiles, mx = c.m + xi * cout * tiles
                // dU[ξ] += dM[ξ] · V[ξ]ᵀ, then dV[ξ] = U[ξ]ᵀ · dM[ξ] over V[ξ] (no longer needed).
                gemm(transB: true, m: cout, n: cin, k: tiles, a: mx, lda: tiles, b: vx, ldb: tiles,
                     beta: 1, c: du + xi * ldu, ldc: points * ldu)
                if needDX {
                    gemm(transA: true, m: cin, n: tiles, k: cout, a: u + xi * ldu, lda: points * ldu, b: mx, ldb: tiles,
                         c: vx, ldc: tiles)
                }
            }
            if needDX {
                plan.transformInputGradient(c.v, channels: cin, ldv: tiles, dx: dx, chanStride: chanStride,
                                            n0: c.n0, count: c.count, scratch: c.scratch)
            }
        }
        // Partials are added in thread order for every element, then folded back to 3×3.
        let total = ctx.scratch(0, 1, uCount)
        if threads > 1 {
            let partials = (1 ..< threads).map { ctx.scratch($0, 1, uCount) }
            ctx.workers.forEachRange(uCount, minimumPerThread: 1 << 14) { r in
                for p in partials { for i in r { total[i] += p[i] } }
            }
        }
        ctx.workers.forEachRange(cout, minimumPerThread: 8) { r in
            plan.accumulateWeightGradient(total, cout: cout, cin: cin, range: r, gw: gw, ldu: ldu)
        }
        accumulateBiasGradient(dy, ctx)
        return Activation(data: dx, channels: inChannels, batch: n, height: x.height, width: x.width)
    }
}
