// Conv2D's Winograd path, F(2×2, 3×3) (KernelsWinograd.swift) or F(4×4, 3×3)
// (KernelsWinograd4.swift): the weights transformed once per forward call into U, then one of
// two splits of the work among the workers, chosen by shapes and thread count only:
//  - chunks (large planes): the batch split into fixed per-worker image ranges by `partition`
//    and those into chunks of about `targetTiles` tiles; per chunk the input transform, one GEMM
//    per transform point and the output transform (backward: the output-gradient transform, the
//    two GEMMs per point and the input-gradient transform). Each worker accumulates its chunks'
//    weight gradient dU = Σ dM·Vᵀ into its own full-size dU; the partials are added in worker
//    order.
//  - batch-wide (every worker's images fit in one chunk: the small planes, where U and dU are
//    large and the tiles few): V, M and their gradients are batch-wide matrices. The transforms
//    that read the activations (input, output gradient) split the images among the workers; the
//    GEMMs and the transforms after them split the channels (forward: output channels, one
//    GEMM per point over every tile; backward: dV by input channels, and for F(4×4) dU by output
//    channels, one GEMM per point over every tile; F(2×2) keeps per-worker partials of dU over
//    the worker's tiles). Each worker then reads only its share of U, not all of it. A recording
//    forward keeps V in the layer (`transformedInput`) so that backward need not transform x
//    again.
// Both are bit-identical for a given thread count.

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

    func transformOutput(_ m: UnsafePointer<Float>, cout: Int, rows: Range<Int>, ldm: Int, bias: UnsafePointer<Float>?,
                         y: UnsafeMutablePointer<Float>, ld: Int, n0: Int, count: Int, scratch: UnsafeMutablePointer<Float>) {
        switch self {
        case .f2x2(let g):
            WinogradKernels.transformOutput(m, cout: cout, rows: rows, ldm: ldm, g, bias: bias, y: y, ld: ld, n0: n0, count: count)
        case .f4x4(let g):
            Winograd4Kernels.transformOutput(m, cout: cout, rows: rows, ldm: ldm, g, bias: bias, y: y, ld: ld, n0: n0, count: count,
                                             scratch: scratch)
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

    func transformInputGradient(_ dv: UnsafePointer<Float>, channels: Int, rows: Range<Int>, ldv: Int, dx: UnsafeMutablePointer<Float>,
                                chanStride: Int, n0: Int, count: Int, scratch: UnsafeMutablePointer<Float>) {
        switch self {
        case .f2x2(let g):
            WinogradKernels.transformInputGradient(dv, channels: channels, rows: rows, ldv: ldv, g, dx: dx, chanStride: chanStride,
                                                   n0: n0, count: count, scratch: scratch)
        case .f4x4(let g):
            Winograd4Kernels.transformInputGradient(dv, channels: channels, rows: rows, ldv: ldv, g, dx: dx, chanStride: chanStride,
                                                    n0: n0, count: count, scratch: scratch)
        }
    }
}

/// The row length of transformed weights U [Cout][points][ldu] for `cin` input channels: cin
/// rounded up to 8, plus 8, so that a filter's `points` rows fall into different cache sets
/// (row lengths of a power of two would map them all to a few).
func winogradWeightStride(_ cin: Int) -> Int { (cin + 7) / 8 * 8 + 8 }

extension Conv2D {
    /// One chunk of a worker's images, its input already transformed into `v` (rows of length
    /// `tiles`).
    private struct WinogradChunk {
        let thread: Int
        let n0: Int
        let count: Int
        let tiles: Int
        let v: UnsafeMutablePointer<Float>
        let m: UnsafeMutablePointer<Float>
        let scratch: UnsafeMutablePointer<Float>
    }

    /// How a call splits the batch: workers, images per chunk, and whether every worker's images
    /// are one chunk (`batchWide`: V, M and their gradients are then batch-wide matrices, the
    /// transforms before the GEMMs split among the workers by images and the GEMMs and the
    /// transforms after them by channels) and dU is one GEMM over the batch (`wholeBatch`).
    private struct WinogradSplit {
        let threads: Int
        let tileImages: Int
        let batchWide: Bool
        let wholeBatch: Bool

        init(_ plan: WinogradPlan, batch n: Int, threads available: Int) {
            threads = min(available, n)
            let perThread = (n + threads - 1) / max(threads, 1), tpi = plan.tilesPerImage
            tileImages = max(1, min(perThread, plan.targetTiles / max(tpi, 1)))
            batchWide = tileImages >= perThread
            if batchWide, case .f4x4 = plan { wholeBatch = true } else { wholeBatch = false }
        }
    }

    /// Runs `body` on every chunk of the batch (a split that is not batch-wide): images split by
    /// `partition` among the workers, then `split.tileImages` images per chunk, each chunk's
    /// input transformed into the worker's V first. `start(t)` runs once on each active worker
    /// before its chunks.
    private func forEachWinogradChunk(_ x: Activation, _ plan: WinogradPlan, _ split: WinogradSplit, _ ctx: ExecutionContext,
                                      start: (Int) -> Void = { _ in }, _ body: (WinogradChunk) -> Void) {
        let n = x.batch, cin = inChannels, cout = outChannels, tpi = plan.tilesPerImage, points = plan.points
        let threads = split.threads, tileImages = split.tileImages
        ctx.workers.run { t in
            guard t < threads else { return }
            start(t)
            let range = partition(n, parts: threads, index: t)
            let scratch = ctx.scratch(t, .winogradTransform, plan.scratchCount(images: tileImages))
            let v = ctx.scratch(t, .winogradV, points * cin * tileImages * tpi)
            let m = ctx.scratch(t, .winogradM, points * cout * tileImages * tpi)
            var n0 = range.lowerBound
            while n0 < range.upperBound {
                let nt = min(tileImages, range.upperBound - n0), tiles = nt * tpi
                plan.transformInput(x, n0: n0, count: nt, v: v, ldv: tiles, scratch: scratch)
                body(WinogradChunk(thread: t, n0: n0, count: nt, tiles: tiles, v: v, m: m, scratch: scratch))
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
        keptInputBatch = nil
        guard n > 0 else { return }
        let u = transformedWeights(plan, ldu: ldu, ctx)
        let bv = bias.map { UnsafePointer(store.value($0)) }
        let split = WinogradSplit(plan, batch: n, threads: ctx.threads)
        guard split.batchWide else {
            forEachWinogradChunk(x, plan, split, ctx) { c in
                for xi in 0 ..< points {
                    gemm(m: cout, n: c.tiles, k: cin, a: u + xi * ldu, lda: points * ldu, b: c.v + xi * cin * c.tiles, ldb: c.tiles,
                         c: c.m + xi * cout * c.tiles, ldc: c.tiles)
                }
                plan.transformOutput(c.m, cout: cout, rows: 0 ..< cout, ldm: c.tiles, bias: bv, y: y, ld: ld, n0: c.n0, count: c.count,
                                     scratch: c.scratch)
            }
            return
        }
        // Batch-wide: V (kept for backward by a recording forward) from each worker's images,
        // then per worker its rows of M over every tile and their output transform. Evaluation
        // takes the same split as a recording forward so that both give the same bits; its
        // scratch stays bounded (batch-wide means at most `targetTiles` tiles per worker).
        let tiles = n * plan.tilesPerImage
        let v: UnsafeMutablePointer<Float>
        if ctx.recordsForBackward {
            transformedInput.reserve(points * cin * tiles)
            v = transformedInput.ptr
            keptInputBatch = n
        } else {
            v = ctx.scratch(0, .winogradV, points * cin * tiles)
        }
        let m = ctx.scratch(0, .winogradM, points * cout * tiles)
        transformBatchInput(x, plan, split, v, ctx)
        ctx.workers.run { t in
            guard t < split.threads else { return }
            let rows = partition(cout, parts: split.threads, index: t)
            guard !rows.isEmpty else { return }
            for xi in 0 ..< points {
                gemm(m: rows.count, n: tiles, k: cin, a: u + rows.lowerBound * points * ldu + xi * ldu, lda: points * ldu,
                     b: v + xi * cin * tiles, ldb: tiles, c: m + (xi * cout + rows.lowerBound) * tiles, ldc: tiles)
            }
            let scratch = ctx.scratch(t, .winogradTransform, plan.scratchCount(images: split.tileImages))
            plan.transformOutput(m, cout: cout, rows: rows, ldm: tiles, bias: bv, y: y, ld: ld, n0: 0, count: n, scratch: scratch)
        }
    }

    /// Batch-wide V from x, each worker transforming its images.
    private func transformBatchInput(_ x: Activation, _ plan: WinogradPlan, _ split: WinogradSplit, _ v: UnsafeMutablePointer<Float>,
                                     _ ctx: ExecutionContext) {
        let n = x.batch, tpi = plan.tilesPerImage
        ctx.workers.run { t in
            guard t < split.threads else { return }
            let images = partition(n, parts: split.threads, index: t)
            let scratch = ctx.scratch(t, .winogradTransform, plan.scratchCount(images: split.tileImages))
            plan.transformInput(x, n0: images.lowerBound, count: images.count, v: v + images.lowerBound * tpi, ldv: n * tpi,
                                scratch: scratch)
        }
    }

    /// Accumulates the parameter gradients for output gradient dy at input x (U, and on a
    /// batch-wide split V, from the recording forward) and, when `dx` is given, overwrites it
    /// with the input gradient.
    func winogradBackward(_ x: Activation, _ dy: Activation, _ plan: WinogradPlan, _ dx: UnsafeMutablePointer<Float>?,
                          _ ctx: ExecutionContext) {
        let n = x.batch, cin = inChannels, cout = outChannels, points = plan.points, tpi = plan.tilesPerImage
        let ld = n * x.plane, chanStride = x.perChannel, ldu = winogradWeightStride(cin), uCount = cout * points * ldu
        let gw = store.gradient(weight)
        guard n > 0 else { return }
        let split = WinogradSplit(plan, batch: n, threads: ctx.threads), threads = split.threads
        if split.batchWide {
            // Per worker's images: V unless the forward kept it, dM, and for a per-worker dU the
            // worker's partial sum over its tiles.
            let tiles = n * tpi, kept = keptInputBatch == n
            let v = kept ? transformedInput.ptr : ctx.scratch(0, .winogradV, points * cin * tiles)
            let m = ctx.scratch(0, .winogradM, points * cout * tiles)
            ctx.workers.run { t in
                guard t < threads else { return }
                let images = partition(n, parts: threads, index: t), c0 = images.lowerBound * tpi
                let scratch = ctx.scratch(t, .winogradTransform, plan.scratchCount(images: split.tileImages))
                if !kept {
                    plan.transformInput(x, n0: images.lowerBound, count: images.count, v: v + c0, ldv: tiles, scratch: scratch)
                }
                plan.transformOutputGradient(dy.data, cout: cout, ld: ld, n0: images.lowerBound, count: images.count, dm: m + c0,
                                             ldm: tiles, scratch: scratch)
                guard !split.wholeBatch else { return }
                weightGradientGEMMs(plan, m: m + c0, v: v + c0, ld: tiles, tiles: images.count * tpi, beta: 0,
                                    du: ctx.scratch(t, .weightGradient, uCount))
            }
            if split.wholeBatch {
                // dU over every tile, rows split among the workers and folded by the worker
                // that computed them.
                let du = ctx.scratch(0, .weightGradient, uCount)
                ctx.workers.run { t in
                    guard t < threads else { return }
                    let rows = partition(cout, parts: threads, index: t)
                    guard !rows.isEmpty else { return }
                    for xi in 0 ..< points {
                        gemm(transB: true, m: rows.count, n: cin, k: tiles, a: m + (xi * cout + rows.lowerBound) * tiles, lda: tiles,
                             b: v + xi * cin * tiles, ldb: tiles, c: du + rows.lowerBound * points * ldu + xi * ldu, ldc: points * ldu)
                    }
                    plan.accumulateWeightGradient(du, cout: cout, cin: cin, range: rows, gw: gw, ldu: ldu)
                }
            } else {
                foldWeightGradientPartials(plan, threads: threads, ctx)
            }
            // dV[ξ] = U[ξ]ᵀ · dM[ξ] over V, rows (input channels) split among the workers, and
            // each worker's channels of dX from them.
            if let dx {
                ctx.workers.run { t in
                    guard t < threads else { return }
                    let rows = partition(cin, parts: threads, index: t)
                    guard !rows.isEmpty else { return }
                    inputGradient(plan, rows: rows, m: m, v: v, tiles: tiles, dx: dx, chanStride: chanStride, n0: 0, count: n,
                                  scratch: ctx.scratch(t, .winogradTransform, plan.scratchCount(images: n)))
                }
            }
        } else {
            forEachWinogradChunk(x, plan, split, ctx, start: { t in
                ctx.scratch(t, .weightGradient, uCount).update(repeating: 0, count: uCount)
            }) { c in
                plan.transformOutputGradient(dy.data, cout: cout, ld: ld, n0: c.n0, count: c.count, dm: c.m, ldm: c.tiles, scratch: c.scratch)
                weightGradientGEMMs(plan, m: c.m, v: c.v, ld: c.tiles, tiles: c.tiles, beta: 1, du: ctx.scratch(c.thread, .weightGradient, uCount))
                guard let dx else { return }
                inputGradient(plan, rows: 0 ..< cin, m: c.m, v: c.v, tiles: c.tiles, dx: dx, chanStride: chanStride, n0: c.n0,
                              count: c.count, scratch: c.scratch)
            }
            foldWeightGradientPartials(plan, threads: threads, ctx)
        }
        accumulateBiasGradient(dy, ctx)
    }

    /// dU[ξ] = β·dU[ξ] + dM[ξ] · V[ξ]ᵀ over `tiles` columns of M and V (rows of length `ld`).
    private func weightGradientGEMMs(_ plan: WinogradPlan, m: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int, tiles: Int,
                                     beta: Float, du: UnsafeMutablePointer<Float>) {
        let cin = inChannels, cout = outChannels, points = plan.points, ldu = winogradWeightStride(cin)
        for xi in 0 ..< points {
            gemm(transB: true, m: cout, n: cin, k: tiles, a: m + xi * cout * ld, lda: ld, b: v + xi * cin * ld, ldb: ld, beta: beta,
                 c: du + xi * ldu, ldc: points * ldu)
        }
    }

    /// dV[ξ] = U[ξ]ᵀ · dM[ξ] for input channels `rows` over `tiles` columns (rows of length
    /// `tiles`), written over V, then those channels of dX for images n0..<n0+count.
    private func inputGradient(_ plan: WinogradPlan, rows: Range<Int>, m: UnsafePointer<Float>, v: UnsafeMutablePointer<Float>,
                               tiles: Int, dx: UnsafeMutablePointer<Float>, chanStride: Int, n0: Int, count: Int,
                               scratch: UnsafeMutablePointer<Float>) {
        let cin = inChannels, cout = outChannels, points = plan.points, ldu = winogradWeightStride(cin), u = transformedWeight.ptr
        for xi in 0 ..< points {
            gemm(transA: true, m: rows.count, n: tiles, k: cout, a: u + xi * ldu + rows.lowerBound, lda: points * ldu,
                 b: m + xi * cout * tiles, ldb: tiles, c: v + (xi * cin + rows.lowerBound) * tiles, ldc: tiles)
        }
        plan.transformInputGradient(v, channels: cin, rows: rows, ldv: tiles, dx: dx, chanStride: chanStride, n0: n0, count: count,
                                    scratch: scratch)
    }

    /// Adds the workers' partial dU (their `.weightGradient` scratch) in worker order for every
    /// element, then folds the sum back to 3×3 into the weight gradient.
    private func foldWeightGradientPartials(_ plan: WinogradPlan, threads: Int, _ ctx: ExecutionContext) {
        let cin = inChannels, cout = outChannels, ldu = winogradWeightStride(cin), uCount = cout * plan.points * ldu
        let total = ctx.scratch(0, .weightGradient, uCount), gw = store.gradient(weight)
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
}
