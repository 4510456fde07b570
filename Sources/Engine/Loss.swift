// Softmax cross-entropy (mean over the batch) and top-k accuracy on logits [N, classes]. A
// sample with a NaN or infinite logit is never counted correct.

public struct BatchResult: Sendable, Equatable {
    /// Sum over the batch of per-sample losses (divide by the count for the mean).
    public var lossSum: Double = 0
    public var correctTop1: Int = 0
    public var correctTop5: Int = 0
    public var count: Int = 0

    public init() {}

    public static func += (a: inout BatchResult, b: BatchResult) {
        a.lossSum += b.lossSum
        a.correctTop1 += b.correctTop1
        a.correctTop5 += b.correctTop5
        a.count += b.count
    }

    public var meanLoss: Double { count > 0 ? lossSum / Double(count) : 0 }
    public var top1: Double { count > 0 ? 100 * Double(correctTop1) / Double(count) : 0 }
    public var top5: Double { count > 0 ? 100 * Double(correctTop5) / Double(count) : 0 }
}

public final class SoftmaxCrossEntropy {
    public let gradient = FloatBuffer(count: 0)

    public init() {}

    /// Loss and accuracy of `logits` against `labels`; when `computeGradient`, fills
    /// `gradient` with ∂(mean loss)/∂logits = (softmax − onehot)/N.
    public func evaluate(_ logits: Activation, labels: UnsafePointer<Int32>, computeGradient: Bool) -> BatchResult {
        let n = logits.batch, k = logits.channels
        if computeGradient { gradient.reserve(n * k) }
        var result = BatchResult()
        result.count = n
        let g = gradient.ptr, invN = 1 / Double(n)
        for i in 0 ..< n {
            let row = logits.data + i * k
            let label = Int(labels[i])
            var mx = row[0]
            for j in 1 ..< k where row[j] > mx { mx = row[j] }
            // NaN compares false with everything, so a row holding NaN would rank its label
            // first; a sample whose logits are not all finite never counts as correct.
            var finite = true
            for j in 0 ..< k where !row[j].isFinite { finite = false; break }
            var z = 0.0
            for j in 0 ..< k { z += exp(Double(row[j] - mx)) }
            let logZ = log(z) + Double(mx)
            result.lossSum += logZ - Double(row[label])
            // Rank of the label: classes scoring higher, or equal with a lower index, come first.
            let t = row[label]
            var ahead = 0
            for j in 0 ..< k where row[j] > t || (row[j] == t && j < label) { ahead += 1 }
            if finite && ahead < 1 { result.correctTop1 += 1 }
            if finite && ahead < 5 { result.correctTop5 += 1 }
            if computeGradient {
                let gr = g + i * k
                for j in 0 ..< k {
                    let p = exp(Double(row[j]) - logZ)
                    gr[j] = Float((p - (j == label ? 1 : 0)) * invN)
                }
            }
        }
        return result
    }
}

import Foundation
