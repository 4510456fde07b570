// Accuracy counting of SoftmaxCrossEntropy: ranks, ties, and logits that are not finite.
import Engine
import Testing

@Suite struct LossTests {
    /// Evaluates row-major logits [N, classes] against labels.
    func evaluate(_ rows: [[Float]], labels: [Int32], gradient: Bool = false) -> BatchResult {
        var flat = rows.flatMap { $0 }
        let loss = SoftmaxCrossEntropy()
        return flat.withUnsafeMutableBufferPointer { logits in
            labels.withUnsafeBufferPointer { l in
                guard let data = logits.baseAddress, let lp = l.baseAddress else { return BatchResult() }
                return loss.evaluate(Activation(data: data, channels: rows[0].count, batch: rows.count, height: 1, width: 1,
                                                layout: .rowMajor), labels: lp, computeGradient: gradient)
            }
        }
    }

    @Test func finiteLogitsRankTheLabel() {
        // Label 2 ranks first; label 0 ranks third (ahead: 2 and 1); a tie goes to the lower index.
        let r = evaluate([[0, 1, 3, -1, -2, -3], [0, 1, 3, -1, -2, -3], [1, 1, 0, 0, 0, 0]], labels: [2, 0, 1])
        #expect(r.count == 3)
        #expect(r.correctTop1 == 1)
        #expect(r.correctTop5 == 3)
        #expect(r.lossSum.isFinite)
    }

    /// A diverged model's logits are NaN: every comparison with NaN is false, so before the fix
    /// each such sample ranked its label first and counted as correct (100% accuracy).
    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteLogitsNeverCountAsCorrect(_ bad: Float) {
        let k = 10
        let allBad = [Float](repeating: bad, count: k)
        var oneBad = [Float](repeating: 0, count: k)
        oneBad[0] = 5  // the label's own logit is the largest…
        oneBad[7] = bad  // …but another one is not finite
        var labelBad = [Float](repeating: 0, count: k)
        labelBad[3] = bad
        for gradient in [false, true] {
            let r = evaluate([allBad, oneBad, labelBad, allBad], labels: [0, 0, 3, 9], gradient: gradient)
            #expect(r.count == 4)
            #expect(r.correctTop1 == 0, "top-1 with \(bad) logits (gradient \(gradient))")
            #expect(r.correctTop5 == 0, "top-5 with \(bad) logits (gradient \(gradient))")
            #expect(r.top1 == 0 && r.top5 == 0)
        }
        // A NaN row among good ones: only the good rows count.
        var good = [Float](repeating: 0, count: k)
        good[4] = 1
        let mixed = evaluate([good, [Float](repeating: .nan, count: k), good], labels: [4, 4, 4])
        #expect(mixed.correctTop1 == 2 && mixed.correctTop5 == 2)
        #expect(!mixed.lossSum.isFinite, "a NaN row's loss is NaN")
    }
}
