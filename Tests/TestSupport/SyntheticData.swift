// Synthetic image sets for fast tests of training, pruning and checkpoints.
import Engine
import Training

/// `train` and `test` random CIFAR-shaped images whose label shows in the pixels (every 10th
/// byte, offset by the label, is brighter), so there is something to learn; a pure function
/// of its arguments.
public func syntheticData(train: Int = 96, test: Int = 64, classes: Int = 10) -> PreparedData {
    func set(_ n: Int, _ seed: UInt64) -> ImageSet {
        var rng = CounterRNG(seed: seed, purpose: .noise)
        var pixels = [UInt8](repeating: 0, count: n * 3072)
        var labels = [Int32](repeating: 0, count: n)
        for i in 0 ..< n {
            let label = rng.below(classes)
            labels[i] = Int32(label)
            for j in 0 ..< 3072 { pixels[i * 3072 + j] = UInt8(truncatingIfNeeded: rng.below(64) + (j % 10 == label ? 150 : 0)) }
        }
        return ImageSet(pixels: pixels, labels: labels, classes: classes)
    }
    return PreparedData(train: set(train, 1), test: set(test, 2), normalisation: .cifar10)
}
