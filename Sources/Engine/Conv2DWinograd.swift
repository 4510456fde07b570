// Conv2D's Winograd path, F(2×2, 3×3) (KernelsWinograd.swift) or F(4×4, 3×3)
// (KernelsWinograd4.swift): the weights transformed once per forward call, the batch split
// into fixed per-worker image ranges by `partition` and those into chunks of about
// `targetTiles` tiles, per chunk the input transform, one GEMM per transform point and the
// output transform (backward: the output-gradient transform, the two GEMMs per point and the
// input-gradient transform).
// The weight gradient dU = Σ dM·Vᵀ is summed one of two ways, both bit-identical for a given
// thread count:
//  - per worker: each worker accumulates its chunks into its own full-size dU, and the
//    partials are added in worker order (F(2×2) always, F(4×4) when a worker has several
//    chunks);
//  - whole batch (F(4×4) backward when every worker's images are one chunk, as on the small
//    planes where dU is large and the tiles few): the chunks' V and dM are columns of batch-wide
//    matrices (thread 0's V and M scratch; forward calls keep per-worker V and M), and
//    dU[ξ] = dM[ξ]·V[ξ]ᵀ is one GEMM over every tile with its rows split among the workers — no
//    per-worker copies of dU to clear, accumulate and add (for 512 → 512 channels, 38 MB each).

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
        case .f2x2(let g): return WinogradKernels.scratchCount(g, images: images)
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
                                           v: v, ldv: ldv, scratch: scratch)
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
                                                   n0: n0, count: count, scratch: scratch)
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
    /// One chunk of a worker's images, its input already transformed into `v`. V, M and their
    /// gradients have rows of length `ld` (`tiles` in a worker's own buffers; the batch's tile
    /// count when the chunk's columns are part of batch-wide matrices).
    private struct WinogradChunk {
        let thread: Int
        let n0: Int
        let count: Int
        let tiles: Int
        let ld: Int
        let v: UnsafeMutablePointer<Float>
        let m: UnsafeMutablePointer<Float>
        let scratch: UnsafeMutablePointer<Float>
    }

    /// How a call splits the batch: workers, images per chunk, and whether the chunks are the
    /// columns of batch-wide V and M (a backward call where every worker has one chunk and the
    /// plan sums dU over the whole batch; forward calls keep per-worker V and M, which bounds an
    /// evaluation's scratch by the chunk size, not the batch).
    private struct WinogradSplit {
        let threads: Int
        let tileImages: Int
        let wholeBatch: Bool

        init(_ plan: WinogradPlan, batch n: Int, threads available: Int, backward: Bool) {
            threads = min(available, n)
            let perThread = (n + threads - 1) / threads, tpi = plan.tilesPerImage
            tileImages = max(1, min(perThread, plan.targetTiles / max(tpi, 1)))
            if backward, case .f4x4 = plan { wholeBatch = tileImages >= perThread } else { wholeBatch = false }
        }
    }

    /// Runs `body` on every chunk of the batch: images split by `partition` among the workers,
    /// then `split.tileImages` images per chunk, each chunk's input transformed into V first
    /// unless `transformingInput` is false. `start(t)` runs once on each active worker before
    /// its chunks (n > 0).
    private func forEachWinogradChunk(_ x: Activation, _ plan: WinogradPlan, _ split: WinogradSplit, _ ctx: ExecutionContext,
                                      transformingInput: Bool = true, start: (Int) -> Void = { _ in },
                                      _ body: (WinogradChunk) -> Void) {
        let n = x.batch, cin = inChannels, cout = outChannels, tpi = plan.tilesPerImage, points = plan.points
        let threads = split.threads, tileImages = split.tileImages, batchTiles = n * tpi
        // Batch-wide V and M live in worker 0's buffers, sized here, before the workers start.
        let batchV = split.wholeBatch ? ctx.scratch(0, .winogradV, points * cin * batchTiles) : nil
        let batchM = split.wholeBatch ? ctx.scratch(0, .winogradM, points * cout * batchTiles) : nil
        ctx.workers.run { t in
            guard t < threads else { return }
            start(t)
            let range = partition(n, parts: threads, index: t)
            let scratch = ctx.scratch(t, .winogradTransform, plan.scratchCount(images: tileImages))
            let v = batchV ?? ctx.scratch(t, .winogradV, points * cin * tileImages * tpi)
            let m = batchM ?? ctx.scratch(t, .winogradM, points * cout * tileImages * tpi)
            var n0 = range.lowerBound
            while n0 < range.upperBound {
                let nt = min(tileImages, range.upperBound - n0), tiles = nt * tpi
                let offset = split.wholeBatch ? n0 * tpi : 0
                let c = WinogradChunk(thread: t, n0: n0, count: nt, tiles: tiles, ld: split.wholeBatch ? batchTiles : tiles,
                                      v: v + offset, m: m + offset, scratch: scratch)
                if transformingInput { plan.transformInput(x, n0: n0, count: nt, v: c.v, ldv: c.ld, scratch: scratch) }
                body(c)
                n0 += nt
            }
        }
    }

    /// U = the plan's transform of the weights, [Cout][points][ldu]: kept in the layer for
    /// backward by a recording forward, in the context's scratch otherwise.
    private func transformedWeights(_ plan: WinogradPlan, ldu: Int, _ ctx: ExecutionContext) -> UnsafeMutablePointer<Float> {
        let cin = inChannels, cout = outChannels, count = cout * plan.points * ldu
        let u: UnsafeMutablePointer<Float>
        if ctx.recordsForBackward {
            transformedWeight.reserve(count)
            u = transformedWeight.ptr
        } else {
            u = ctx.scratch(0, .transformedWeights, count)
        }
        let w = store.value(weight)
        ctx.workers.forEachRange(cout, minimumPerThread: 8) { r in
            plan.transformWeights(w, cout: cout, cin: cin, range: r, u: u, ldu: ldu)
        }
        return u
    }

    /// y (Cout · N · H · W floats) = the convolution of x by the plan.
    func winogradForward(_ x: Activation, _ plan: WinogradPlan, _ y: UnsafeMutablePointer<Float>, _ ctx: ExecutionContext) {
        let n = x.batch, cin = inChannels, cout = outChannels, ld = n * x.plane, points = plan.points
        let ldu = winogradWeightStride(cin)
        guard n > 0 else { return }
        let u = transformedWeights(plan, ldu: ldu, ctx)
        let bv = bias.map { UnsafePointer(store.value($0)) }
        forEachWinogradChunk(x, plan, WinogradSplit(plan, batch: n, threads: ctx.threads, backward: false), ctx) { c in
            for xi in 0 ..< points {
                gemm(m: cout, n: c.tiles, k: cin, a: u + xi * ldu, lda: points * ldu, b: c.v + xi * cin * c.ld, ldb: c.ld,
                     c: c.m + xi * cout * c.ld, ldc: c.ld)
            }
            plan.transformOutput(c.m, cout: cout, ldm: c.ld, bias: bv, y: y, ld: ld, n0: c.n0, count: c.count, scratch: c.scratch)
        }
    }

    /// Accumulates the parameter gradients for output gradient dy at input x (U from the
    /// recording forward) and, when `dx` is given, overwrites it with the input gradient.
    func winogradBackward(_ x: Activation, _ dy: Activation, _ plan: WinogradPlan, _ dx: UnsafeMutablePointer<Float>?,
                          _ ctx: ExecutionContext) {
        let n = x.batch, cin = inChannels, cout = outChannels, points = plan.points
        let ld = n * x.plane, chanStride = x.perChannel, ldu = winogradWeightStride(cin), uCount = cout * points * ldu
        let u = transformedWeight.ptr, gw = store.gradient(weight)
        guard n > 0 else { return }
        let split = WinogradSplit(plan, batch: n, threads: ctx.threads, backward: true), threads = split.threads
        /// dV[ξ] = U[ξ]ᵀ · dM[ξ] over V[ξ] (no longer needed), then dX from dV.
        func inputGradient(_ c: WinogradChunk, _ dx: UnsafeMutablePointer<Float>) {
            for xi in 0 ..< points {
                gemm(transA: true, m: cin, n: c.tiles, k: cout, a: u + xi * ldu, lda: points * ldu, b: c.m + xi * cout * c.ld, ldb: c.ld,
                     c: c.v + xi * cin * c.ld, ldc: c.ld)
            }
            plan.transformInputGradient(c.v, channels: cin, ldv: c.ld, dx: dx, chanStride: chanStride, n0: c.n0, count: c.count,
                                        scratch: c.scratch)
        }
        if split.wholeBatch {
            // Each worker's chunk: V (transformed by the iteration) and dM as columns of the
            // batch-wide matrices; then dU over every tile, rows split among the workers and
            // folded by the worker that computed them; then each worker's input gradient.
            forEachWinogradChunk(x, plan, split, ctx) { c in
                plan.transformOutputGradient(dy.data, cout: cout, ld: ld, n0: c.n0, count: c.count, dm: c.m, ldm: c.ld, scratch: c.scratch)
            }
            let batchTiles = n * plan.tilesPerImage
            let v = ctx.scratch(0, .winogradV, points * cin * batchTiles), m = ctx.scratch(0, .winogradM, points * cout * batchTiles)
            let du = ctx.scratch(0, .weightGradient, uCount)
            ctx.workers.run { t in
                guard t < threads else { return }
                let rows = partition(cout, parts: threads, index: t)
                guard !rows.isEmpty else { return }
                for xi in 0 ..< points {
                    gemm(transB: true, m: rows.count, n: cin, k: batchTiles, a: m + xi * cout * batchTiles + rows.lowerBound * batchTiles,
                         lda: batchTiles, b: v + xi * cin * batchTiles, ldb: batchTiles,
                         c: du + rows.lowerBound * points * ldu + xi * ldu, ldc: points * ldu)
                }
                plan.accumulateWeightGradient(du, cout: cout, cin: cin, range: rows, gw: gw, ldu: ldu)
            }
            if let dx { forEachWinogradChunk(x, plan, split, ctx, transformingInput: false) { inputGradient($0, dx) } }
        } else {
            forEachWinogradChunk(x, plan, split, ctx, start: { t in
                ctx.scratch(t, .weightGradient, uCount).update(repeating: 0, count: uCount)
            }) { c in
                let du = ctx.scratch(c.thread, .weightGradient, uCount)
                plan.transformOutputGradient(dy.data, cout: cout, ld: ld, n0: c.n0, count: c.count, dm: c.m, ldm: c.ld, scratch: c.scratch)
                // dU[ξ] += dM[ξ] · V[ξ]ᵀ.
                for xi in 0 ..< points {
                    gemm(transB: true, m: cout, n: cin, k: c.tiles, a: c.m + xi * cout * c.ld, lda: c.ld, b: c.v + xi * cin * c.ld, ldb: c.ld,
                         beta: 1, c: du + xi * ldu, ldc: points * ldu)
                }
                if let dx { inputGradient(c, dx) }
            }
            // Partials are added in thread order for every element, then folded back to 3×3.
            let total = ctx.scratch(0, .weightGradient, uCount)
            if threads > 1 {
                let partials = (1 ..< threads).map { ctx.scratch($0, .weightGradient, uCount) }
                ctx.workers.forEachRange(uCount, minimumPerThread: 1 << 14) { r in
                    for p in partials { for i in r { total[i] += p[i] } }
                }
            }
            ctx.workers.forEachRange(cout, minimumPerThread: 8) { r in
                plan.accumulateWeightGradient(total, cout: cout, cin: cin, range: r, gw: gw, ldu: ldu)
            }
        }
        accumulateBiasGradient(dy, ctx)
    }
}
