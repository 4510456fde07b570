// Optimizers over the whole parameter arena, PyTorch semantics (docs/EXPERIMENTS.md §4.1), and the
// MultiStep learning-rate schedule. Scalars (bias corrections, learning rates) are computed in
// Double as PyTorch's Python side does; the elementwise update is Float.
import Foundation

public enum OptimizerKind: Sendable, Equatable {
    /// Adam: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
    /// p ← p − (lr/(1−β1ᵗ)) · m / (√v/√(1−β2ᵗ) + eps); weight decay adds wd·p to g first.
    case adam(beta1: Double, beta2: Double, eps: Double, weightDecay: Double)
    /// SGD: b ← μ·b + (g + wd·p); p ← p − lr·b (no dampening, no Nesterov).
    case sgd(momentum: Double, weightDecay: Double)
}

public final class Optimizer {
    public let kind: OptimizerKind
    /// Adam: first moment; SGD: momentum buffer.
    public let moment1: FloatBuffer
    /// Adam: second moment; SGD: unused (empty).
    public let moment2: FloatBuffer
    /// Number of steps taken (Adam's t).
    public private(set) var step: Int = 0

    public init(kind: OptimizerKind, parameterCount: Int) {
        self.kind = kind
        moment1 = FloatBuffer(count: parameterCount)
        if case .adam = kind { moment2 = FloatBuffer(count: parameterCount) } else { moment2 = FloatBuffer(count: 0) }
    }

    /// Restores the step counter (checkpoint resume); the moment buffers are written directly.
    public func restore(step: Int) { self.step = step }

    /// Applies one update with learning rate `lr` to `store.values` using `store.gradients`.
    public func apply(_ store: ParameterStore, lr: Double, workers: Workers) {
        step += 1
        let n = store.parameterCount
        let p = store.values.ptr, g = store.gradients.ptr, m = moment1.ptr
        switch kind {
        case let .adam(b1, b2, eps, wd):
            let t = Double(step)
            let bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t)
            let stepSize = Float(lr / bc1), sqrtBc2 = Float(bc2.squareRoot())
            let scalars = AdamScalars(beta1: Float(b1), beta2: Float(b2), oneMinusBeta1: Float(1 - b1),
                                      oneMinusBeta2: Float(1 - b2), stepSize: stepSize, sqrtBiasCorrection2: sqrtBc2,
                                      eps: Float(eps), weightDecay: Float(wd))
            let v = moment2.ptr
            workers.forEachRange(n, minimumPerThread: 1 << 15) { r in
                OptimKernels.adam(p: p, g: g, m: m, v: v, range: r, scalars)
            }
        case let .sgd(mu, wd):
            let fmu = Float(mu), fwd = Float(wd), flr = Float(lr)
            let first = step == 1
            workers.forEachRange(n, minimumPerThread: 1 << 15) { r in
                for i in r {
                    var gi = g[i]
                    if fwd != 0 { gi += fwd * p[i] }
                    let b = first ? gi : fmu * m[i] + gi
                    m[i] = b
                    p[i] -= flr * b
                }
            }
        }
    }
}

/// PyTorch's MultiStepLR: the rate is multiplied by gamma at each milestone the schedule has
/// stepped past; `epochsStepped` is the number of `step()` calls so far.
public struct MultiStepSchedule: Sendable, Equatable, Codable {
    public var baseLR: Double
    public var milestones: [Int]
    public var gamma: Double

    public init(baseLR: Double, milestones: [Int], gamma: Double = 0.1) {
        self.baseLR = baseLR
        self.milestones = milestones
        self.gamma = gamma
    }

    public func rate(afterSteps epochsStepped: Int) -> Double {
        var lr = baseLR
        for m in milestones.sorted() where epochsStepped >= m { lr *= gamma }
        return lr
    }
}
