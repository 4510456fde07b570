// Vectorised optimizer steps over a contiguous range of the parameter arena. Swift lowers
// Float.squareRoot() to a libm call with an errno branch, which blocks vectorisation; on x86-64
// the SSE sqrtps intrinsic (baseline ISA, correctly rounded like sqrtss) is used instead, so
// results are bit-identical to the scalar formula, which is the fallback on other targets.
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// Hyper-parameters of one Adam step, already reduced to Float scalars.
public struct AdamScalars: Sendable {
    public var beta1: Float, beta2: Float, oneMinusBeta1: Float, oneMinusBeta2: Float
    public var stepSize: Float, sqrtBiasCorrection2: Float, eps: Float, weightDecay: Float

    public init(beta1: Float, beta2: Float, oneMinusBeta1: Float, oneMinusBeta2: Float, stepSize: Float,
                sqrtBiasCorrection2: Float, eps: Float, weightDecay: Float) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.oneMinusBeta1 = oneMinusBeta1
        self.oneMinusBeta2 = oneMinusBeta2
        self.stepSize = stepSize
        self.sqrtBiasCorrection2 = sqrtBiasCorrection2
        self.eps = eps
        self.weightDecay = weightDecay
    }
}

public enum OptimKernels {
    /// Adam over elements `range` of p (parameters), g (gradients), m, v (moments):
    /// g' = g + wd·p; m = β1·m + (1−β1)·g'; v = β2·v + (1−β2)·g'·g';
    /// p −= stepSize · m / (√v / √bc2 + eps).
    public static func adam(p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                            v: UnsafeMutablePointer<Float>, range: Range<Int>, _ s: AdamScalars) {
        var i = range.lowerBound
        #if arch(x86_64)
        let b1 = SIMD4<Float>(repeating: s.beta1), b2 = SIMD4<Float>(repeating: s.beta2)
        let ob1 = SIMD4<Float>(repeating: s.oneMinusBeta1), ob2 = SIMD4<Float>(repeating: s.oneMinusBeta2)
        let step = SIMD4<Float>(repeating: s.stepSize), sq = SIMD4<Float>(repeating: s.sqrtBiasCorrection2)
        let eps = SIMD4<Float>(repeating: s.eps), wd = SIMD4<Float>(repeating: s.weightDecay)
        let decay = s.weightDecay != 0
        while i &+ 4 <= range.upperBound {
            let pv = load4(p + i)
            var gv = load4(g + i)
            if decay { gv += wd * pv }
            let mv = b1 * load4(m + i) + ob1 * gv
            let vv = b2 * load4(v + i) + ob2 * gv * gv
            store4(m + i, mv)
            store4(v + i, vv)
            let root: SIMD4<Float> = _mm_sqrt_ps(vv)
            store4(p + i, pv - step * (mv / (root / sq + eps)))
            i &+= 4
        }
        #endif
        while i < range.upperBound {
            var gi = g[i]
            if s.weightDecay != 0 { gi += s.weightDecay * p[i] }
            let mi = s.beta1 * m[i] + s.oneMinusBeta1 * gi
            let vi = s.beta2 * v[i] + s.oneMinusBeta2 * gi * gi
            m[i] = mi
            v[i] = vi
            p[i] -= s.stepSize * (mi / (vi.squareRoot() / s.sqrtBiasCorrection2 + s.eps))
            i &+= 1
        }
    }

    @inline(__always) static func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
    }

    @inline(__always) static func load4(_ p: UnsafeMutablePointer<Float>) -> SIMD4<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
    }

    @inline(__always) static func store4(_ p: UnsafeMutablePointer<Float>, _ x: SIMD4<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: x, as: SIMD4<Float>.self)
    }
}
