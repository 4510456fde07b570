// Per-plane kernels for 2×2/stride-2 max pooling: forward records the winning position in the
// window as a byte (0 = top-left, 1 = top-right, 2 = bottom-left, 3 = bottom-right); backward
// writes every input position once (no separate zeroing pass).

public enum PoolKernels {
    /// One plane x [H, W] → y [Ho, Wo], Ho = H/2, Wo = W/2 (floor); same tie and NaN rules as
    /// the generic max pool (first maximum wins; a NaN replaces the running best).
    @inline(__always)
    public static func maxPool2x2(_ x: UnsafePointer<Float>, height h: Int, width w: Int, outHeight ho: Int, outWidth wo: Int,
                                  y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<UInt8>) {
        for oy in 0 ..< ho {
            let r0 = x + (oy &* 2) &* w, r1 = r0 + w
            let yr = y + oy &* wo, ar = argmax + oy &* wo
            for ox in 0 ..< wo {
                let a = r0[ox &* 2], b = r0[ox &* 2 &+ 1], c = r1[ox &* 2], d = r1[ox &* 2 &+ 1]
                var best = a, i: UInt8 = 0
                if b > best || b.isNaN { best = b; i = 1 }
                if c > best || c.isNaN { best = c; i = 2 }
                if d > best || d.isNaN { best = d; i = 3 }
                yr[ox] = best
                ar[ox] = i
            }
        }
    }

    /// Scatters dy [Ho, Wo] into dx [H, W] through the recorded argmax; positions outside every
    /// window (an odd last row or column) get 0.
    @inline(__always)
    public static func maxPool2x2Backward(_ dy: UnsafePointer<Float>, argmax: UnsafePointer<UInt8>, height h: Int, width w: Int,
                                          outHeight ho: Int, outWidth wo: Int, dx: UnsafeMutablePointer<Float>) {
        for oy in 0 ..< ho {
            let d0 = dx + (oy &* 2) &* w, d1 = d0 + w
            let gr = dy + oy &* wo, ar = argmax + oy &* wo
            for ox in 0 ..< wo {
                let g = gr[ox], i = ar[ox]
                d0[ox &* 2] = i == 0 ? g : 0
                d0[ox &* 2 &+ 1] = i == 1 ? g : 0
                d1[ox &* 2] = i == 2 ? g : 0
                d1[ox &* 2 &+ 1] = i == 3 ? g : 0
            }
            if wo &* 2 < w {
                for ix in (wo &* 2) ..< w { d0[ix] = 0; d1[ix] = 0 }
            }
        }
        if ho &* 2 < h { (dx + (ho &* 2) &* w).update(repeating: 0, count: (h &- ho &* 2) &* w) }
    }
}
