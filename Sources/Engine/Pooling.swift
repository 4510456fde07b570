// The pooling layers: max pooling (square window, any stride, no padding; a specialised 2×2
// stride-2 path over KernelsPool.swift) and average pooling (window = stride, no padding).
// Evaluation forwards write into the arena and keep no argmax.

/// Max pooling, window k, stride s, no padding; ties go to the first maximum in row-major order
/// and a NaN in the window propagates (the last NaN wins). 2×2 windows with stride 2 take a
/// specialised path that records the argmax as one byte per output (0…3, row-major in the window).
public final class MaxPool2D: Layer {
    public let name: String
    public let kernel: Int
    public let stride: Int
    public var computesInputGradient = true
    /// Output memory of recording forwards.
    private let output = FloatBuffer(count: 0)
    private var argmax: UnsafeMutablePointer<Int32> = .allocate(capacity: 1)
    private var argmaxCapacity = 0
    private var argmax2: UnsafeMutablePointer<UInt8> = .allocate(capacity: 1)
    private var argmax2Capacity = 0
    private var input: Activation?

    public init(_ name: String, kernel: Int = 2, stride: Int = 2) {
        self.name = name
        self.kernel = kernel
        self.stride = stride
    }

    deinit {
        argmax.deallocate()
        argmax2.deallocate()
    }

    public func outputShape(_ s: FeatureShape) -> FeatureShape {
        FeatureShape(channels: s.channels, height: (s.height - kernel) / stride + 1, width: (s.width - kernel) / stride + 1)
    }

    private var isTwoByTwo: Bool { kernel == 2 && stride == 2 }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        let recording = ctx.recordsForBackward
        input = recording ? x : nil
        let o = outputShape(x.shape)
        let images = x.channels * x.batch, ho = o.height, wo = o.width, h = x.height, w = x.width
        let total = images * ho * wo, oplane = ho * wo
        let y: UnsafeMutablePointer<Float>
        if recording {
            output.reserve(total)
            y = output.ptr
        } else {
            y = ctx.arena.acquire(total)
        }
        let src = x.data
        if isTwoByTwo {
            if recording && argmax2Capacity < total {
                argmax2.deallocate()
                argmax2 = .allocate(capacity: total)
                argmax2Capacity = total
            }
            let am = argmax2
            ctx.workers.forEachRange(images, minimumPerThread: 16) { r in
                // Without recording, each image's argmax goes to scratch and is dropped.
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: recording ? 1 : oplane) { scratch in
                    for img in r {
                        let a = recording ? am + img &* oplane : scratch.baseAddress.unsafelyUnwrapped
                        PoolKernels.maxPool2x2(src + img &* (h &* w), height: h, width: w, outHeight: ho, outWidth: wo,
                                               y: y + img &* oplane, argmax: a)
                    }
                }
            }
        } else {
            if recording && argmaxCapacity < total {
                argmax.deallocate()
                argmax = .allocate(capacity: total)
                argmaxCapacity = total
            }
            let am = argmax, k = kernel, s = stride
            ctx.workers.forEachRange(images, minimumPerThread: 16) { r in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: recording ? 1 : oplane) { scratch in
                    for img in r {
                        let xi = src + img &* (h &* w), yi = y + img &* oplane
                        let ai = recording ? am + img &* oplane : scratch.baseAddress.unsafelyUnwrapped
                        for oy in 0 ..< ho {
                            for ox in 0 ..< wo {
                                let corner = (oy &* s) &* w &+ ox &* s
                                var best = -Float.infinity, bi = corner
                                for ky in 0 ..< k {
                                    for kx in 0 ..< k {
                                        let idx = corner &+ ky &* w &+ kx
                                        let v = xi[idx]
                                        if v > best || v.isNaN { best = v; bi = idx }
                                    }
                                }
                                yi[oy &* wo &+ ox] = best
                                ai[oy &* wo &+ ox] = Int32(truncatingIfNeeded: bi)
                            }
                        }
                    }
                }
            }
        }
        if !recording { ctx.arena.release(x.data) }
        return Activation(data: y, channels: x.channels, batch: x.batch, height: ho, width: wo)
    }

    public func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        guard let x = input else { return dy }
        let dx = ctx.arena.acquire(x.count), g = dy.data
        let images = x.channels * x.batch, plane = x.plane, oplane = dy.plane
        if isTwoByTwo {
            let am = argmax2, h = x.height, w = x.width, ho = dy.height, wo = dy.width
            ctx.workers.forEachRange(images, minimumPerThread: 16) { r in
                for img in r {
                    PoolKernels.maxPool2x2Backward(g + img &* oplane, argmax: am + img &* oplane, height: h, width: w,
                                                   outHeight: ho, outWidth: wo, dx: dx + img &* plane)
                }
            }
            ctx.arena.release(dy.data)
            return Activation(data: dx, channels: x.channels, batch: x.batch, height: x.height, width: x.width)
        }
        let am = argmax
        ctx.workers.forEachRange(images, minimumPerThread: 16) { r in
            for img in r {
                let d = dx + img &* plane, a = am + img &* oplane, gi = g + img &* oplane
                d.update(repeating: 0, count: plane)
                for j in 0 ..< oplane { d[Int(a[j])] += gi[j] }
            }
        }
        ctx.arena.release(dy.data)
        return Activation(data: dx, channels: x.channels, batch: x.batch, height: x.height, width: x.width)
    }
}

/// Average pooling with window = stride = k, no padding (ResNet heads: 4×4 → 1×1, 8×8 → 1×1).
public final class AvgPool2D: Layer {
    public let name: String
    public let kernel: Int
    public var computesInputGradient = true
    /// Output memory of recording forwards.
    private let output = FloatBuffer(count: 0)
    private var input: Activation?

    public init(_ name: String, kernel: Int) {
        self.name = name
        self.kernel = kernel
    }

    public func outputShape(_ s: FeatureShape) -> FeatureShape {
        FeatureShape(channels: s.channels, height: s.height / kernel, width: s.width / kernel)
    }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        let recording = ctx.recordsForBackward
        input = recording ? x : nil
        let o = outputShape(x.shape)
        let images = x.channels * x.batch, ho = o.height, wo = o.width, w = x.width, k = kernel
        let y: UnsafeMutablePointer<Float>
        if recording {
            output.reserve(images * ho * wo)
            y = output.ptr
        } else {
            y = ctx.arena.acquire(images * ho * wo)
        }
        let src = x.data, inv = 1 / Float(k * k), plane = x.plane
        for img in 0 ..< images {
            let xi = src + img * plane, yi = y + img * ho * wo
            for oy in 0 ..< ho {
                for ox in 0 ..< wo {
                    var s: Float = 0
                    for ky in 0 ..< k { for kx in 0 ..< k { s += xi[(oy * k + ky) * w + ox * k + kx] } }
                    yi[oy * wo + ox] = s * inv
                }
            }
        }
        if !recording { ctx.arena.release(x.data) }
        return Activation(data: y, channels: x.channels, batch: x.batch, height: ho, width: wo)
    }

    public func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        guard let x = input else { return dy }
        let dx = ctx.arena.acquire(x.count), k = kernel, w = x.width, ho = dy.height, wo = dy.width, inv = 1 / Float(k * k)
        let images = x.channels * x.batch, plane = x.plane
        for img in 0 ..< images {
            let d = dx + img * plane, g = dy.data + img * ho * wo
            d.update(repeating: 0, count: plane)
            for oy in 0 ..< ho {
                for ox in 0 ..< wo {
                    let v = g[oy * wo + ox] * inv
                    for ky in 0 ..< k { for kx in 0 ..< k { d[(oy * k + ky) * w + ox * k + kx] = v } }
                }
            }
        }
        ctx.arena.release(dy.data)
        return Activation(data: dx, channels: x.channels, batch: x.batch, height: x.height, width: x.width)
    }
}
