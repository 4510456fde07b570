// Adam and SGD against hand-computed PyTorch steps (bias correction at t = 1, 2), and the
// MultiStep schedule.
import Engine
import Testing

@Suite struct OptimizerTests {
    func store(_ p: [Float]) -> ParameterStore {
        let s = ParameterStore()
        _ = s.parameter("p", shape: [p.count], init: .zeros)
        s.finalise(seed: 0)
        for (i, v) in p.enumerated() { s.values[i] = v }
        return s
    }

    @Test func adamTwoSteps() {
        let s = store([1.0, -2.0])
        let opt = Optimizer(kind: .adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0), parameterCount: 2)
        let w = Workers(threads: 1)
        // t = 1, g = (0.5, -1): m = 0.1g, v = 0.001g²; m̂ = g, v̂ = g² ⇒ step = lr·g/(|g| + eps) ≈ lr·sign(g)
        s.gradients[0] = 0.5; s.gradients[1] = -1
        opt.apply(s, lr: 0.1, workers: w)
        #expect(abs(Double(s.values[0]) - (1.0 - 0.1 * 0.5 / (0.5 + 1e-8))) < 1e-6)
        #expect(abs(Double(s.values[1]) - (-2.0 + 0.1 * 1 / (1 + 1e-8))) < 1e-6)
        // t = 2, g = (0.25, 0.5)
        s.gradients[0] = 0.25; s.gradients[1] = 0.5
        let p0 = [Double(s.values[0]), Double(s.values[1])]
        opt.apply(s, lr: 0.1, workers: w)
        for (i, (g1, g2)) in [(0.5, 0.25), (-1.0, 0.5)].enumerated() {
            let m = 0.9 * (0.1 * g1) + 0.1 * g2
            let v = 0.999 * (0.001 * g1 * g1) + 0.001 * g2 * g2
            let bc1 = 1 - 0.81, bc2 = 1 - 0.999 * 0.999
            let expected = p0[i] - (0.1 / bc1) * m / (v.squareRoot() / bc2.squareRoot() + 1e-8)
            #expect(abs(Double(s.values[i]) - expected) < 1e-5, "Adam t=2 element \(i)")
            #expect(abs(Double(opt.moment1[i]) - m) < 1e-7)
            #expect(abs(Double(opt.moment2[i]) - v) < 1e-9)
        }
        #expect(opt.step == 2)
    }

    @Test func adamWeightDecayIsL2() {
        let s = store([2.0])
        let opt = Optimizer(kind: .adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5), parameterCount: 1)
        s.gradients[0] = 0   // effective gradient = 0.5·2 = 1
        opt.apply(s, lr: 0.01, workers: Workers(threads: 1))
        #expect(abs(Double(s.values[0]) - (2.0 - 0.01)) < 1e-6)
        #expect(abs(Double(opt.moment1[0]) - 0.1) < 1e-7)
    }

    @Test func sgdMomentumAndWeightDecay() {
        let s = store([1.0])
        let opt = Optimizer(kind: .sgd(momentum: 0.9, weightDecay: 1e-4), parameterCount: 1)
        let w = Workers(threads: 1)
        s.gradients[0] = 0.5
        opt.apply(s, lr: 0.1, workers: w)
        let b1 = 0.5 + 1e-4 * 1.0
        let p1 = 1.0 - 0.1 * b1
        #expect(abs(Double(s.values[0]) - p1) < 1e-7)
        s.gradients[0] = -0.2
        opt.apply(s, lr: 0.1, workers: w)
        let b2 = 0.9 * b1 + (-0.2 + 1e-4 * p1)
        #expect(abs(Double(s.values[0]) - (p1 - 0.1 * b2)) < 1e-6)
        #expect(abs(Double(opt.moment1[0]) - b2) < 1e-7)
    }

    @Test func multiStep() {
        let s = MultiStepSchedule(baseLR: 1e-3, milestones: [150, 300])
        #expect(s.rate(afterSteps: 0) == 1e-3)
        #expect(s.rate(afterSteps: 149) == 1e-3)
        #expect(s.rate(afterSteps: 150) == 1e-3 * 0.1)
        #expect(s.rate(afterSteps: 300) == 1e-3 * 0.1 * 0.1)
    }

    @Test func parallelUpdateIsIdenticalToSerial() {
        let n = 100_003
        let values = randomFloats(n, seed: 1), grads = randomFloats(n, seed: 2)
        var results: [[Float]] = []
        for threads in [1, 2] {
            let s = ParameterStore(); _ = s.parameter("p", shape: [n], init: .zeros); s.finalise(seed: 0)
            for i in 0 ..< n { s.values[i] = values[i]; s.gradients[i] = grads[i] }
            let opt = Optimizer(kind: .adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0), parameterCount: n)
            opt.apply(s, lr: 1e-3, workers: Workers(threads: threads))
            results.append(s.values.array)
        }
        #expect(results[0] == results[1])
    }
}
