// Memory reuse (ActivationArena.swift, Layer.swift): evaluation forwards through the arena give
// bit for bit the logits of a forward that keeps everything for backward, on every model, dense
// and compacted; evaluations between training steps change nothing of the training; and the
// arena and scratch memory an evaluation or a training step needs do not grow with depth.
import Engine
import Testing

/// A network with an optimizer and, optionally, a pruner that has pruned at epoch 0 (so its
/// convolutions run compacted).
private final class Subject {
    let net: Network
    let optimizer: Optimizer
    let pruner: Pruner?
    let ctx: ExecutionContext
    let loss = SoftmaxCrossEntropy()

    init(_ arch: Architecture, width: Double, threads: Int, pruned: PruneScore? = nil) throws {
        net = ModelFactory.make(arch, width: width, seed: 5)
        optimizer = Optimizer(kind: .adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-4), parameterCount: net.parameterCount)
        if let score = pruned {
            var plan = PruningPlan(layers: net.prunableLayers().map { LayerPlan(name: $0.name, fraction: 0.3, start: 0, end: 1, period: 1) })
            plan.score = score
            let p = try Pruner(plan: plan, network: net, seed: 1, epochs: 4)
            _ = p.prune(epoch: 0, optimizer: optimizer)
            pruner = p
        } else {
            pruner = nil
        }
        ctx = ExecutionContext(threads: threads)
    }

    /// One training step on `n` random images; returns the logits and the gradients.
    func train(_ n: Int, seed: UInt64) -> [Float] {
        let x = Owned(randomFloats(n * 3 * 32 * 32, seed: seed), channels: 3, batch: n, height: 32, width: 32)
        let labels = (0 ..< n).map { Int32(($0 * 7 + Int(seed)) % net.classes) }
        ctx.training = true
        let logits = withExtendedLifetime(x) { net.forward(x.act, ctx) }
        let seen = values(logits)
        _ = labels.withUnsafeBufferPointer { loss.evaluate(logits, labels: $0.baseAddress!, computeGradient: true) }
        net.store.zeroGradients()
        net.backward(Activation(data: loss.gradient.ptr, channels: net.classes, batch: n, height: 1, width: 1, layout: .rowMajor), ctx)
        optimizer.apply(net.store, lr: 1e-3, workers: ctx.workers)
        pruner?.enforce(optimizer: optimizer)
        return seen + net.store.gradients.array
    }

    /// Evaluation-mode logits of `n` random images, through the arena or keeping everything
    /// for backward (`recording`).
    func evaluate(_ n: Int, seed: UInt64, recording: Bool) -> [Float] {
        let x = Owned(randomFloats(n * 3 * 32 * 32, seed: seed), channels: 3, batch: n, height: 32, width: 32)
        ctx.training = false
        ctx.gradientsInEvaluation = recording
        defer { ctx.training = true; ctx.gradientsInEvaluation = false }
        return withExtendedLifetime(x) { values(net.forward(x.act, ctx)) }
    }

    /// Everything training has changed: parameters, BatchNorm statistics, moments.
    var state: [Float] { net.store.values.array + net.store.state.array + optimizer.moment1.array }
}

private func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

/// Models at test width, dense and compacted (ResNet20 scored by activations, which its
/// training forwards record).
private let subjects: [(Architecture, Double, PruneScore?)] = [
    (.conv4, 0.5, nil), (.vgg11_bn, 0.25, nil), (.resnet18, 0.25, nil), (.resnet20, 0.5, nil),
    (.conv4, 0.5, .l2), (.vgg11_bn, 0.25, .l2), (.resnet18, 0.25, .l1), (.resnet20, 0.5, .activations),
]

@Suite struct EvaluationMemoryTests {
    /// Evaluation through the arena (in-place BatchNorm, ReLU and residual sums, buffers reused
    /// layer by layer) computes exactly what the recording forward computes.
    @Test(arguments: subjects, [1, 2])
    func evaluationMatchesTheRecordingForward(_ model: (Architecture, Double, PruneScore?), threads: Int) throws {
        let s = try Subject(model.0, width: model.1, threads: threads, pruned: model.2)
        _ = s.train(6, seed: 1)
        for n in [7, 3] {
            let arena = s.evaluate(n, seed: 50 + UInt64(n), recording: false)
            let recorded = s.evaluate(n, seed: 50 + UInt64(n), recording: true)
            #expect(arena.count == n * s.net.classes)
            #expect(bits(arena) == bits(recorded), "\(model.0) batch \(n)")
        }
    }

    /// Training interleaved with arena evaluations gives the same logits, gradients and state
    /// as training interleaved with recording evaluations, and the same training as none.
    @Test(arguments: subjects)
    func evaluationsBetweenTrainingStepsChangeNothing(_ model: (Architecture, Double, PruneScore?)) throws {
        let a = try Subject(model.0, width: model.1, threads: 2, pruned: model.2)
        let b = try Subject(model.0, width: model.1, threads: 2, pruned: model.2)
        let c = try Subject(model.0, width: model.1, threads: 2, pruned: model.2)
        for step in 0 ..< 4 {
            let seed = UInt64(10 + step)
            let trained = a.train(5, seed: seed)
            #expect(bits(trained) == bits(b.train(5, seed: seed)), "step \(step)")
            #expect(bits(trained) == bits(c.train(5, seed: seed)), "step \(step)")
            #expect(bits(a.evaluate(6, seed: 90, recording: false)) == bits(b.evaluate(6, seed: 90, recording: true)))
        }
        #expect(bits(a.state) == bits(b.state) && bits(a.state) == bits(c.state))
    }
}

@Suite struct MemoryBoundTests {
    /// Floats of the largest activation of `net` at batch `n`, residual blocks' inner ones included
    /// (their first convolution's output is the largest inside a block).
    private func largestActivation(_ net: Network, batch n: Int) -> Int {
        var shape = net.inputShape, largest = 0
        for l in net.layers {
            if let b = l as? BasicBlock {
                let o = b.conv1.outputShape(shape)
                largest = max(largest, o.channels * o.height * o.width)
            }
            shape = l.outputShape(shape)
            largest = max(largest, shape.channels * shape.height * shape.width)
        }
        return largest * n
    }

    /// An evaluation holds at most three activations at a time (two without residual blocks),
    /// none larger than the largest: the arena, like the scratch memory, is the same for
    /// ResNet20 and the deeper ResNet56.
    @Test func evaluationMemoryDoesNotGrowWithDepth() throws {
        var footprints: [(arena: Int, slots: Int, scratch: Int)] = []
        for arch in [Architecture.resnet20, .resnet56, .vgg11_bn, .conv4] {
            let s = try Subject(arch, width: 0.25, threads: 2)
            _ = s.evaluate(8, seed: 3, recording: false)
            _ = s.evaluate(8, seed: 4, recording: false)
            let arena = s.ctx.arena
            let residual = arch.isResNet
            #expect(arena.slotCount == (residual ? 3 : 2), "\(arch)")
            #expect(arena.capacity <= arena.slotCount * largestActivation(s.net, batch: 8), "\(arch)")
            footprints.append((arena.capacity, arena.slotCount, s.ctx.scratchCapacity))
        }
        #expect(footprints[0].arena == footprints[1].arena && footprints[0].scratch == footprints[1].scratch)
    }

    /// A training step's transient results and gradients fit in three arena slots, none larger
    /// than the largest activation, for ResNet20 as for ResNet56.
    @Test func trainingArenaDoesNotGrowWithDepth() throws {
        var footprints: [(arena: Int, scratch: Int)] = []
        for arch in [Architecture.resnet20, .resnet56] {
            let s = try Subject(arch, width: 0.25, threads: 2)
            _ = s.train(8, seed: 1)
            _ = s.train(8, seed: 2)
            #expect(s.ctx.arena.slotCount <= 3)
            #expect(s.ctx.arena.capacity <= 3 * largestActivation(s.net, batch: 8))
            footprints.append((s.ctx.arena.capacity, s.ctx.scratchCapacity))
        }
        #expect(footprints[0].arena == footprints[1].arena && footprints[0].scratch == footprints[1].scratch)
    }

    /// The arena's holding rules: the smallest free slot that fits, growth of a free slot
    /// before a new one, exclusive only with one holder, nothing for memory it does not own.
    @Test func arenaHoldsSlotsByCount() {
        let arena = ActivationArena()
        let a = arena.acquire(100), b = arena.acquire(50)
        #expect(arena.slotCount == 2 && arena.isExclusive(a))
        arena.retain(a)
        #expect(!arena.isExclusive(a))
        arena.release(a)
        #expect(arena.isExclusive(a))
        arena.release(b)
        #expect(arena.acquire(40) == b)             // the free slot that fits
        arena.release(b)
        let c = arena.acquire(80)                   // grows the free slot rather than adding one
        #expect(arena.slotCount == 2 && arena.capacity >= 180)
        let d = arena.acquire(10)                   // none free: a new slot
        #expect(arena.slotCount == 3 && d != a && d != c)
        let foreign = FloatBuffer(count: 4)
        arena.retain(foreign.ptr)
        arena.release(foreign.ptr)
        #expect(!arena.isExclusive(foreign.ptr) && arena.heldCount == 3)
        arena.releaseAll()
        #expect(arena.heldCount == 0 && arena.slotCount == 3)
    }
}
