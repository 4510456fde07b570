// One training run in memory: model, optimizer, data and the per-epoch protocol of docs/EXPERIMENTS.md §4.2
// (train, pre-prune evaluation, [prune], LR step, post-prune evaluation). Everything that
// varies between runs comes from the spec and its seed; every random draw comes from a stream
// derived from (seed, purpose, epoch, position), so a run is a pure function of its spec,
// build and thread count.
import Engine
import Foundation
import Results

/// The result of one epoch, as recorded in metrics.jsonl.
public struct EpochRecord: Sendable, Equatable {
    /// 1-based, as the paper logs it.
    public var epoch: Int
    public var train: BatchResult
    /// Test set before any pruning of this epoch (eval mode).
    public var pre: BatchResult
    /// Test set after this epoch's pruning (identical to `pre` when nothing was pruned).
    public var post: BatchResult
    /// Learning rate used for this epoch's training steps.
    public var lr: Double
    public var seconds: Double
    public var trainImagesPerSecond: Double
    /// What each layer pruned at this epoch's event (nil: no layer had an event this epoch).
    public var pruning: [LayerPruning]?
    /// Units pruned so far per layer, after this epoch.
    public var prunedCounts: [(String, Int)] = []
    /// Whether the epoch trained (scratch pruning skips epoch 0's training).
    public var trained = true
    /// Forward multiply-adds per image the engine executed in this epoch's training, pruned
    /// channels left out (Network.executedForwardMACs); nil in records from before it existed.
    public var macsPerImage: Int?

    public static func == (a: EpochRecord, b: EpochRecord) -> Bool {
        a.epoch == b.epoch && a.train == b.train && a.pre == b.pre && a.post == b.post && a.lr == b.lr
            && a.pruning == b.pruning && a.trained == b.trained && a.macsPerImage == b.macsPerImage
            && a.prunedCounts.map(\.0) == b.prunedCounts.map(\.0) && a.prunedCounts.map(\.1) == b.prunedCounts.map(\.1)
    }

    /// The authors' avg_pruned_magnitude: mean over pruning layers of max(mean score, 0); −1 if none.
    public var averagePrunedScore: Double? { pruning.map { $0.isEmpty ? -1 : Pruner.averagePrunedScore($0) } }

    /// A pruning epoch in the statistics' sense (docs/EXPERIMENTS.md §6.2): the average pruned score is > 0.
    public var isPruningEpoch: Bool { (averagePrunedScore ?? -1) > 0 }

    /// The epoch as the per-run statistics read it (Results' RunMetrics).
    public var accuracy: EpochAccuracy {
        EpochAccuracy(epoch: epoch, train: train.top1, preTest: pre.top1, postTest: post.top1, isPruningEpoch: isPruningEpoch)
    }

    /// (t_pre − t_post) / t_pre, the code's (relative) instability of this epoch's event.
    public var instability: Double? { accuracy.instability }

    /// t_pre − t_post in accuracy points, the poster's (absolute) instability.
    public var instabilityPoints: Double? { accuracy.instabilityPoints }
}

/// Training diverged: a step's loss, or the weights after it, is not a finite number. The
/// trainer that threw it holds the diverged state and must not be checkpointed or used further.
public struct TrainingDiverged: Error, CustomStringConvertible, Equatable {
    /// 1-based epoch and 1-based step within it (of `steps`) at which it was found.
    public let epoch: Int
    public let step: Int
    public let steps: Int
    /// What is not finite, e.g. "loss is NaN".
    public let problem: String

    public init(epoch: Int, step: Int, steps: Int, problem: String) {
        self.epoch = epoch
        self.step = step
        self.steps = steps
        self.problem = problem
    }

    public var description: String { "diverged at epoch \(epoch), step \(step) of \(steps): \(problem)" }

    /// "NaN", "+Inf" or "-Inf" (or the number itself when finite).
    public static func name(_ d: Double) -> String {
        d.isNaN ? "NaN" : d.isInfinite ? (d > 0 ? "+Inf" : "-Inf") : "\(d)"
    }
}

/// Prepared datasets: normalisation and limits applied once.
public struct PreparedData: @unchecked Sendable {
    public let train: ImageSet
    public let test: ImageSet
    public let normalisation: Normalisation

    public init(train: ImageSet, test: ImageSet, normalisation: Normalisation) {
        self.train = train
        self.test = test
        self.normalisation = normalisation
    }

    /// Loads the spec's dataset; normalisation constants come from the spec (CIFAR) or from the
    /// full training set (Fashion-MNIST, MNIST) before any limit is applied.
    public static func load(_ spec: DataSpec) throws -> PreparedData {
        let (train, test) = try DatasetLoader.load(spec.kind, from: spec.path)
        let norm: Normalisation
        switch spec.kind {
        case .cifar10: norm = .cifar10
        case .cifar100: norm = .cifar100
        case .fashion_mnist, .mnist: norm = Normalisation.computed(from: train)
        }
        return PreparedData(train: spec.trainLimit.map { train.prefix($0) } ?? train,
                            test: spec.testLimit.map { test.prefix($0) } ?? test, normalisation: norm)
    }
}

public final class Trainer {
    public let spec: RunSpec
    public let network: Network
    public let optimizer: Optimizer
    public let context: ExecutionContext
    public let data: PreparedData
    public let pruner: Pruner?
    private let loss = SoftmaxCrossEntropy()
    private let batchInput = FloatBuffer(count: 0)
    private var batchLabels: [Int32] = []
    /// Number of completed epochs (and of LR-schedule steps taken).
    public private(set) var epochsCompleted = 0
    public private(set) var lrSteps = 0
    /// Training steps already taken in the current (unfinished) epoch; 0 at an epoch boundary.
    public private(set) var stepInEpoch = 0
    /// The training loss/accuracy of those steps.
    public private(set) var partialTrain = BatchResult()

    public init(spec: RunSpec, data: PreparedData, threads: Int) throws {
        guard data.train.classes == data.test.classes else {
            throw SpecError(field: "dataset", message: "training and test sets disagree on the number of classes")
        }
        self.spec = spec
        self.data = data
        network = ModelFactory.make(spec.architecture, classes: data.train.classes, width: spec.width, seed: spec.seed)
        optimizer = Optimizer(kind: spec.optimizer.engineKind, parameterCount: network.parameterCount)
        context = ExecutionContext(threads: threads)
        if let plan = spec.pruning {
            do { pruner = try Pruner(plan: plan, network: network, seed: spec.seed, epochs: spec.epochs) } catch let e as PruningPlanError {
                throw SpecError(e)
            }
        } else {
            pruner = nil
        }
    }

    public var currentLR: Double { spec.schedule.rate(afterSteps: lrSteps) }

    /// Training steps per epoch.
    public var stepsPerEpoch: Int { (data.train.count + spec.batchSize - 1) / spec.batchSize }

    /// Whether the run is at an epoch boundary (no epoch half-trained).
    public var atEpochBoundary: Bool { stepInEpoch == 0 }

    /// The first parameter or BatchNorm buffer holding a value that is not finite, described
    /// ("parameter features.conv3.weight holds NaN"); nil when the whole state is finite.
    public func nonFiniteState() -> String? {
        let store = network.store
        func scan(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Float? {
            for i in 0 ..< n where !p[i].isFinite { return p[i] }
            return nil
        }
        for slot in store.parameters {
            if let v = scan(store.value(slot), slot.count) { return "parameter \(slot.name) holds \(TrainingDiverged.name(Double(v)))" }
        }
        for slot in store.buffers {
            if let v = scan(store.stateValue(slot), slot.count) { return "buffer \(slot.name) holds \(TrainingDiverged.name(Double(v)))" }
        }
        return nil
    }

    /// The divergence error for `problem` at the last training step taken.
    public func diverged(_ problem: String) -> TrainingDiverged {
        atEpochBoundary
            ? TrainingDiverged(epoch: max(epochsCompleted, 1), step: stepsPerEpoch, steps: stepsPerEpoch, problem: problem)
            : TrainingDiverged(epoch: epochsCompleted + 1, step: stepInEpoch, steps: stepsPerEpoch, problem: problem)
    }

    /// Sets the run's position (checkpoint resume; the model state is restored separately).
    func restoreProgress(epochsCompleted e: Int, lrSteps l: Int, stepInEpoch s: Int, partialTrain p: BatchResult) {
        epochsCompleted = e; lrSteps = l; stepInEpoch = s; partialTrain = p
    }

    /// Trains one epoch (0-based `epoch`); returns the on-the-fly training loss/accuracy
    /// (train mode, weights changing), weighted by batch size.
    public func trainEpoch(_ epoch: Int, onStep: ((Int, Int) -> Void)? = nil) -> BatchResult {
        let set = data.train
        let order = Batcher.order(count: set.count, seed: spec.seed, epoch: epoch)
        let b = spec.batchSize
        let steps = (set.count + b - 1) / b
        var total = BatchResult()
        context.training = true
        let lr = currentLR
        for step in 0 ..< steps {
            let start = step * b, end = min(set.count, start + b)
            total += trainStep(indices: order[start ..< end], epoch: epoch, position: start, lr: lr)
            onStep?(step + 1, steps)
        }
        return total
    }

    /// One optimisation step on the given samples.
    public func trainStep(indices: ArraySlice<Int>, epoch: Int, position: Int, lr: Double) -> BatchResult {
        let n = indices.count
        let x = assemble(data.train, indices, augment: spec.augment, epoch: epoch, position: position)
        context.training = true
        let logits = network.forward(x, context)
        let result = batchLabels.withUnsafeBufferPointer { labels in
            loss.evaluate(logits, labels: labels.baseAddress!, computeGradient: true)
        }
        network.store.zeroGradients()
        network.backward(Activation(data: loss.gradient.ptr, channels: logits.channels, batch: n, height: 1, width: 1,
                                    layout: .rowMajor), context)
        optimizer.apply(network.store, lr: lr, workers: context.workers)
        pruner?.enforce(optimizer: optimizer)
        return result
    }

    /// Loss and accuracy on the whole test set, eval mode, in test-batch order.
    public func evaluate() -> BatchResult {
        let set = data.test
        let b = spec.testBatchSize
        var total = BatchResult()
        context.training = false
        let all = Array(0 ..< set.count)
        var start = 0
        while start < set.count {
            let end = min(set.count, start + b)
            let x = assemble(set, all[start ..< end], augment: false, epoch: 0, position: start)
            let logits = network.forward(x, context)
            total += batchLabels.withUnsafeBufferPointer { labels in
                loss.evaluate(logits, labels: labels.baseAddress!, computeGradient: false)
            }
            start = end
        }
        context.training = true
        return total
    }

    private func assemble(_ set: ImageSet, _ indices: ArraySlice<Int>, augment: Bool, epoch: Int, position: Int) -> Activation {
        let n = indices.count
        batchInput.reserve(n * 3 * 32 * 32)
        if batchLabels.count < n { batchLabels = [Int32](repeating: 0, count: n) }
        batchLabels.withUnsafeMutableBufferPointer { labels in
            Batcher.assemble(set, indices: indices, normalisation: data.normalisation,
                             augmentation: augment ? .cropAndFlip : .none, seed: spec.seed, epoch: epoch,
                             position: position, into: batchInput.ptr, labels: labels.baseAddress!)
        }
        return Activation(data: batchInput.ptr, channels: 3, batch: n, height: 32, width: 32)
    }

    /// Runs the next epoch with the protocol of docs/EXPERIMENTS.md §4.2 and returns its record; throws
    /// TrainingDiverged as the other `runEpoch` does.
    public func runEpoch(clock: () -> Double = Trainer.monotonicSeconds) throws -> EpochRecord {
        // Without a stop request the epoch always completes.
        try runEpoch(clock: clock, afterStep: { _ in false }) ?? EpochRecord(epoch: epochsCompleted, train: partialTrain, pre: BatchResult(),
                                                                           post: BatchResult(), lr: currentLR, seconds: 0, trainImagesPerSecond: 0)
    }

    /// Runs (or continues, after a resume) the current epoch. After every training step
    /// `afterStep` may checkpoint; returning true stops at that step boundary (nil is returned
    /// and a later call continues from the next step exactly). Throws TrainingDiverged when a
    /// step's loss is not finite (before `afterStep` sees that step) or when the weights are not
    /// finite at the end of the epoch's training; errors of `afterStep` are passed on.
    public func runEpoch(clock: () -> Double = Trainer.monotonicSeconds, afterStep: (Trainer) throws -> Bool) throws -> EpochRecord? {
        let epoch = epochsCompleted
        let t0 = clock()
        let lr = currentLR
        // Scratch pruning prunes at epoch 0 before any training: that epoch does not train and
        // does not step the learning-rate schedule (docs/EXPERIMENTS.md §4.1, §4.2).
        let scratchStart = spec.pruning?.scratch == true && epoch == 0
        let resumedImages = partialTrain.count
        let macs = network.executedForwardMACs()
        if !scratchStart {
            let set = data.train
            let order = Batcher.order(count: set.count, seed: spec.seed, epoch: epoch)
            let b = spec.batchSize
            context.training = true
            while stepInEpoch < stepsPerEpoch {
                let start = stepInEpoch * b, end = min(set.count, start + b)
                let result = trainStep(indices: order[start ..< end], epoch: epoch, position: start, lr: lr)
                guard result.lossSum.isFinite else {
                    throw TrainingDiverged(epoch: epoch + 1, step: stepInEpoch + 1, steps: stepsPerEpoch,
                                           problem: "loss is \(TrainingDiverged.name(result.meanLoss))")
                }
                partialTrain += result
                stepInEpoch += 1
                if try afterStep(self) { return nil }
            }
            // A step can leave the weights non-finite while its own loss was still finite.
            if let problem = nonFiniteState() { throw diverged(problem + " after the step") }
        }
        let train = partialTrain
        let t1 = clock()
        let pre = evaluate()
        let pruned = pruner?.prune(epoch: epoch, optimizer: optimizer)
        if !scratchStart { lrSteps += 1 }
        // At the last epoch the authors zero pruned weights in storage; masked runs hold them
        // at zero throughout, noise runs lose whatever regrew in targeted filters here.
        let finalZeroing = epoch == spec.epochs - 1 && (pruner?.zeroTargetedWeights() ?? false)
        // Nothing changes between the two evaluations unless something was pruned or a noise
        // window is open: then evaluate again, otherwise the post-prune result is the same.
        let changed = !(pruned ?? []).isEmpty || (pruner?.noiseActive ?? false) || finalZeroing
        let post = changed ? evaluate() : pre
        epochsCompleted += 1
        stepInEpoch = 0
        partialTrain = BatchResult()
        let t2 = clock()
        return EpochRecord(epoch: epoch + 1, train: train, pre: pre, post: post, lr: lr, seconds: t2 - t0,
                           trainImagesPerSecond: Double(train.count - resumedImages) / max(t1 - t0, 1e-9), pruning: pruned,
                           prunedCounts: pruner?.prunedCounts ?? [], trained: !scratchStart, macsPerImage: macs)
    }

    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
