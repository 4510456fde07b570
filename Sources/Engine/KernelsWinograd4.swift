// Winograd F(4×4, 3×3) for "same" 3×3 convolutions (stride 1, padding 1), forward and both
// gradients, over a tile of images of a channel-major [C, N, H, W] batch.
//
// One output tile is 4×4 pixels and reads a 6×6 input patch (rows 4ty−1…4ty+4, columns
// 4tx−1…4tx+4, zero outside the plane). With Lavin & Gray's matrices for the interpolation
// points 0, ±1, ±2, ∞ (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks")
//     Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//     G  = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1]
//     Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
// a tile's output is Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A: 36 GEMMs (one per point ξ = 6k + m of the
// 6×6 transform domain), 36 multiplies per 16 outputs instead of 144 (F(2×2): 16 per 4). The
// gradients are the adjoints of the same steps, as in KernelsWinograd.swift:
//     dM = A dY Aᵀ,   dU[ξ] += dM[ξ] · V[ξ]ᵀ,   dg = Gᵀ dU G,
//     dV[ξ] = U[ξ]ᵀ · dM[ξ],   dX += B dV Bᵀ (patches overlap: added in tile order).
// Points ½ and −2 in place of ±2 give about 1.4× less rounding error in float32 but
// transforms without the ± symmetry the formulas below use (more operations per tile).
//
// Layouts as for F(2×2) with 36 points: U is [Cout][36][ldu]; V and dV are [36][C][ldv], M and
// dM [36][Cout][ldm], with the chunk's tiles t = image·tilesPerImage + ty·tilesWide + tx in the
// first images · tilesPerImage columns (a row is longer when the chunk's columns are part of
// batch-wide matrices, Conv2DWinograd.swift).
// The transforms work on blocks of 8 consecutive tiles t, one tile per SIMD lane, so every
// load and store of V, M, dM and dV is a contiguous 8-float vector however small the plane
// (a 4×4 plane is one tile): per channel, the input planes are copied into zero-bordered
// planes (the `padded` part of the scratch), and the 2-D transform is two passes of 1-D
// transforms over a block of 36 vectors (lane = tile): the input transform gathers each column
// of the 8 patches straight into vectors (scalar stores into the block followed by vector loads
// of it would stall on store forwarding) and stores its first pass in the block.

/// The tile grid of a same-padded 3×3 convolution on an H×W plane, for 4×4 output tiles.
public struct Winograd4Tiling: Sendable, Equatable {
    public let height: Int
    public let width: Int
    public let tilesHigh: Int
    public let tilesWide: Int

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
        tilesHigh = (height + 3) / 4
        tilesWide = (width + 3) / 4
    }

    @inline(__always) public var tilesPerImage: Int { tilesHigh * tilesWide }
    /// A zero-bordered plane: input row/column j − 1 at index j, down to the last tile's patch.
    @inline(__always) var paddedWidth: Int { 4 * tilesWide + 2 }
    @inline(__always) var paddedPlane: Int { (4 * tilesHigh + 2) * paddedWidth }

    /// A tile's 6×6 patch in the padded planes (its top-left corner, input pixel (−1, −1)).
    @inline(__always) func patchOffset(_ c: WinogradTileCursor) -> Int {
        c.image &* paddedPlane &+ (4 &* c.ty) &* paddedWidth &+ 4 &* c.tx
    }

    /// A tile's first output pixel relative to the chunk's first image.
    @inline(__always) func outputOffset(_ c: WinogradTileCursor) -> Int {
        (c.image &* height &+ 4 &* c.ty) &* width &+ 4 &* c.tx
    }
}

// `@inline(never)` on the public kernels for the reason given in KernelsWinograd.swift.
public enum Winograd4Kernels {
    /// Floats of per-thread scratch the input and gradient transforms need (`scratch`
    /// arguments) for chunks of up to `images` images: a padded plane per image and a block.
    public static func scratchCount(_ g: Winograd4Tiling, images: Int) -> Int { images * g.paddedPlane + blockFloats }

    /// 36 vectors of 8 lanes.
    static let blockFloats = 36 * 8

    /// U[co][ξ][ci] = (G g Gᵀ)[ξ] for output channels `range` of weights [Cout, Cin, 3, 3],
    /// 8 input channels per vector.
    @inline(never)
    public static func transformWeights(_ w: UnsafePointer<Float>, cout: Int, cin: Int, range: Range<Int>,
                                        u: UnsafeMutablePointer<Float>, ldu: Int) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 72) { tail in
            guard let tail = tail.baseAddress else { return }
            for co in range {
                var ci = 0
                while ci < cin {
                    let lanes = min(8, cin &- ci)
                    // The 8 filters' 72 weights are contiguous; the last group's are copied after
                    // zeros so that every group reads 72.
                    var g = w + (co &* cin &+ ci) &* 9
                    if lanes < 8 {
                        tail.update(repeating: 0, count: 72)
                        tail.update(from: g, count: lanes &* 9)
                        g = UnsafePointer(tail)
                    }
                    @inline(__always) func tap(_ k: Int) -> V8 {
                        V8(g[k], g[9 &+ k], g[18 &+ k], g[27 &+ k], g[36 &+ k], g[45 &+ k], g[54 &+ k], g[63 &+ k])
                    }
                    // G applied to the columns of g (rows k of G g), then to the rows of those.
                    let c0 = transformG(tap(0), tap(3), tap(6))
                    let c1 = transformG(tap(1), tap(4), tap(7))
                    let c2 = transformG(tap(2), tap(5), tap(8))
                    let base = u + (co &* 36 &* ldu &+ ci)
                    @inline(__always) func row(_ k: Int, _ a: V8, _ b: V8, _ c: V8) {
                        let r = transformG(a, b, c)
                        let p = base + (6 &* k) &* ldu
                        storeLanes(r.0, p, lanes); storeLanes(r.1, p + ldu, lanes); storeLanes(r.2, p + 2 &* ldu, lanes)
                        storeLanes(r.3, p + 3 &* ldu, lanes); storeLanes(r.4, p + 4 &* ldu, lanes); storeLanes(r.5, p + 5 &* ldu, lanes)
                    }
                    row(0, c0.0, c1.0, c2.0); row(1, c0.1, c1.1, c2.1); row(2, c0.2, c1.2, c2.2)
                    row(3, c0.3, c1.3, c2.3); row(4, c0.4, c1.4, c2.4); row(5, c0.5, c1.5, c2.5)
                    ci &+= 8
                }
            }
        }
    }

    /// gw[co][ci][3×3] += (Gᵀ dU G) for output channels `range`, dU laid out like U.
    @inline(never)
    public static func accumulateWeightGradient(_ du: UnsafePointer<Float>, cout: Int, cin: Int, range: Range<Int>,
                                                gw: UnsafeMutablePointer<Float>, ldu: Int) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 72) { folded in
            guard let folded = folded.baseAddress else { return }
            for co in range {
                var ci = 0
                while ci < cin {
                    let lanes = min(8, cin &- ci)
                    let base = du + (co &* 36 &* ldu &+ ci)
                    // Gᵀ applied to each row k of dU (6 → 3 columns), then to the columns of those.
                    @inline(__always) func rowT(_ k: Int) -> (V8, V8, V8) {
                        let p = base + (6 &* k) &* ldu
                        return transformGT((loadLanes(p, lanes), loadLanes(p + ldu, lanes), loadLanes(p + 2 &* ldu, lanes),
                                            loadLanes(p + 3 &* ldu, lanes), loadLanes(p + 4 &* ldu, lanes),
                                            loadLanes(p + 5 &* ldu, lanes)))
                    }
                    let r0 = rowT(0), r1 = rowT(1), r2 = rowT(2), r3 = rowT(3), r4 = rowT(4), r5 = rowT(5)
                    let c0 = transformGT((r0.0, r1.0, r2.0, r3.0, r4.0, r5.0))
                    let c1 = transformGT((r0.1, r1.1, r2.1, r3.1, r4.1, r5.1))
                    let c2 = transformGT((r0.2, r1.2, r2.2, r3.2, r4.2, r5.2))
                    // Tap (a, b) of the 8 filters at folded[(3a + b)·8 …], added to their contiguous weights.
                    store8(c0.0, folded); store8(c1.0, folded + 8); store8(c2.0, folded + 16)
                    store8(c0.1, folded + 24); store8(c1.1, folded + 32); store8(c2.1, folded + 40)
                    store8(c0.2, folded + 48); store8(c1.2, folded + 56); store8(c2.2, folded + 64)
                    let g = gw + (co &* cin &+ ci) &* 9
                    if lanes == 8 {
                        for l in 0 ..< 8 { for k in 0 ..< 9 { g[l &* 9 &+ k] += folded[k &* 8 &+ l] } }
                    } else {
                        for l in 0 ..< lanes { for k in 0 ..< 9 { g[l &* 9 &+ k] += folded[k &* 8 &+ l] } }
                    }
                    ci &+= 8
                }
            }
        }
    }

    /// V[ξ][c][t] = (Bᵀ d B)[ξ] for every channel and tile of images n0..<n0+count of x.
    /// The chunk's count · tilesPerImage tiles are the first columns of rows of length `ldv`.
    @inline(never)
    public static func transformInput(_ x: UnsafePointer<Float>, channels: Int, chanStride: Int, n0: Int, count: Int,
                                      _ g: Winograd4Tiling, v: UnsafeMutablePointer<Float>, ldv: Int,
                                      scratch: UnsafeMutablePointer<Float>) {
        let h = g.height, w = g.width, pw = g.paddedWidth, pp = g.paddedPlane
        let xiStride = channels &* ldv, tiles = count &* g.tilesPerImage
        let padded = scratch, block = scratch + count &* pp
        // Only the plane's interior is rewritten per channel: the borders stay zero.
        padded.update(repeating: 0, count: count &* pp)
        for c in 0 ..< channels {
            for nn in 0 ..< count {
                let plane = x + c &* chanStride + (n0 &+ nn) &* (h &* w), dst = padded + (nn &* pp &+ pw &+ 1)
                for y in 0 ..< h { copy(plane + y &* w, dst + y &* pw, w) }
            }
            var cursor = WinogradTileCursor()
            var t0 = 0
            while t0 < tiles {
                let lanes = min(8, tiles &- t0)
                // The 8 tiles' patches (lanes past the chunk repeat its last tile; not stored).
                var last = 0
                @inline(__always) func patch(_ l: Int) -> UnsafePointer<Float> {
                    if l < lanes { last = g.patchOffset(cursor); cursor.advance(tilesHigh: g.tilesHigh, tilesWide: g.tilesWide) }
                    return UnsafePointer(padded + last)
                }
                let p0 = patch(0), p1 = patch(1), p2 = patch(2), p3 = patch(3), p4 = patch(4), p5 = patch(5), p6 = patch(6), p7 = patch(7)
                // Bᵀ down each column j of the patches (gathered straight into vectors), into the
                // block; then along each row into V.
                for j in 0 ..< 6 {
                    @inline(__always) func at(_ i: Int) -> V8 {
                        let k = i &* pw &+ j
                        return V8(p0[k], p1[k], p2[k], p3[k], p4[k], p5[k], p6[k], p7[k])
                    }
                    @inline(__always) func to(_ i: Int) -> UnsafeMutablePointer<Float> { block + (6 &* i &+ j) &* 8 }
                    let e = transformBT((at(0), at(1), at(2), at(3), at(4), at(5)))
                    store8(e.0, to(0)); store8(e.1, to(1)); store8(e.2, to(2)); store8(e.3, to(3)); store8(e.4, to(4)); store8(e.5, to(5))
                }
                let out = v + (c &* ldv &+ t0)
                for k in 0 ..< 6 {
                    let r = block + (6 &* k) &* 8
                    let e = transformBT((load8(r), load8(r + 8), load8(r + 16), load8(r + 24), load8(r + 32), load8(r + 40)))
                    let q = out + (6 &* k) &* xiStride
                    storeLanes(e.0, q, lanes); storeLanes(e.1, q + xiStride, lanes); storeLanes(e.2, q + 2 &* xiStride, lanes)
                    storeLanes(e.3, q + 3 &* xiStride, lanes); storeLanes(e.4, q + 4 &* xiStride, lanes)
                    storeLanes(e.5, q + 5 &* xiStride, lanes)
                }
                t0 &+= 8
            }
        }
    }

    /// Y for images n0..<n0+count and output channels `rows` (of `cout`) from M (laid out like V,
    /// rows of length `ldm`): Y = Aᵀ M A per tile, cropped to the plane, plus the channel's bias
    /// if any. y has channel stride `ld` (N·H·W) and image stride H·W.
    @inline(never)
    public static func transformOutput(_ m: UnsafePointer<Float>, cout: Int, rows: Range<Int>, ldm: Int, _ g: Winograd4Tiling,
                                       bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, ld: Int,
                                       n0: Int, count: Int, scratch: UnsafeMutablePointer<Float>) {
        let h = g.height, w = g.width
        let xiStride = cout &* ldm, tiles = count &* g.tilesPerImage
        let block = scratch
        for co in rows {
            let b = V8(repeating: bias?[co] ?? 0)
            let out = y + co &* ld + n0 &* (h &* w), mc = m + co &* ldm
            var cursor = WinogradTileCursor()
            var t0 = 0
            while t0 < tiles {
                let lanes = min(8, tiles &- t0)
                // Aᵀ along each row k of M (6 → 4 columns), then down the columns into the block
                // (output pixel (r, s) at vector 4r + s).
                let src = mc + t0
                @inline(__always) func rowA(_ k: Int) -> (V8, V8, V8, V8) {
                    let p = src + (6 &* k) &* xiStride
                    return transformAT((loadLanes(p, lanes), loadLanes(p + xiStride, lanes), loadLanes(p + 2 &* xiStride, lanes),
                                        loadLanes(p + 3 &* xiStride, lanes), loadLanes(p + 4 &* xiStride, lanes),
                                        loadLanes(p + 5 &* xiStride, lanes)))
                }
                let r0 = rowA(0), r1 = rowA(1), r2 = rowA(2), r3 = rowA(3), r4 = rowA(4), r5 = rowA(5)
                @inline(__always) func column(_ s: Int, _ c: (V8, V8, V8, V8)) {
                    store8(c.0 + b, block + s &* 8); store8(c.1 + b, block + (4 &+ s) &* 8)
                    store8(c.2 + b, block + (8 &+ s) &* 8); store8(c.3 + b, block + (12 &+ s) &* 8)
                }
                column(0, transformAT((r0.0, r1.0, r2.0, r3.0, r4.0, r5.0)))
                column(1, transformAT((r0.1, r1.1, r2.1, r3.1, r4.1, r5.1)))
                column(2, transformAT((r0.2, r1.2, r2.2, r3.2, r4.2, r5.2)))
                column(3, transformAT((r0.3, r1.3, r2.3, r3.3, r4.3, r5.3)))
                for l in 0 ..< lanes {
                    let o = out + g.outputOffset(cursor), rows = min(4, h &- 4 &* cursor.ty), cols = min(4, w &- 4 &* cursor.tx)
                    let s = block + l
                    if rows == 4 && cols == 4 {
                        for r in 0 ..< 4 {
                            let d = o + r &* w, q = s + (32 &* r)
                            d[0] = q[0]; d[1] = q[8]; d[2] = q[16]; d[3] = q[24]
                        }
                    } else {
                        for r in 0 ..< rows { for c in 0 ..< cols { o[r &* w &+ c] = s[(4 &* r &+ c) &* 8] } }
                    }
                    cursor.advance(tilesHigh: g.tilesHigh, tilesWide: g.tilesWide)
                }
                t0 &+= 8
            }
        }
    }

    /// dM[ξ][co][t] = (A dY Aᵀ)[ξ] for images n0..<n0+count of dy (channel stride `ld`),
    /// entries of dY outside the plane being 0; dM has rows of length `ldm`.
    @inline(never)
    public static func transformOutputGradient(_ dy: UnsafePointer<Float>, cout: Int, ld: Int, n0: Int, count: Int,
                                               _ g: Winograd4Tiling, dm: UnsafeMutablePointer<Float>, ldm: Int,
                                               scratch: UnsafeMutablePointer<Float>) {
        let h = g.height, w = g.width
        let xiStride = cout &* ldm, tiles = count &* g.tilesPerImage
        let block = scratch
        // Planes of whole tiles: a block of 8 tiles gathers its pixels straight into vectors.
        let wholeTiles = h % 4 == 0 && w % 4 == 0
        for co in 0 ..< cout {
            let src = dy + co &* ld + n0 &* (h &* w)
            var cursor = WinogradTileCursor()
            var t0 = 0
            while t0 < tiles {
                let lanes = min(8, tiles &- t0)
                // A along each row r of dY (4 → 6 columns), then down the columns into dM.
                let r0, r1, r2, r3: (V8, V8, V8, V8, V8, V8)
                if wholeTiles && lanes == 8 {
                    @inline(__always) func tile() -> UnsafePointer<Float> {
                        defer { cursor.advance(tilesHigh: g.tilesHigh, tilesWide: g.tilesWide) }
                        return UnsafePointer(src + g.outputOffset(cursor))
                    }
                    let p0 = tile(), p1 = tile(), p2 = tile(), p3 = tile(), p4 = tile(), p5 = tile(), p6 = tile(), p7 = tile()
                    @inline(__always) func at(_ k: Int) -> V8 { V8(p0[k], p1[k], p2[k], p3[k], p4[k], p5[k], p6[k], p7[k]) }
                    @inline(__always) func rowA(_ r: Int) -> (V8, V8, V8, V8, V8, V8) {
                        let k = r &* w
                        return transformA((at(k), at(k &+ 1), at(k &+ 2), at(k &+ 3)))
                    }
                    r0 = rowA(0); r1 = rowA(1); r2 = rowA(2); r3 = rowA(3)
                } else {
                    // dY of each tile into the block (pixel (r, s) at vector 4r + s), zero outside.
                    if lanes < 8 { block.update(repeating: 0, count: 16 &* 8) }
                    for l in 0 ..< lanes {
                        let p = src + g.outputOffset(cursor), rows = min(4, h &- 4 &* cursor.ty), cols = min(4, w &- 4 &* cursor.tx)
                        let d = block + l
                        for r in 0 ..< 4 { for c in 0 ..< 4 { d[(4 &* r &+ c) &* 8] = r < rows && c < cols ? p[r &* w &+ c] : 0 } }
                        cursor.advance(tilesHigh: g.tilesHigh, tilesWide: g.tilesWide)
                    }
                    @inline(__always) func rowA(_ r: Int) -> (V8, V8, V8, V8, V8, V8) {
                        let p = block + (32 &* r)
                        return transformA((load8(p), load8(p + 8), load8(p + 16), load8(p + 24)))
                    }
                    r0 = rowA(0); r1 = rowA(1); r2 = rowA(2); r3 = rowA(3)
                }
                let out = dm + (co &* ldm &+ t0)
                @inline(__always) func column(_ m: Int, _ c: (V8, V8, V8, V8, V8, V8)) {
                    let q = out + m &* xiStride
                    storeLanes(c.0, q, lanes); storeLanes(c.1, q + 6 &* xiStride, lanes); storeLanes(c.2, q + 12 &* xiStride, lanes)
                    storeLanes(c.3, q + 18 &* xiStride, lanes); storeLanes(c.4, q + 24 &* xiStride, lanes)
                    storeLanes(c.5, q + 30 &* xiStride, lanes)
                }
                column(0, transformA((r0.0, r1.0, r2.0, r3.0))); column(1, transformA((r0.1, r1.1, r2.1, r3.1)))
                column(2, transformA((r0.2, r1.2, r2.2, r3.2))); column(3, transformA((r0.3, r1.3, r2.3, r3.3)))
                column(4, transformA((r0.4, r1.4, r2.4, r3.4))); column(5, transformA((r0.5, r1.5, r2.5, r3.5)))
                t0 &+= 8
            }
        }
    }

    /// Overwrites dX for images n0..<n0+count and input channels `rows` (of `channels`) with Σ
    /// over tiles of B dV Bᵀ placed on each tile's 6×6 patch (parts outside the plane dropped),
    /// dV having rows of length `ldv`. Patches are added into zeroed padded planes in tile order,
    /// then the planes' interiors are copied out.
    @inline(never)
    public static func transformInputGradient(_ dv: UnsafePointer<Float>, channels: Int, rows: Range<Int>, ldv: Int, _ g: Winograd4Tiling,
                                              dx: UnsafeMutablePointer<Float>, chanStride: Int, n0: Int, count: Int,
                                              scratch: UnsafeMutablePointer<Float>) {
        let h = g.height, w = g.width, pw = g.paddedWidth, pp = g.paddedPlane
        let xiStride = channels &* ldv, tiles = count &* g.tilesPerImage
        let padded = scratch, block = scratch + count &* pp
        for c in rows {
            padded.update(repeating: 0, count: count &* pp)
            let src = dv + c &* ldv
            var cursor = WinogradTileCursor()
            var t0 = 0
            while t0 < tiles {
                let lanes = min(8, tiles &- t0)
                // B along each row k of dV, into the block; then B down each column, in place.
                for k in 0 ..< 6 {
                    let p = src + (t0 &+ (6 &* k) &* xiStride)
                    let e = transformB((loadLanes(p, lanes), loadLanes(p + xiStride, lanes), loadLanes(p + 2 &* xiStride, lanes),
                                        loadLanes(p + 3 &* xiStride, lanes), loadLanes(p + 4 &* xiStride, lanes),
                                        loadLanes(p + 5 &* xiStride, lanes)))
                    let r = block + (6 &* k) &* 8
                    store8(e.0, r); store8(e.1, r + 8); store8(e.2, r + 16); store8(e.3, r + 24); store8(e.4, r + 32); store8(e.5, r + 40)
                }
                for j in 0 ..< 6 {
                    @inline(__always) func at(_ i: Int) -> UnsafeMutablePointer<Float> { block + (6 &* i &+ j) &* 8 }
                    let e = transformB((load8(at(0)), load8(at(1)), load8(at(2)), load8(at(3)), load8(at(4)), load8(at(5))))
                    store8(e.0, at(0)); store8(e.1, at(1)); store8(e.2, at(2)); store8(e.3, at(3)); store8(e.4, at(4)); store8(e.5, at(5))
                }
                for l in 0 ..< lanes {
                    let dst = padded + g.patchOffset(cursor)
                    for i in 0 ..< 6 {
                        let r = dst + i &* pw, b = block + ((6 &* i) &* 8 &+ l)
                        r[0] += b[0]; r[1] += b[8]; r[2] += b[16]; r[3] += b[24]; r[4] += b[32]; r[5] += b[40]
                    }
                    cursor.advance(tilesHigh: g.tilesHigh, tilesWide: g.tilesWide)
                }
                t0 &+= 8
            }
            for nn in 0 ..< count {
                let plane = dx + c &* chanStride + (n0 &+ nn) &* (h &* w), from = padded + (nn &* pp &+ pw &+ 1)
                for y in 0 ..< h { copy(from + y &* pw, plane + y &* w, w) }
            }
        }
    }
}

private typealias V8 = SIMD8<Float>

// The 1-D transforms, on 8 lanes at once.

/// Bᵀ d (6 → 6).
@inline(__always) private func transformBT(_ d: (V8, V8, V8, V8, V8, V8)) -> (V8, V8, V8, V8, V8, V8) {
    let t0 = d.4 - 4 * d.2, t1 = d.3 - 4 * d.1
    let t2 = d.4 - d.2, t3 = 2 * (d.3 - d.1)
    return (4 * (d.0 - d.2) + t2, t0 + t1, t0 - t1, t2 + t3, t2 - t3, 4 * (d.1 - d.3) + (d.5 - d.3))
}

/// B v (6 → 6), the adjoint of Bᵀ.
@inline(__always) private func transformB(_ v: (V8, V8, V8, V8, V8, V8)) -> (V8, V8, V8, V8, V8, V8) {
    let s12 = v.1 + v.2, d12 = v.1 - v.2, s34 = v.3 + v.4, d34 = v.3 - v.4
    return (4 * v.0, 4 * (v.5 - d12) - 2 * d34, -5 * v.0 - 4 * s12 - s34, d12 + 2 * d34 - 5 * v.5, v.0 + s12 + s34, v.5)
}

/// Aᵀ m (6 → 4).
@inline(__always) private func transformAT(_ m: (V8, V8, V8, V8, V8, V8)) -> (V8, V8, V8, V8) {
    let s12 = m.1 + m.2, d12 = m.1 - m.2, s34 = m.3 + m.4, d34 = m.3 - m.4
    return (m.0 + s12 + s34, d12 + 2 * d34, s12 + 4 * s34, d12 + 8 * d34 + m.5)
}

/// A y (4 → 6), the adjoint of Aᵀ.
@inline(__always) private func transformA(_ y: (V8, V8, V8, V8)) -> (V8, V8, V8, V8, V8, V8) {
    let s02 = y.0 + y.2, s13 = y.1 + y.3
    let t = y.0 + 4 * y.2, u = 2 * (y.1 + 4 * y.3)
    return (y.0, s02 + s13, s02 - s13, t + u, t - u, y.3)
}

/// G g (3 → 6).
@inline(__always) private func transformG(_ g0: V8, _ g1: V8, _ g2: V8) -> (V8, V8, V8, V8, V8, V8) {
    let sixth: Float = 1.0 / 6.0, twelfth: Float = 1.0 / 12.0, twentyFourth: Float = 1.0 / 24.0
    let a = -sixth * (g0 + g2), b = sixth * g1
    let c = twentyFourth * g0 + sixth * g2, d = twelfth * g1
    return (0.25 * g0, a - b, a + b, c + d, c - d, g2)
}

/// Gᵀ u (6 → 3), the adjoint of G.
@inline(__always) private func transformGT(_ u: (V8, V8, V8, V8, V8, V8)) -> (V8, V8, V8) {
    let sixth: Float = 1.0 / 6.0, twelfth: Float = 1.0 / 12.0, twentyFourth: Float = 1.0 / 24.0
    let s12 = u.1 + u.2, s34 = u.3 + u.4
    return (0.25 * u.0 - sixth * s12 + twentyFourth * s34,
            sixth * (u.2 - u.1) + twelfth * (u.3 - u.4),
            sixth * (s34 - s12) + u.5)
}

/// dst[0..<n] = src[0..<n] (short rows: a plain loop rather than a memmove call).
@inline(__always) private func copy(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    for j in 0 ..< n { dst[j] = src[j] }
}

