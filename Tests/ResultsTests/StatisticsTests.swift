// Statistics against hand-computed values: Pearson r, Kendall tau-b with and without ties
// (values match scipy.stats), least squares, numpy-style percentiles, and the seeded bootstrap
// (reproducible, contains the mean, zero width on constant data, plausible width).
import Foundation
import Results
import Testing

@Suite struct StatisticsTests {
    func close(_ a: Double?, _ b: Double, _ tol: Double = 1e-12) -> Bool { a.map { abs($0 - b) <= tol } ?? false }

    @Test func pearsonHandComputed() {
        // x̄ = 3, ȳ = 4; Σdxdy = 6, Σdx² = 10, Σdy² = 6 ⇒ r = 6/√60.
        #expect(close(Statistics.pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]), 6 / 60.0.squareRoot()))
        #expect(close(Statistics.pearson([1, 2, 3, 4], [2, 4, 6, 8]), 1))
        #expect(close(Statistics.pearson([1, 2, 3, 4], [8, 6, 4, 2]), -1))
        #expect(close(Statistics.pearson([1, 2, 3], [5, 9, 5]), 0))
    }

    @Test func pearsonUndefinedCases() {
        #expect(Statistics.pearson([1, 2, 3], [4, 4, 4]) == nil)   // constant y
        #expect(Statistics.pearson([1], [2]) == nil)
        #expect(Statistics.pearson([], []) == nil)
        #expect(Statistics.pearson([1, 2], [1]) == nil)
        #expect(Statistics.pearson([1, .nan, 3], [1, 2, 3]) == nil)
    }

    @Test func kendallTauBHandComputed() {
        // No ties: perfect agreement / disagreement.
        #expect(close(Statistics.kendallTauB([1, 2, 3, 4], [10, 20, 30, 40]), 1))
        #expect(close(Statistics.kendallTauB([1, 2, 3, 4], [4, 3, 2, 1]), -1))
        // 5 points, ties in y only: C = 7, D = 1, n0 = 10, n2 = 2 ⇒ 6/√(10·8) (scipy: 0.6708203932).
        #expect(close(Statistics.kendallTauB([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]), 6 / 80.0.squareRoot()))
        // One tie in x, one in y: C = 4, D = 0, n0 = 6 ⇒ 4/√(5·5) = 0.8 (scipy: 0.8).
        #expect(close(Statistics.kendallTauB([1, 1, 2, 3], [1, 2, 2, 3]), 0.8))
        // A pair tied in both counts in n1 and n2: C = 0, D = 2, n0 = 3 ⇒ −2/√(2·2) = −1.
        #expect(close(Statistics.kendallTauB([1, 1, 2], [3, 3, 1]), -1))
        // No ties, mixed: x = 1..4, y = 1,3,2,4: C = 5, D = 1 ⇒ 4/6.
        #expect(close(Statistics.kendallTauB([1, 2, 3, 4], [1, 3, 2, 4]), 4.0 / 6))
        #expect(Statistics.kendallTauB([1, 1, 1], [1, 2, 3]) == nil)
        #expect(Statistics.kendallTauB([1], [1]) == nil)
    }

    @Test func leastSquaresAndPercentiles() {
        let fit = Statistics.linearFit([0, 1, 2, 3], [1, 3, 5, 7])
        #expect(close(fit?.slope, 2) && close(fit?.intercept, 1))
        #expect(Statistics.linearFit([2, 2], [1, 3]) == nil)
        #expect(Statistics.percentile([1, 2, 3, 4], 25) == 1.75)   // numpy.percentile linear rule
        #expect(Statistics.percentile([1, 2, 3, 4], 100) == 4)
        #expect(Statistics.percentile([7], 2.5) == 7)
        #expect(Statistics.percentile([], 50).isNaN)
        #expect(Statistics.mean([1, 2, 3, 6]) == 3)
        #expect(Statistics.mean([]).isNaN)
        #expect(close(Statistics.standardDeviation([2, 4, 4, 4, 5, 5, 7, 9]), (32.0 / 7).squareRoot()))
        #expect(Statistics.standardDeviation([1]) == nil)
    }

    @Test func splitMix64ReferenceOutput() {
        var g = SplitMix64(seed: 0)
        #expect(g.next() == 0xE220_A839_7B1D_CDAF)   // the published first output for seed 0
        var a = SplitMix64(seed: 42), b = SplitMix64(seed: 42)
        for _ in 0 ..< 100 { let n = 1 + Int(a.next() % 20); #expect(b.index(below: n) < n) }
    }

    @Test func bootstrapIsDeterministicAndContainsTheMean() {
        let data: [Double] = [83.1, 84.7, 85.2, 85.9, 84.0, 86.3, 85.5, 84.9, 83.8, 85.0]
        let a = Statistics.bootstrapCI(data, seed: 7), b = Statistics.bootstrapCI(data, seed: 7)
        #expect(a != nil && a == b)
        let c = Statistics.bootstrapCI(data, seed: 8)
        #expect(c != a)
        let m = Statistics.mean(data)
        for seed: UInt64 in 0 ..< 20 {
            let ci = Statistics.bootstrapCI(data, seed: seed)!
            #expect(ci.contains(m))
            #expect(ci.lower >= data.min()! && ci.upper <= data.max()!)
        }
    }

    @Test func bootstrapWidthIsPlausible() {
        // 0…9: mean 4.5, population sd 2.87 ⇒ SE ≈ 0.91 ⇒ a 95% interval ≈ 4.5 ± 1.78.
        let ci = Statistics.bootstrapCI((0 ..< 10).map(Double.init), resamples: 1000, seed: 1)!
        #expect(ci.lower > 2.3 && ci.lower < 3.2)
        #expect(ci.upper > 5.8 && ci.upper < 6.7)
    }

    @Test func bootstrapDegenerateInputs() {
        let constant = Statistics.bootstrapCI([85.21, 85.21, 85.21, 85.21], seed: 3)!
        #expect(constant.width == 0 && constant.lower == 85.21)
        #expect(Statistics.bootstrapCI([42], seed: 3) == Interval(lower: 42, upper: 42))
        #expect(Statistics.bootstrapCI([], seed: 3) == nil)
        let e = Statistics.estimate([1, .nan, 3, .infinity])
        #expect(e.n == 2 && e.mean == 2 && e.ci != nil)
        let none = Statistics.estimate([.nan])
        #expect(none.n == 0 && none.mean.isNaN && none.ci == nil && none.sd == nil)
    }
}
