// The F(2×2) transforms' two paths (KernelsWinograd.swift): on planes narrower than 8 tiles the
// input, output and output-gradient transforms run on blocks of 8 tiles instead of rows of
// tiles; both must give bit-identical results (the golden transcripts pin F(2×2)'s numbers).
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
}
