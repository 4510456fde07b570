// The F(2×2) transforms' two paths (KernelsWinograd.swift): on planes narrower than 8 tiles the
// input, output and output-gradient transforms run on blocks of 8 tiles instead of rows of
// tiles, and on planes of one tile the input-gradient transform does; both must give
// bit-identical results (the golden transcripts pin F(2×2)'s numbers).
@testable import Engine
import Testing

private func bits(_ p: UnsafePointer<Float>, _ n: Int) -> [UInt32] { (0 ..< n).map { p[$0].bitPattern } }

@Suite struct WinogradTransformPathTests {
    @Test(arguments: [(1, 1), (2, 2), (3, 5), (4, 4), (8, 8), (7, 13), (9, 14), (16, 2)])
    func blocksMatchRows(_ plane: (Int, Int)) {
        let (h, w) = plane, c = 3, batch = 7, n0 = 1, count = 5
        let g = WinogradTiling(height: h, width: w)
        #expect(WinogradKernels.isNarrow(g))
        let tiles = count * g.tilesPerImage, per = batch * h * w
        // Inputs with exact zeros and negative zeros among them (their signs must survive too).
        var xs = randomFloats(c * per, seed: 61)
        for i in stride(from: 0, to: xs.count, by: 7) { xs[i] = i % 2 == 0 ? 0 : -0.0 }
        let x = FloatBuffer(count: xs.count)
        for (i, v) in xs.enumerated() { x[i] = v }
        let scratch = FloatBuffer(count: WinogradKernels.scratchCount(g, images: count))
        let a = FloatBuffer(count: 16 * c * tiles), b = FloatBuffer(count: 16 * c * tiles)
        WinogradKernels.transformInputBlocks(x.ptr, channels: c, chanStride: per, n0: n0, count: count, g, v: a.ptr, ldv: tiles,
                                             scratch: scratch.ptr)
        WinogradKernels.transformInputRows(x.ptr, channels: c, chanStride: per, n0: n0, count: count, g, v: b.ptr, ldv: tiles,
                                           rowScratch: scratch.ptr)
        #expect(bits(a.ptr, a.count) == bits(b.ptr, b.count), "input transform")

        // Output transform of M (here the V just computed), with and without a bias.
        let bias = FloatBuffer(count: c)
        for i in 0 ..< c { bias[i] = Float(i) - 1 }
        for withBias in [false, true] {
            let ya = FloatBuffer(count: c * per), yb = FloatBuffer(count: c * per)
            let bp = withBias ? UnsafePointer(bias.ptr) : nil
            WinogradKernels.transformOutputBlocks(a.ptr, cout: c, rows: 0 ..< c, ldm: tiles, g, bias: bp, y: ya.ptr, ld: per, n0: n0, count: count)
            WinogradKernels.transformOutputRows(a.ptr, cout: c, rows: 0 ..< c, ldm: tiles, g, bias: bp, y: yb.ptr, ld: per, n0: n0, count: count)
            #expect(bits(ya.ptr, ya.count) == bits(yb.ptr, yb.count), "output transform, bias \(withBias)")
        }

        // Output-gradient transform of x taken as dY.
        WinogradKernels.transformOutputGradientBlocks(x.ptr, cout: c, ld: per, n0: n0, count: count, g, dm: a.ptr, ldm: tiles)
        WinogradKernels.transformOutputGradientRows(x.ptr, cout: c, ld: per, n0: n0, count: count, g, dm: b.ptr, ldm: tiles)
        #expect(bits(a.ptr, a.count) == bits(b.ptr, b.count), "output-gradient transform")
    }

    /// The input-gradient transform on planes of one tile (8 images per block, 11 images: a
    /// partial block) against the row path, on dV with exact and negative zeros, over a range
    /// of channels.
    @Test(arguments: [(1, 1), (1, 2), (2, 1), (2, 2)])
    func singleTileInputGradientMatchesRows(_ plane: (Int, Int)) {
        let (h, w) = plane, c = 4, batch = 13, n0 = 1, count = 11, rows = 1 ..< 4
        let g = WinogradTiling(height: h, width: w)
        #expect(g.tilesPerImage == 1)
        let per = batch * h * w
        var dvs = randomFloats(16 * c * count, seed: 62)
        for i in stride(from: 0, to: dvs.count, by: 5) { dvs[i] = i % 2 == 0 ? 0 : -0.0 }
        // Two tiles whose patch value R[1][1] is exactly −0: points 5, 7, 13 and 15 are −0, the
        // rest +0 (q_r.1 = v(4r+1) − v(4r+2) + v(4r+3) is −0 for rows 1 and 3, +0 for row 2).
        for t in [3, 9] {
            for xi in 0 ..< 16 { for ch in 0 ..< c { dvs[(xi * c + ch) * count + t] = [5, 7, 13, 15].contains(xi) ? -0.0 : 0 } }
        }
        let dv = FloatBuffer(count: dvs.count)
        for (i, v) in dvs.enumerated() { dv[i] = v }
        let scratch = FloatBuffer(count: WinogradKernels.scratchCount(g, images: count))
        let a = FloatBuffer(count: c * per), b = FloatBuffer(count: c * per)
        WinogradKernels.transformInputGradientSingleTile(dv.ptr, channels: c, rows: rows, ldv: count, g, dx: a.ptr, chanStride: per,
                                                         n0: n0, count: count)
        WinogradKernels.transformInputGradientRows(dv.ptr, channels: c, rows: rows, ldv: count, g, dx: b.ptr, chanStride: per,
                                                   n0: n0, count: count, rowScratch: scratch.ptr)
        #expect(bits(a.ptr, a.count) == bits(b.ptr, b.count))
    }
}
