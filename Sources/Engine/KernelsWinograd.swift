// Winograd F(2×2, 3×3) for "same" 3×3 convolutions (stride 1, padding 1), forward and both
// gradients, over a tile of images of a channel-major [C, N, H, W] batch.
//
// One output tile is 2×2 pixels and reads a 4×4 input patch (rows 2ty−1…2ty+2, columns
// 2tx−1…2tx+2, zero outside the plane). With the standard matrices
//     Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//     G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
//     Aᵀ = [1 1 1 0; 0 1 −1 −1]
// a tile's output is Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, so a convolution becomes 16 GEMMs (one per
// point ξ of the 4×4 transform domain), M[ξ] = U[ξ] · V[ξ] with U[ξ] [Cout, Cin] the transformed
// weights and V[ξ] [Cin, T] the transformed patches of T tiles: 16 multiplies per 4 outputs
// instead of 36. Because Y is linear in U, the gradients are the adjoints of the same steps:
//     dM = A dY Aᵀ,   dU[ξ] += dM[ξ] · V[ξ]ᵀ,   dg = Gᵀ dU G,
//     dV[ξ] = U[ξ]ᵀ · dM[ξ],   dX += B dV Bᵀ (patches overlap: summed in tile order).
//
// Layouts: U is [Cout][16][ldu] (U[ξ] is the [Cout, Cin] matrix at ξ·ldu with leading
// dimension 16·ldu, ldu = `winogradWeightStride(Cin)`, so one filter's transforms are close
// together); V and dV are [16][C][T] and M and dM are [16][Cout][T] with
// T = images · tilesPerImage and t = image·tilesPerImage + ty·tilesWide + tx. Every transform
// works on whole rows of tiles so its loops over tx run over contiguous memory. On planes
// narrower than 8 tiles (where those loops have no full vector) the input, output and
// output-gradient transforms work instead on blocks of 8 consecutive tiles, one per SIMD lane,
// as KernelsWinograd4.swift does, computing every value with the same operations in the same
// order: both ways give bit-identical results.

/// The tile grid of a same-padded 3×3 convolution on an H×W plane.
public struct WinogradTiling: Sendable, Equatable {
    public let height: Int
    public let width: Int
    public let tilesHigh: Int
    public let tilesWide: Int

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
        tilesHigh = (height + 1) / 2
        tilesWide = (width + 1) / 2
    }

    @inline(__always) public var tilesPerImage: Int { tilesHigh * tilesWide }
    /// Length of a zero-padded row: one column of padding on the left, enough on the right for
    /// the last tile's four columns, plus 16 so a vector load at the last tile stays inside.
    @inline(__always) var paddedWidth: Int { 2 * tilesWide + 18 }
}

// The public kernels are `@inline(never)`: inlined into Conv2D's worker closures, their vector
// loads were left as calls (a call per SIMD8 load).
public enum WinogradKernels {
    /// Floats of per-thread scratch the transforms need (`scratch` arguments) for chunks of up
    /// to `images` images: 20 padded rows for `transformInputGradient`, 5 for `transformInput`
    /// (on narrow planes, a zero-bordered plane per image and a block instead).
    public static func scratchCount(_ g: WinogradTiling, images: Int) -> Int {
        max(20 * g.paddedWidth, isNarrow(g) ? images * narrowPaddedPlane(g) + 16 * 8 : 0)
    }

    /// Planes narrower than 8 tiles take the block path (see the file comment).
    @inline(__always) static func isNarrow(_ g: WinogradTiling) -> Bool { g.tilesWide < 8 }
    /// A zero-bordered plane of the block path: input row/column j − 1 at index j.
    @inline(__always) static func narrowPaddedWidth(_ g: WinogradTiling) -> Int { 2 * g.tilesWide + 2 }
    @inline(__always) static func narrowPaddedPlane(_ g: WinogradTiling) -> Int { (2 * g.tilesHigh + 2) * narrowPaddedWidth(g) }

    /// U[co][ξ][ci] = (G g Gᵀ)[ξ] for output channels `range` of weights [Cout, Cin, 3, 3].
    @inline(never)
    public static func transformWeights(_ w: UnsafePointer<Float>, cout: Int, cin: Int, range: Range<Int>,
                                        u: UnsafeMutablePointer<Float>, ldu: Int) {
        for co in range {
            for ci in 0 ..< cin {
                let g = w + (co &* cin &+ ci) &* 9
                let g00 = g[0], g01 = g[1], g02 = g[2], g10 = g[3], g11 = g[4], g12 = g[5], g20 = g[6], g21 = g[7], g22 = g[8]
                // (G g): row 0 = g row 0; row 1 = ½(r0+r1+r2); row 2 = ½(r0−r1+r2); row 3 = g row 2
                let a0 = (g00, g01, g02)
                let a1 = (0.5 * (g00 + g10 + g20), 0.5 * (g01 + g11 + g21), 0.5 * (g02 + g12 + g22))
                let a2 = (0.5 * (g00 - g10 + g20), 0.5 * (g01 - g11 + g21), 0.5 * (g02 - g12 + g22))
                let a3 = (g20, g21, g22)
                let base = u + (co &* 16 &* ldu &+ ci)
                @inline(__always) func row(_ i: Int, _ a: (Float, Float, Float)) {
                    let p = base + (i &* 4) &* ldu
                    p[0] = a.0
                    p[ldu] = 0.5 * (a.0 + a.1 + a.2)
                    p[2 &* ldu] = 0.5 * (a.0 - a.1 + a.2)
                    p[3 &* ldu] = a.2
                }
                row(0, a0); row(1, a1); row(2, a2); row(3, a3)
            }
        }
    }

    /// gw[co][ci][3×3] += (Gᵀ dU G) for output channels `range`, dU laid out like U.
    @inline(never)
    public static func accumulateWeightGradient(_ du: UnsafePointer<Float>, cout: Int, cin: Int, range: Range<Int>,
                                                gw: UnsafeMutablePointer<Float>, ldu: Int) {
        for co in range {
            for ci in 0 ..< cin {
                let base = du + (co &* 16 &* ldu &+ ci)
                // Gᵀ applied to the columns of each row i: (u0 + ½u1 + ½u2, ½u1 − ½u2, ½u1 + ½u2 + u3)
                @inline(__always) func rowT(_ i: Int) -> (Float, Float, Float) {
                    let p = base + (i &* 4) &* ldu
                    let u0 = p[0], u1 = p[ldu], u2 = p[2 &* ldu], u3 = p[3 &* ldu]
                    return (u0 + 0.5 * u1 + 0.5 * u2, 0.5 * u1 - 0.5 * u2, 0.5 * u1 + 0.5 * u2 + u3)
                }
                let r0 = rowT(0), r1 = rowT(1), r2 = rowT(2), r3 = rowT(3)
                let g = gw + (co &* cin &+ ci) &* 9
                g[0] += r0.0 + 0.5 * r1.0 + 0.5 * r2.0
                g[1] += r0.1 + 0.5 * r1.1 + 0.5 * r2.1
                g[2] += r0.2 + 0.5 * r1.2 + 0.5 * r2.2
                g[3] += 0.5 * r1.0 - 0.5 * r2.0
                g[4] += 0.5 * r1.1 - 0.5 * r2.1
                g[5] += 0.5 * r1.2 - 0.5 * r2.2
                g[6] += 0.5 * r1.0 + 0.5 * r2.0 + r3.0
                g[7] += 0.5 * r1.1 + 0.5 * r2.1 + r3.1
                g[8] += 0.5 * r1.2 + 0.5 * r2.2 + r3.2
            }
        }
    }

    /// V[ξ][c][t] = (Bᵀ d B)[ξ] for every channel and tile of images n0..<n0+count of x.
    /// V has rows of length `ldv`, the chunk's count · tilesPerImage tiles in their first columns.
    @inline(never)
    public static func transformInput(_ x: UnsafePointer<Float>, channels: Int, chanStride: Int, n0: Int, count: Int,
                                      _ g: WinogradTiling, v: UnsafeMutablePointer<Float>, ldv: Int,
                                      scratch: UnsafeMutablePointer<Float>) {
        if isNarrow(g) {
            transformInputBlocks(x, channels: channels, chanStride: chanStride, n0: n0, count: count, g, v: v, ldv: ldv, scratch: scratch)
        } else {
            transformInputRows(x, channels: channels, chanStride: chanStride, n0: n0, count: count, g, v: v, ldv: ldv, rowScratch: scratch)
        }
    }

    /// `transformInput` by rows of tiles.
    static func transformInputRows(_ x: UnsafePointer<Float>, channels: Int, chanStride: Int, n0: Int, count: Int,
                                   _ g: WinogradTiling, v: UnsafeMutablePointer<Float>, ldv: Int,
                                   rowScratch: UnsafeMutablePointer<Float>) {
        let h = g.height, w = g.width, tw = g.tilesWide, pw = g.paddedWidth, tpi = g.tilesPerImage
        let xiStride = channels &* ldv
        // Four padded rows (index j ↔ input column j − 1) and a row of zeros standing in for
        // input rows outside the plane. Only indices 1…w of the padded rows are ever rewritten.
        rowScratch.update(repeating: 0, count: 5 &* pw)
        let vr0 = rowScratch, vr1 = rowScratch + pw, vr2 = rowScratch + 2 &* pw, vr3 = rowScratch + 3 &* pw
        let zeros = UnsafePointer(rowScratch + 4 &* pw)
        for c in 0 ..< channels {
            for nn in 0 ..< count {
                let plane = x + c &* chanStride + (n0 &+ nn) &* (h &* w)
                let vImage = v + c &* ldv + nn &* tpi
                for ty in 0 ..< g.tilesHigh {
                    let top = 2 &* ty &- 1
                    @inline(__always) func rowPtr(_ i: Int) -> UnsafePointer<Float> {
                        let y = top &+ i
                        return y >= 0 && y < h ? plane + y &* w : zeros
                    }
                    // Vertical transform of input rows 2ty−1…2ty+2:
                    // e0 = d0 − d2, e1 = d1 + d2, e2 = d2 − d1, e3 = d1 − d3.
                    let d0 = rowPtr(0), d1 = rowPtr(1), d2 = rowPtr(2), d3 = rowPtr(3)
                    let o0 = vr0 + 1, o1 = vr1 + 1, o2 = vr2 + 1, o3 = vr3 + 1
                    var j = 0
                    while j &+ 8 <= w {
                        let a = load8(d0 + j), b = load8(d1 + j), cc = load8(d2 + j), d = load8(d3 + j)
                        store8(a - cc, o0 + j); store8(b + cc, o1 + j); store8(cc - b, o2 + j); store8(b - d, o3 + j)
                        j &+= 8
                    }
                    while j < w {
                        let a = d0[j], b = d1[j], cc = d2[j], d = d3[j]
                        o0[j] = a - cc; o1[j] = b + cc; o2[j] = cc - b; o3[j] = b - d
                        j &+= 1
                    }
                    // Horizontal transform of each vertical row r: tile tx reads padded columns
                    // 2tx…2tx+3 and gives (p0 − p2, p1 + p2, p2 − p1, p1 − p3) at ξ = 4r + 0…3.
                    let vRow = vImage + ty &* tw
                    @inline(__always) func horizontal(_ src: UnsafePointer<Float>, _ r: Int) {
                        let q0 = vRow + (4 &* r) &* xiStride, q1 = q0 + xiStride, q2 = q1 + xiStride, q3 = q2 + xiStride
                        var tx = 0
                        while tx &+ 8 <= tw {
                            let lo = load16(src + 2 &* tx), hi = load16(src + (2 &* tx &+ 2))
                            let p0 = lo.evenHalf, p1 = lo.oddHalf, p2 = hi.evenHalf, p3 = hi.oddHalf
                            store8(p0 - p2, q0 + tx); store8(p1 + p2, q1 + tx); store8(p2 - p1, q2 + tx); store8(p1 - p3, q3 + tx)
                            tx &+= 8
                        }
                        while tx < tw {
                            let s = src + 2 &* tx
                            let p0 = s[0], p1 = s[1], p2 = s[2], p3 = s[3]
                            q0[tx] = p0 - p2; q1[tx] = p1 + p2; q2[tx] = p2 - p1; q3[tx] = p1 - p3
                            tx &+= 1
                        }
                    }
                    horizontal(vr0, 0); horizontal(vr1, 1); horizontal(vr2, 2); horizontal(vr3, 3)
                }
            }
        }
    }

    /// Y for images n0..<n0+count and output channels `rows` (of `cout`) from M (laid out like V,
    /// rows of length `ldm`): Y = Aᵀ M A per tile, cropped to the plane, plus the channel's bias
    /// if any. y has channel stride `ld` (N·H·W) and image stride H·W.
    @inline(never)
    public static func transformOutput(_ m: UnsafePointer<Float>, cout: Int, rows: Range<Int>, ldm: Int, _ g: WinogradTiling,
                                       bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, ld: Int,
                                       n0: Int, count: Int) {
        if isNarrow(g) {
            transformOutputBlocks(m, cout: cout, rows: rows, ldm: ldm, g, bias: bias, y: y, ld: ld, n0: n0, count: count)
        } else {
            transformOutputRows(m, cout: cout, rows: rows, ldm: ldm, g, bias: bias, y: y, ld: ld, n0: n0, count: count)
        }
    }

    /// `transformOutput` by rows of tiles.
    static func transformOutputRows(_ m: UnsafePointer<Float>, cout: Int, rows: Range<Int>, ldm: Int, _ g: WinogradTiling,
                                    bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, ld: Int, n0: Int, count: Int) {
        let h = g.height, w = g.width, tw = g.tilesWide, tpi = g.tilesPerImage
        let xiStride = cout &* ldm
        for co in rows {
            let b = bias?[co] ?? 0
            for nn in 0 ..< count {
                let out = y + co &* ld + (n0 &+ nn) &* (h &* w)
                let mImage = m + co &* ldm + nn &* tpi
                for ty in 0 ..< g.tilesHigh {
                    let mRow = mImage + ty &* tw
                    let oy = 2 &* ty
                    let r0 = out + oy &* w
                    let hasRow1 = oy &+ 1 < h
                    let r1 = out + (hasRow1 ? (oy &+ 1) &* w : oy &* w)
                    // Columns of the 4×4 M folded by Aᵀ (a = rows 0+1+2, c = rows 1−2−3), then the
                    // rows likewise; eight tiles at a time while all their 16 columns are inside.
                    var tx = 0
                    while 2 &* tx &+ 16 <= w {
                        @inline(__always) func at(_ xi: Int) -> SIMD8<Float> { load8(mRow + (xi &* xiStride &+ tx)) }
                        let a0 = at(0) + at(4) + at(8), a1 = at(1) + at(5) + at(9)
                        let a2 = at(2) + at(6) + at(10), a3 = at(3) + at(7) + at(11)
                        var row = SIMD16<Float>()
                        row.evenHalf = a0 + a1 + a2 + b
                        row.oddHalf = a1 - a2 - a3 + b
                        store16(row, r0 + 2 &* tx)
                        if hasRow1 {
                            let c0 = at(4) - at(8) - at(12), c1 = at(5) - at(9) - at(13)
                            let c2 = at(6) - at(10) - at(14), c3 = at(7) - at(11) - at(15)
                            row.evenHalf = c0 + c1 + c2 + b
                            row.oddHalf = c1 - c2 - c3 + b
                            store16(row, r1 + 2 &* tx)
                        }
                        tx &+= 8
                    }
                    while tx < tw {
                        @inline(__always) func at(_ xi: Int) -> Float { mRow[xi &* xiStride &+ tx] }
                        let a0 = at(0) + at(4) + at(8), a1 = at(1) + at(5) + at(9)
                        let a2 = at(2) + at(6) + at(10), a3 = at(3) + at(7) + at(11)
                        let c0 = at(4) - at(8) - at(12), c1 = at(5) - at(9) - at(13)
                        let c2 = at(6) - at(10) - at(14), c3 = at(7) - at(11) - at(15)
                        let ox = 2 &* tx
                        r0[ox] = a0 + a1 + a2 + b
                        if hasRow1 { r1[ox] = c0 + c1 + c2 + b }
                        if ox &+ 1 < w {
                            r0[ox &+ 1] = a1 - a2 - a3 + b
                            if hasRow1 { r1[ox &+ 1] = c1 - c2 - c3 + b }
                        }
                        tx &+= 1
                    }
                }
            }
        }
    }

    /// dM[ξ][co][t] = (A dY Aᵀ)[ξ] for images n0..<n0+count of dy (channel stride `ld`),
    /// entries of dY outside the plane being 0.
    @inline(never)
    public static func transformOutputGradient(_ dy: UnsafePointer<Float>, cout: Int, ld: Int, n0: Int, count: Int,
                                               _ g: WinogradTiling, dm: UnsafeMutablePointer<Float>, ldm: Int) {
        if isNarrow(g) {
            transformOutputGradientBlocks(dy, cout: cout, ld: ld, n0: n0, count: count, g, dm: dm, ldm: ldm)
        } else {
            transformOutputGradientRows(dy, cout: cout, ld: ld, n0: n0, count: count, g, dm: dm, ldm: ldm)
        }
    }

    /// `transformOutputGradient` by rows of tiles.
    static func transformOutputGradientRows(_ dy: UnsafePointer<Float>, cout: Int, ld: Int, n0: Int, count: Int,
                                            _ g: WinogradTiling, dm: UnsafeMutablePointer<Float>, ldm: Int) {
        let h = g.height, w = g.width, tw = g.tilesWide, tpi = g.tilesPerImage
        let xiStride = cout &* ldm
        for co in 0 ..< cout {
            for nn in 0 ..< count {
                let plane = dy + co &* ld + (n0 &+ nn) &* (h &* w)
                let dImage = dm + co &* ldm + nn &* tpi
                for ty in 0 ..< g.tilesHigh {
                    let oy = 2 &* ty
                    let r0 = plane + oy &* w
                    let hasRow1 = oy &+ 1 < h
                    let dRow = dImage + ty &* tw
                    // A applied to rows (a(d0, d1) = (d0, d0 + d1, d0 − d1, −d1)), then to columns.
                    var tx = 0
                    if hasRow1 {
                        while 2 &* tx &+ 16 <= w {
                            let top = load16(r0 + 2 &* tx), bottom = load16(r0 + (w &+ 2 &* tx))
                            let y00 = top.evenHalf, y01 = top.oddHalf, y10 = bottom.evenHalf, y11 = bottom.oddHalf
                            let h0 = (y00, y00 + y01, y00 - y01, -y01)
                            let h1 = (y10, y10 + y11, y10 - y11, -y11)
                            @inline(__always) func put(_ xi: Int, _ v: SIMD8<Float>) { store8(v, dRow + (xi &* xiStride &+ tx)) }
                            put(0, h0.0); put(1, h0.1); put(2, h0.2); put(3, h0.3)
                            put(4, h0.0 + h1.0); put(5, h0.1 + h1.1); put(6, h0.2 + h1.2); put(7, h0.3 + h1.3)
                            put(8, h0.0 - h1.0); put(9, h0.1 - h1.1); put(10, h0.2 - h1.2); put(11, h0.3 - h1.3)
                            put(12, -h1.0); put(13, -h1.1); put(14, -h1.2); put(15, -h1.3)
                            tx &+= 8
                        }
                    }
                    while tx < tw {
                        let ox = 2 &* tx
                        let hasCol1 = ox &+ 1 < w
                        let y00 = r0[ox], y01: Float = hasCol1 ? r0[ox &+ 1] : 0
                        let y10: Float = hasRow1 ? r0[ox &+ w] : 0
                        let y11: Float = hasRow1 && hasCol1 ? r0[ox &+ w &+ 1] : 0
                        let h0 = (y00, y00 + y01, y00 - y01, -y01)
                        let h1 = (y10, y10 + y11, y10 - y11, -y11)
                        @inline(__always) func put(_ xi: Int, _ v: Float) { dRow[xi &* xiStride &+ tx] = v }
                        put(0, h0.0); put(1, h0.1); put(2, h0.2); put(3, h0.3)
                        put(4, h0.0 + h1.0); put(5, h0.1 + h1.1); put(6, h0.2 + h1.2); put(7, h0.3 + h1.3)
                        put(8, h0.0 - h1.0); put(9, h0.1 - h1.1); put(10, h0.2 - h1.2); put(11, h0.3 - h1.3)
                        put(12, -h1.0); put(13, -h1.1); put(14, -h1.2); put(15, -h1.3)
                        tx &+= 1
                    }
                }
            }
        }
    }

    /// Overwrites dX for images n0..<n0+count and input channels `rows` (of `channels`) with Σ
    /// over tiles of B dV Bᵀ placed on each tile's 4×4 patch (parts outside the plane dropped).
    @inline(never)
    public static func transformInputGradient(_ dv: UnsafePointer<Float>, channels: Int, rows: Range<Int>, ldv: Int, _ g: WinogradTiling,
                                              dx: UnsafeMutablePointer<Float>, chanStride: Int, n0: Int, count: Int,
                                              scratch rowScratch: UnsafeMutablePointer<Float>) {
        if g.tilesPerImage == 1 {
            transformInputGradientSingleTile(dv, channels: channels, rows: rows, ldv: ldv, g, dx: dx, chanStride: chanStride,
                                             n0: n0, count: count)
        } else {
            transformInputGradientRows(dv, channels: channels, rows: rows, ldv: ldv, g, dx: dx, chanStride: chanStride,
                                       n0: n0, count: count, rowScratch: rowScratch)
        }
    }

    /// `transformInputGradient` by rows of tiles.
    static func transformInputGradientRows(_ dv: UnsafePointer<Float>, channels: Int, rows: Range<Int>, ldv: Int, _ g: WinogradTiling,
                                           dx: UnsafeMutablePointer<Float>, chanStride: Int, n0: Int, count: Int,
                                           rowScratch: UnsafeMutablePointer<Float>) {
        let h = g.height, w = g.width, tw = g.tilesWide, pw = g.paddedWidth, tpi = g.tilesPerImage
        let xiStride = channels &* ldv
        // Scratch: a ring of 4 padded rows (index j ↔ input column j − 1) accumulating the patch
        // rows of consecutive tile rows, then 16 per-tile arrays R[i][k] (patch row i, column k;
        // columns 2 and 3 stored one slot to the right so that slot j holds tile j − 1).
        let ring = rowScratch
        let parts = rowScratch + 4 &* pw
        @inline(__always) func part(_ i: Int, _ k: Int) -> UnsafeMutablePointer<Float> { parts + (4 &* i &+ k) &* pw }
        for i in 0 ..< 4 { part(i, 2)[0] = 0; part(i, 3)[0] = 0; part(i, 0)[tw] = 0; part(i, 1)[tw] = 0 }
        for c in rows {
            for nn in 0 ..< count {
                let plane = dx + c &* chanStride + (n0 &+ nn) &* (h &* w)
                let vImage = dv + c &* ldv + nn &* tpi
                ring.update(repeating: 0, count: 4 &* pw)
                for ty in 0 ..< g.tilesHigh {
                    let vRow = vImage + ty &* tw
                    // Per tile: B applied to the columns of each row r of dV, b(v) = (v0, v1 − v2 + v3,
                    // v1 + v2 − v0, −v3), then to the rows: patch row i = b over rows of those.
                    var tx = 0
                    while tx &+ 8 <= tw {
                        @inline(__always) func at(_ xi: Int) -> SIMD8<Float> { load8(vRow + (xi &* xiStride &+ tx)) }
                        @inline(__always) func colB(_ r: Int) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
                            let v0 = at(4 &* r), v1 = at(4 &* r &+ 1), v2 = at(4 &* r &+ 2), v3 = at(4 &* r &+ 3)
                            return (v0, v1 - v2 + v3, v1 + v2 - v0, -v3)
                        }
                        let q0 = colB(0), q1 = colB(1), q2 = colB(2), q3 = colB(3)
                        @inline(__always) func put(_ i: Int, _ r: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)) {
                            store8(r.0, part(i, 0) + tx); store8(r.1, part(i, 1) + tx)
                            store8(r.2, part(i, 2) + (tx &+ 1)); store8(r.3, part(i, 3) + (tx &+ 1))
                        }
                        put(0, q0)
                        put(1, (q1.0 - q2.0 + q3.0, q1.1 - q2.1 + q3.1, q1.2 - q2.2 + q3.2, q1.3 - q2.3 + q3.3))
                        put(2, (q1.0 + q2.0 - q0.0, q1.1 + q2.1 - q0.1, q1.2 + q2.2 - q0.2, q1.3 + q2.3 - q0.3))
                        put(3, (-q3.0, -q3.1, -q3.2, -q3.3))
                        tx &+= 8
                    }
                    while tx < tw {
                        @inline(__always) func at(_ xi: Int) -> Float { vRow[xi &* xiStride &+ tx] }
                        @inline(__always) func colB(_ r: Int) -> (Float, Float, Float, Float) {
                            let v0 = at(4 &* r), v1 = at(4 &* r &+ 1), v2 = at(4 &* r &+ 2), v3 = at(4 &* r &+ 3)
                            return (v0, v1 - v2 + v3, v1 + v2 - v0, -v3)
                        }
                        let q0 = colB(0), q1 = colB(1), q2 = colB(2), q3 = colB(3)
                        @inline(__always) func put(_ i: Int, _ r: (Float, Float, Float, Float)) {
                            part(i, 0)[tx] = r.0; part(i, 1)[tx] = r.1
                            part(i, 2)[tx &+ 1] = r.2; part(i, 3)[tx &+ 1] = r.3
                        }
                        put(0, q0)
                        put(1, (q1.0 - q2.0 + q3.0, q1.1 - q2.1 + q3.1, q1.2 - q2.2 + q3.2, q1.3 - q2.3 + q3.3))
                        put(2, (q1.0 + q2.0 - q0.0, q1.1 + q2.1 - q0.1, q1.2 + q2.2 - q0.2, q1.3 + q2.3 - q0.3))
                        put(3, (-q3.0, -q3.1, -q3.2, -q3.3))
                        tx &+= 1
                    }
                    // Overlap-add along the row: padded column 2j gets R[i][0] of tile j plus R[i][2]
                    // of tile j − 1, column 2j + 1 gets R[i][1] of tile j plus R[i][3] of tile j − 1.
                    // Patch row i of this tile row is padded row 2ty + i, ring slot (2ty + i) % 4.
                    let base = 2 &* ty
                    for i in 0 ..< 4 {
                        let acc = ring + ((base &+ i) & 3) &* pw
                        let e0 = part(i, 0), e2 = part(i, 2), o1 = part(i, 1), o3 = part(i, 3)
                        var j = 0
                        while j &+ 8 <= tw &+ 1 {
                            var pair = SIMD16<Float>()
                            pair.evenHalf = load8(e0 + j) + load8(e2 + j)
                            pair.oddHalf = load8(o1 + j) + load8(o3 + j)
                            store16(load16(acc + 2 &* j) + pair, acc + 2 &* j)
                            j &+= 8
                        }
                        while j <= tw {
                            acc[2 &* j] += e0[j] + e2[j]
                            acc[2 &* j &+ 1] += o1[j] + o3[j]
                            j &+= 1
                        }
                    }
                    // Padded rows 2ty and 2ty+1 are complete (later tile rows start at 2ty+2):
                    // copy them to input rows 2ty−1 and 2ty, then clear their slots.
                    for i in 0 ..< 2 {
                        let y = base &+ i &- 1
                        let slot = ring + ((base &+ i) & 3) &* pw
                        if y >= 0 && y < h { (plane + y &* w).update(from: slot + 1, count: w) }
                        slot.update(repeating: 0, count: pw)
                    }
                }
                // The last tile row's two remaining padded rows: 2·th and 2·th+1.
                let base = 2 &* g.tilesHigh
                for i in 0 ..< 2 {
                    let y = base &+ i &- 1
                    let slot = ring + ((base &+ i) & 3) &* pw
                    if y >= 0 && y < h { (plane + y &* w).update(from: slot + 1, count: w) }
                }
            }
        }
    }
}

// The block path of narrow planes: 8 consecutive tiles per block, one per lane; each value is
// computed by the same expression, in the same order, as in the functions above.
extension WinogradKernels {
    /// `transformInputGradient` on a plane of one tile (at most 2×2), 8 images per block: no
    /// patches overlap, so input pixel (y, x) is patch value R[y + 1][x + 1] plus 0 (the row
    /// path adds each patch value to zeros, which turns −0 into +0; so does this).
    static func transformInputGradientSingleTile(_ dv: UnsafePointer<Float>, channels: Int, rows: Range<Int>, ldv: Int,
                                                 _ g: WinogradTiling, dx: UnsafeMutablePointer<Float>, chanStride: Int,
                                                 n0: Int, count: Int) {
        typealias V8 = SIMD8<Float>
        let h = g.height, w = g.width, plane = h &* w
        let xiStride = channels &* ldv
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * 8) { buffer in
            guard let block = buffer.baseAddress else { return }
            for c in rows {
                let src = dv + c &* ldv, out = dx + c &* chanStride + n0 &* plane
                var t0 = 0
                while t0 < count {
                    let lanes = min(8, count &- t0)
                    @inline(__always) func at(_ xi: Int) -> V8 { loadLanes(src + (xi &* xiStride &+ t0), lanes) }
                    // Columns 1 and 2 of B applied along each row r of dV (q_r.1, q_r.2 of the row path).
                    @inline(__always) func q1(_ r: Int) -> V8 { at(4 &* r &+ 1) - at(4 &* r &+ 2) + at(4 &* r &+ 3) }
                    @inline(__always) func q2(_ r: Int) -> V8 { at(4 &* r &+ 1) + at(4 &* r &+ 2) - at(4 &* r) }
                    let a0 = q1(0), a1 = q1(1), a2 = q1(2), a3 = q1(3)
                    let b0 = q2(0), b1 = q2(1), b2 = q2(2), b3 = q2(3)
                    let zero = V8()
                    // Patch rows 1 and 2 (q1 − q2 + q3, q1 + q2 − q0) at columns 1 and 2.
                    store8(a1 - a2 + a3 + zero, block)
                    store8(b1 - b2 + b3 + zero, block + 8)
                    store8(a1 + a2 - a0 + zero, block + 16)
                    store8(b1 + b2 - b0 + zero, block + 24)
                    for l in 0 ..< lanes {
                        let o = out + (t0 &+ l) &* plane
                        for y in 0 ..< h { for x in 0 ..< w { o[y &* w &+ x] = block[(2 &* y &+ x) &* 8 &+ l] } }
                    }
                    t0 &+= 8
                }
            }
        }
    }

    /// `transformInput` on a narrow plane: each tile's 4×4 patch gathered from zero-bordered
    /// copies of the planes into a block (vector 4i + j = patch row i, column j), then the
    /// vertical and the horizontal pass.
    static func transformInputBlocks(_ x: UnsafePointer<Float>, channels: Int, chanStride: Int, n0: Int, count: Int,
                                     _ g: WinogradTiling, v: UnsafeMutablePointer<Float>, ldv: Int,
                                     scratch: UnsafeMutablePointer<Float>) {
        let h = g.height, w = g.width, pw = narrowPaddedWidth(g), pp = narrowPaddedPlane(g)
        let xiStride = channels &* ldv, tiles = count &* g.tilesPerImage
        let padded = scratch, block = scratch + count &* pp
        // Only the planes' interiors are rewritten per channel: the borders stay zero.
        padded.update(repeating: 0, count: count &* pp)
        for c in 0 ..< channels {
            for nn in 0 ..< count {
                let plane = x + c &* chanStride + (n0 &+ nn) &* (h &* w), dst = padded + (nn &* pp &+ pw &+ 1)
                for y in 0 ..< h { for j in 0 ..< w { dst[y &* pw &+ j] = plane[y &* w &+ j] } }
            }
            var cursor = WinogradTileCursor()
            var t0 = 0
            while t0 < tiles {
                let lanes = min(8, tiles &- t0)
                if lanes < 8 { block.update(repeating: 0, count: 16 &* 8) }
                for l in 0 ..< lanes {
                    let src = padded + (cursor.image &* pp &+ (2 &* cursor.ty) &* pw &+ 2 &* cursor.tx)
                    for i in 0 ..< 4 {
                        let r = src + i &* pw, b = block + ((4 &* i) &* 8 &+ l)
                        b[0] = r[0]; b[8] = r[1]; b[16] = r[2]; b[24] = r[3]
                    }
                    cursor.advance(tilesHigh: g.tilesHigh, tilesWide: g.tilesWide)
                }
                // Vertical: e0 = d0 − d2, e1 = d1 + d2, e2 = d2 − d1, e3 = d1 − d3 down each column.
                for j in 0 ..< 4 {
                    let p0 = block + j &* 8, p1 = p0 + 32, p2 = p0 + 64, p3 = p0 + 96
                    let a = load8(p0), b = load8(p1), cc = load8(p2), d = load8(p3)
                    store8(a - cc, p0); store8(b + cc, p1); store8(cc - b, p2); store8(b - d, p3)
                }
                // Horizontal along each row r: (p0 − p2, p1 + p2, p2 − p1, p1 − p3) at ξ = 4r + 0…3.
                let out = v + (c &* ldv &+ t0)
                for r in 0 ..< 4 {
                    let e = block + (4 &* r) &* 8
                    let p0 = load8(e), p1 = load8(e + 8), p2 = load8(e + 16), p3 = load8(e + 24)
                    let q = out + (4 &* r) &* xiStride
                    storeLanes(p0 - p2, q, lanes); storeLanes(p1 + p2, q + xiStride, lanes)
                    storeLanes(p2 - p1, q + 2 &* xiStride, lanes); storeLanes(p1 - p3, q + 3 &* xiStride, lanes)
                }
                t0 &+= 8
            }
        }
    }

    /// `transformOutput` on a narrow plane.
    static func transformOutputBlocks(_ m: UnsafePointer<Float>, cout: Int, rows: Range<Int>, ldm: Int, _ g: WinogradTiling,
                                      bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, ld: Int, n0: Int, count: Int) {
        let h = g.height, w = g.width
        let xiStride = cout &* ldm, tiles = count &* g.tilesPerImage
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * 8) { buffer in
            guard let block = buffer.baseAddress else { return }
            for co in rows {
                let b = bias?[co] ?? 0
                let out = y + co &* ld + n0 &* (h &* w), mc = m + co &* ldm
                var cursor = WinogradTileCursor()
                var t0 = 0
                while t0 < tiles {
                    let lanes = min(8, tiles &- t0)
                    @inline(__always) func at(_ xi: Int) -> SIMD8<Float> { loadLanes(mc + (xi &* xiStride &+ t0), lanes) }
                    let a0 = at(0) + at(4) + at(8), a1 = at(1) + at(5) + at(9)
                    let a2 = at(2) + at(6) + at(10), a3 = at(3) + at(7) + at(11)
                    let c0 = at(4) - at(8) - at(12), c1 = at(5) - at(9) - at(13)
                    let c2 = at(6) - at(10) - at(14), c3 = at(7) - at(11) - at(15)
                    // Output pixel (r, s) of each tile at vector 2r + s.
                    store8(a0 + a1 + a2 + b, block); store8(a1 - a2 - a3 + b, block + 8)
                    store8(c0 + c1 + c2 + b, block + 16); store8(c1 - c2 - c3 + b, block + 24)
                    for l in 0 ..< lanes {
                        let oy = 2 &* cursor.ty, ox = 2 &* cursor.tx
                        let o = out + ((cursor.image &* h &+ oy) &* w &+ ox)
                        let hasRow1 = oy &+ 1 < h, hasCol1 = ox &+ 1 < w
                        o[0] = block[l]
                        if hasCol1 { o[1] = block[8 &+ l] }
                        if hasRow1 {
                            o[w] = block[16 &+ l]
                            if hasCol1 { o[w &+ 1] = block[24 &+ l] }
                        }
                        cursor.advance(tilesHigh: g.tilesHigh, tilesWide: g.tilesWide)
                    }
                    t0 &+= 8
                }
            }
        }
    }

    /// `transformOutputGradient` on a narrow plane.
    static func transformOutputGradientBlocks(_ dy: UnsafePointer<Float>, cout: Int, ld: Int, n0: Int, count: Int,
                                              _ g: WinogradTiling, dm: UnsafeMutablePointer<Float>, ldm: Int) {
        let h = g.height, w = g.width
        let xiStride = cout &* ldm, tiles = count &* g.tilesPerImage
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * 8) { buffer in
            guard let block = buffer.baseAddress else { return }
            for co in 0 ..< cout {
                let src = dy + co &* ld + n0 &* (h &* w)
                var cursor = WinogradTileCursor()
                var t0 = 0
                while t0 < tiles {
                    let lanes = min(8, tiles &- t0)
                    // dY of each tile (pixel (r, s) at vector 2r + s), 0 outside the plane.
                    if lanes < 8 { block.update(repeating: 0, count: 4 &* 8) }
                    for l in 0 ..< lanes {
                        let oy = 2 &* cursor.ty, ox = 2 &* cursor.tx
                        let p = src + ((cursor.image &* h &+ oy) &* w &+ ox)
                        let hasRow1 = oy &+ 1 < h, hasCol1 = ox &+ 1 < w
                        block[l] = p[0]
                        block[8 &+ l] = hasCol1 ? p[1] : 0
                        block[16 &+ l] = hasRow1 ? p[w] : 0
                        block[24 &+ l] = hasRow1 && hasCol1 ? p[w &+ 1] : 0
                        cursor.advance(tilesHigh: g.tilesHigh, tilesWide: g.tilesWide)
                    }
                    let y00 = load8(block), y01 = load8(block + 8), y10 = load8(block + 16), y11 = load8(block + 24)
                    // Negation as −1 · v: SIMD's prefix minus is 0 − v, which turns −0 into +0 where
                    // the scalar minus of the row path gives −0.
                    let h0 = (y00, y00 + y01, y00 - y01, -1 * y01)
                    let h1 = (y10, y10 + y11, y10 - y11, -1 * y11)
                    let out = dm + (co &* ldm &+ t0)
                    @inline(__always) func put(_ xi: Int, _ v: SIMD8<Float>) { storeLanes(v, out + xi &* xiStride, lanes) }
                    put(0, h0.0); put(1, h0.1); put(2, h0.2); put(3, h0.3)
                    put(4, h0.0 + h1.0); put(5, h0.1 + h1.1); put(6, h0.2 + h1.2); put(7, h0.3 + h1.3)
                    put(8, h0.0 - h1.0); put(9, h0.1 - h1.1); put(10, h0.2 - h1.2); put(11, h0.3 - h1.3)
                    put(12, -1 * h1.0); put(13, -1 * h1.1); put(14, -1 * h1.2); put(15, -1 * h1.3)
                    t0 &+= 8
                }
            }
        }
    }
}

/// The image and tile position of consecutive tiles t = image·tilesPerImage + ty·tilesWide + tx
/// (the block paths of both Winograd variants).
struct WinogradTileCursor {
    var image = 0, ty = 0, tx = 0

    @inline(__always) mutating func advance(tilesHigh: Int, tilesWide: Int) {
        tx &+= 1
        if tx == tilesWide {
            tx = 0; ty &+= 1
            if ty == tilesHigh { ty = 0; image &+= 1 }
        }
    }
}

// Unaligned vector loads and stores shared by the Winograd kernels.

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always) func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

@inline(__always) func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// The first `n` (≤ 8) floats at p, the other lanes 0 (a partial block goes through memory:
/// no lane is addressed by a variable index).
@inline(__always) func loadLanes(_ p: UnsafePointer<Float>, _ n: Int) -> SIMD8<Float> {
    if n == 8 { return load8(p) }
    var v = SIMD8<Float>()
    withUnsafeMutableBytes(of: &v) { raw in
        let f = raw.bindMemory(to: Float.self)
        for l in 0 ..< n { f[l] = p[l] }
    }
    return v
}

/// Stores the first `n` (≤ 8) lanes of v at p.
@inline(__always) func storeLanes(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    if n == 8 { store8(v, p); return }
    withUnsafeBytes(of: v) { raw in
        let f = raw.bindMemory(to: Float.self)
        for l in 0 ..< n { p[l] = f[l] }
    }
}
