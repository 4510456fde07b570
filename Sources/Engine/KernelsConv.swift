// im2col / col2im for Conv2D over a tile of images of a channel-major [C, N, H, W] batch.
// Column matrix layout: col[(ci·k + ky)·k + kx, j], j = image·Ho·Wo + oy·Wo + ox (image relative
// to the tile). "Same" stride-1 convolutions (2p = k − 1) copy whole shifted planes and fix the
// wrapped edge columns; other shapes use per-row loops with precomputed valid ranges.

/// Geometry of one convolution's unfolding (input plane, output plane, window).
public struct ConvGeometry: Sendable, Equatable {
    public let channels: Int
    public let height: Int
    public let width: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    public let outHeight: Int
    public let outWidth: Int

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int, padding: Int) {
        self.channels = channels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        outHeight = (height + 2 * padding - kernel) / stride + 1
        outWidth = (width + 2 * padding - kernel) / stride + 1
    }

    /// Stride 1 and output plane = input plane (2p = k − 1): shifted whole-plane copies apply.
    @inline(__always) public var isSameStride1: Bool {
        stride == 1 && 2 * padding == kernel - 1 && outHeight == height && outWidth == width
    }

    /// Output columns ox whose input column ox·s − p + kx lies inside [0, width).
    @inline(__always) func validColumns(_ kx: Int) -> Range<Int> {
        let off = kx - padding
        // smallest ox with ox·s + off ≥ 0; largest ox with ox·s + off ≤ width − 1
        let lo = off >= 0 ? 0 : (-off + stride - 1) / stride
        let hiIncl = width - 1 - off < 0 ? -1 : (width - 1 - off) / stride
        let hi = min(outWidth, hiIncl + 1), start = min(lo, outWidth)
        return start < hi ? start ..< hi : start ..< start
    }

    /// Output rows oy whose input row oy·s − p + ky lies inside [0, height).
    @inline(__always) func validRows(_ ky: Int) -> Range<Int> {
        let off = ky - padding
        let lo = off >= 0 ? 0 : (-off + stride - 1) / stride
        let hiIncl = height - 1 - off < 0 ? -1 : (height - 1 - off) / stride
        let hi = min(outHeight, hiIncl + 1), start = min(lo, outHeight)
        return start < hi ? start ..< hi : start ..< start
    }
}

public enum ConvKernels {
    /// Unfolds images n0..<n0+count of x (channel stride `chanStride`, image stride H·W) into
    /// col [Cin·k·k, count·Ho·Wo].
    public static func im2col(_ x: UnsafePointer<Float>, chanStride: Int, n0: Int, count: Int, _ g: ConvGeometry,
                              col: UnsafeMutablePointer<Float>) {
        let h = g.height, w = g.width, ho = g.outHeight, wo = g.outWidth, k = g.kernel, s = g.stride, p = g.padding
        let plane = ho &* wo, imgStride = h &* w, rowLen = count &* plane
        let same = g.isSameStride1
        for ci in 0 ..< g.channels {
            let xc = x + ci &* chanStride + n0 &* imgStride
            for ky in 0 ..< k {
                let rows = g.validRows(ky), dyo = ky &- p
                for kx in 0 ..< k {
                    let row = col + ((ci &* k &+ ky) &* k &+ kx) &* rowLen
                    let cols = g.validColumns(kx), dxo = kx &- p
                    if same {
                        // dst[j] = src[j + dyo·w + dxo] over the valid rows, then zero the wrapped columns.
                        let js = rows.lowerBound &* w &+ max(0, -dxo), je = rows.upperBound &* w &- max(0, dxo)
                        for nn in 0 ..< count {
                            let src = xc + nn &* imgStride, dst = row + nn &* plane
                            if rows.lowerBound > 0 { dst.update(repeating: 0, count: rows.lowerBound &* w) }
                            if rows.upperBound < h {
                                (dst + rows.upperBound &* w).update(repeating: 0, count: (h &- rows.upperBound) &* w)
                            }
                            if je > js { (dst + js).update(from: src + (js &+ dyo &* w &+ dxo), count: je &- js) }
                            if cols.count < w {
                                for oy in rows {
                                    let d = dst + oy &* w
                                    for ox in 0 ..< cols.lowerBound { d[ox] = 0 }
                                    for ox in cols.upperBound ..< w { d[ox] = 0 }
                                }
                            }
                        }
                    } else {
                        let lo = cols.lowerBound, hi = cols.upperBound
                        for nn in 0 ..< count {
                            let src = xc + nn &* imgStride, dst = row + nn &* plane
                            if rows.lowerBound > 0 { dst.update(repeating: 0, count: rows.lowerBound &* wo) }
                            if rows.upperBound < ho {
                                (dst + rows.upperBound &* wo).update(repeating: 0, count: (ho &- rows.upperBound) &* wo)
                            }
                            for oy in rows {
                                let d = dst + oy &* wo, srow = src + ((oy &* s &+ dyo) &* w &+ dxo)
                                for ox in 0 ..< lo { d[ox] = 0 }
                                if s == 1 {
                                    if hi > lo { (d + lo).update(from: srow + lo, count: hi &- lo) }
                                } else if s == 2 {
                                    for ox in lo ..< hi { d[ox] = srow[ox &* 2] }
                                } else {
                                    for ox in lo ..< hi { d[ox] = srow[ox &* s] }
                                }
                                for ox in max(hi, lo) ..< wo { d[ox] = 0 }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of im2col: overwrites dX for images n0..<n0+count with the folded col.
    /// `col` is scratch: the same-stride-1 path zeroes its wrapped edge entries in place.
    public static func col2im(_ col: UnsafeMutablePointer<Float>, n0: Int, count: Int, _ g: ConvGeometry,
                              dx: UnsafeMutablePointer<Float>, chanStride: Int) {
        let h = g.height, w = g.width, ho = g.outHeight, wo = g.outWidth, k = g.kernel, s = g.stride, p = g.padding
        let plane = ho &* wo, imgStride = h &* w, rowLen = count &* plane
        if g.isSameStride1 {
            // The centre tap covers the whole plane with offset 0: copy it, then add the other taps.
            for ci in 0 ..< g.channels {
                let dc = dx + ci &* chanStride + n0 &* imgStride
                let centre = col + ((ci &* k &+ p) &* k &+ p) &* rowLen
                dc.update(from: centre, count: count &* imgStride)
                for ky in 0 ..< k {
                    let rows = g.validRows(ky), dyo = ky &- p
                    for kx in 0 ..< k where ky != p || kx != p {
                        let row = col + ((ci &* k &+ ky) &* k &+ kx) &* rowLen
                        let cols = g.validColumns(kx), dxo = kx &- p
                        let js = rows.lowerBound &* w &+ max(0, -dxo), je = rows.upperBound &* w &- max(0, dxo)
                        guard je > js else { continue }
                        let shift = dyo &* w &+ dxo
                        for nn in 0 ..< count {
                            let src = row + nn &* plane, dst = dc + nn &* imgStride
                            if cols.count < w {
                                for oy in rows {
                                    let d = src + oy &* w
                                    for ox in 0 ..< cols.lowerBound { d[ox] = 0 }
                                    for ox in cols.upperBound ..< w { d[ox] = 0 }
                                }
                            }
                            let dd = dst + shift
                            for j in js ..< je { dd[j] += src[j] }
                        }
                    }
                }
            }
            return
        }
        for ci in 0 ..< g.channels {
            (dx + ci &* chanStride + n0 &* imgStride).update(repeating: 0, count: count &* imgStride)
        }
        for ci in 0 ..< g.channels {
            let dc = dx + ci &* chanStride + n0 &* imgStride
            for ky in 0 ..< k {
                let rows = g.validRows(ky), dyo = ky &- p
                for kx in 0 ..< k {
                    let row = col + ((ci &* k &+ ky) &* k &+ kx) &* rowLen
                    let cols = g.validColumns(kx), dxo = kx &- p
                    let lo = cols.lowerBound, hi = cols.upperBound
                    guard hi > lo else { continue }
                    for nn in 0 ..< count {
                        let src = row + nn &* plane, dst = dc + nn &* imgStride
                        for oy in rows {
                            let srow = src + oy &* wo, drow = dst + ((oy &* s &+ dyo) &* w &+ dxo)
                            if s == 1 {
                                for ox in lo ..< hi { drow[ox] += srow[ox] }
                            } else if s == 2 {
                                for ox in lo ..< hi { drow[ox &* 2] += srow[ox] }
                            } else {
                                for ox in lo ..< hi { drow[ox &* s] += srow[ox] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Element-by-element im2col (the specification the fast paths are tested against).
    public static func im2colReference(_ x: UnsafePointer<Float>, chanStride: Int, n0: Int, count: Int, _ g: ConvGeometry,
                                       col: UnsafeMutablePointer<Float>) {
        let h = g.height, w = g.width, ho = g.outHeight, wo = g.outWidth, k = g.kernel
        let plane = ho * wo, rowLen = count * plane
        for ci in 0 ..< g.channels { for ky in 0 ..< k { for kx in 0 ..< k { for nn in 0 ..< count {
            for oy in 0 ..< ho { for ox in 0 ..< wo {
                let iy = oy * g.stride - g.padding + ky, ix = ox * g.stride - g.padding + kx
                let v: Float = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[ci * chanStride + (n0 + nn) * h * w + iy * w + ix] : 0
                col[((ci * k + ky) * k + kx) * rowLen + nn * plane + oy * wo + ox] = v
            } }
        } } } }
    }

    /// Element-by-element col2im (overwrites dX for the tile's images).
    public static func col2imReference(_ col: UnsafePointer<Float>, n0: Int, count: Int, _ g: ConvGeometry,
                                       dx: UnsafeMutablePointer<Float>, chanStride: Int) {
        let h = g.height, w = g.width, ho = g.outHeight, wo = g.outWidth, k = g.kernel
        let plane = ho * wo, rowLen = count * plane
        for ci in 0 ..< g.channels { (dx + ci * chanStride + n0 * h * w).update(repeating: 0, count: count * h * w) }
        for ci in 0 ..< g.channels { for ky in 0 ..< k { for kx in 0 ..< k { for nn in 0 ..< count {
            for oy in 0 ..< ho { for ox in 0 ..< wo {
                let iy = oy * g.stride - g.padding + ky, ix = ox * g.stride - g.padding + kx
                guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                dx[ci * chanStride + (n0 + nn) * h * w + iy * w + ix] += col[((ci * k + ky) * k + kx) * rowLen + nn * plane + oy * wo + ox]
            } }
        } } } }
    }
}
