// One training run in memory: model, optimizer, data and the per-epoch protocol of spec §4.2
// (train, pre-prune evaluation, [prune], LR step, post-prune evaluation). Everything that
// varies between runs comes from the spec and its seed; every random draw comes from a stream
// derived from (seed, purpose, epoch, position), so a run is a pure function of its spec,
// build and thread count.
import Engine
import Foundation

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
    private let loss = SoftmaxCrossEntropy()
    private let batchInput = FloatBuffer(count: 0)
    private var batchLabels: [Int32] = []
    /// Number of completed epochs (and of LR-schedule steps taken).
    public private(set) var epochsCompleted = 0
    public private(set) var lrSteps = 0

    public init(spec: RunSpec, data: PreparedData, threads: Int) throws {
        guard data.train.classes == data.test.classes else {
            throw SpecError(field: "dataset", message: "training and test sets disagree on the number of classes")
        }
        self.spec = spec
        self.data = data
        network = ModelFactory.make(spec.architecture, classes: data.train.classes, width: spec.width, seed: spec.seed)
        optimizer = Optimizer(kind: spec.optimizer.engineKind, parameterCount: network.parameterCount)
        context = ExecutionContext(threads: threads)
    }

    public var currentLR: Double { spec.schedule.rate(afterSteps: lrSteps) }

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

    /// Runs the next epoch with the protocol of spec §4.2 and returns its record.
    public func runEpoch(clock: () -> Double = Trainer.monotonicSeconds) -> EpochRecord {
        let epoch = epochsCompleted
        let t0 = clock()
        let lr = currentLR
        let train = trainEpoch(epoch)
        let t1 = clock()
        let pre = evaluate()
        // Pruning happens here (experiments issue); without a pruning event post = pre.
        lrSteps += 1
        let post = pre
        epochsCompleted += 1
        let t2 = clock()
        return EpochRecord(epoch: epoch + 1, train: train, pre: pre, post: post, lr: lr, seconds: t2 - t0,
                           trainImagesPerSecond: Double(train.count) / max(t1 - t0, 1e-9))
    }

    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
