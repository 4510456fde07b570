// Statistics for the results of docs/EXPERIMENTS.md §6.4: means, bootstrapped percentile confidence intervals
// (seaborn 0.10 lineplot defaults: 1,000 resamples of the runs with replacement, 2.5th/97.5th
// percentiles of the resampled means), Pearson r, Kendall tau-b and least-squares lines.
// The paper's bootstrap was unseeded; here it is deterministic given a seed (SplitMix64 and a
// fixed index-drawing rule), so a report is reproducible bit for bit.

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed, seeded generator. Its output
/// sequence is fixed by this code, not by the Swift standard library.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform index in 0..<n (n > 0) by the multiply-high rule (bias < n / 2^64).
    public mutating func index(below n: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(n)).high)
    }
}

/// A closed interval [lower, upper].
public struct Interval: Equatable, Sendable, CustomStringConvertible {
    public var lower: Double
    public var upper: Double

    public init(lower: Double, upper: Double) {
        self.lower = lower
        self.upper = upper
    }

    public var width: Double { upper - lower }
    public func contains(_ x: Double) -> Bool { lower <= x && x <= upper }
    public var description: String { "[\(lower), \(upper)]" }
}

/// Mean, sample standard deviation and bootstrap CI of one metric over the runs of a
/// configuration. Non-finite values are dropped first; `n` counts the values used.
public struct Estimate: Equatable, Sendable {
    public var n: Int
    /// NaN when n == 0.
    public var mean: Double
    /// Sample standard deviation (n − 1 denominator); nil when n < 2.
    public var sd: Double?
    /// Bootstrap percentile interval; nil when n == 0.
    public var ci: Interval?

    public init(n: Int, mean: Double, sd: Double?, ci: Interval?) {
        self.n = n
        self.mean = mean
        self.sd = sd
        self.ci = ci
    }
}

public enum Statistics {
    /// Number of bootstrap resamples (seaborn's default `n_boot`).
    public static let defaultResamples = 1000

    /// Arithmetic mean; NaN for no values.
    public static func mean(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        return values.reduce(0, +) / Double(values.count)
    }

    /// Sample standard deviation (n − 1 denominator); nil for fewer than two values.
    public static func standardDeviation(_ values: [Double]) -> Double? {
        guard values.count >= 2 else { return nil }
        let m = mean(values)
        let ss = values.reduce(0) { $0 + ($1 - m) * ($1 - m) }
        return (ss / Double(values.count - 1)).squareRoot()
    }

    /// The p-th percentile (0…100) with linear interpolation between order statistics
    /// (numpy's default, as seaborn uses). NaN for no values.
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let s = values.sorted()
        let pos = min(max(p, 0), 100) / 100 * Double(s.count - 1)
        let lo = Int(pos.rounded(.down)), hi = Int(pos.rounded(.up))
        return s[lo] + (s[hi] - s[lo]) * (pos - Double(lo))
    }

    /// Bootstrap percentile CI of the mean: `resamples` times draw values.count values with
    /// replacement, take their mean; return the (50 − level/2)th and (50 + level/2)th percentiles
    /// of those means. Deterministic given `seed`. nil for no values; a single value or constant
    /// data gives a zero-width interval.
    public static func bootstrapCI(_ values: [Double], level: Double = 95, resamples: Int = defaultResamples,
                                   seed: UInt64 = 0) -> Interval? {
        guard !values.isEmpty else { return nil }
        let n = values.count
        var rng = SplitMix64(seed: seed)
        var means = [Double](repeating: 0, count: max(resamples, 1))
        for b in means.indices {
            var sum = 0.0
            for _ in 0 ..< n { sum += values[rng.index(below: n)] }
            means[b] = sum / Double(n)
        }
        let tail = (100 - level) / 2
        return Interval(lower: percentile(means, tail), upper: percentile(means, 100 - tail))
    }

    /// The fewest values a CI is given for, and the fewest distinct (x, y) points a correlation
    /// is reported for: a bootstrap of one value is a zero-width interval, and any two distinct
    /// points correlate perfectly (issue 13).
    public static let minimumForCI = 2
    public static let minimumForCorrelation = 3
    /// What the report says instead of a CI or correlation below those minimums.
    public static let tooSmall = "n too small"

    /// Mean, SD and bootstrap CI of the finite values; no CI below `minimumForCI` values.
    public static func estimate(_ values: [Double], resamples: Int = defaultResamples, seed: UInt64 = 0) -> Estimate {
        let v = values.filter(\.isFinite)
        return Estimate(n: v.count, mean: mean(v), sd: standardDeviation(v),
                        ci: v.count >= minimumForCI ? bootstrapCI(v, resamples: resamples, seed: seed) : nil)
    }

    /// The number of distinct (x, y) pairs.
    public static func distinctPoints(_ x: [Double], _ y: [Double]) -> Int {
        var seen: [[Double]] = []
        for (a, b) in zip(x, y) where !seen.contains([a, b]) { seen.append([a, b]) }
        return seen.count
    }

    /// Pearson r and Kendall τ-b, or nil for both with the reason when there are fewer than
    /// `minimumForCorrelation` distinct points.
    public static func correlation(_ x: [Double], _ y: [Double]) -> (pearson: Double?, kendallTauB: Double?, reason: String?) {
        let d = distinctPoints(x, y)
        guard d >= minimumForCorrelation else {
            return (nil, nil, "\(tooSmall): \(d) distinct point\(d == 1 ? "" : "s"), a correlation needs \(minimumForCorrelation)")
        }
        return (pearson(x, y), kendallTauB(x, y), nil)
    }

    /// Pearson's product-moment correlation; nil when the lengths differ, n < 2, any value is not
    /// finite, or either variable is constant.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double? {
        guard x.count == y.count, x.count >= 2, (x + y).allSatisfy(\.isFinite) else { return nil }
        let mx = mean(x), my = mean(y)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in x.indices {
            let dx = x[i] - mx, dy = y[i] - my
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy
        }
        guard sxx > 0, syy > 0 else { return nil }
        return min(1, max(-1, sxy / (sxx * syy).squareRoot()))
    }

    /// Kendall's tau-b (as scipy.stats.kendalltau): (C − D) / sqrt((n0 − n1)(n0 − n2)) with
    /// n0 = n(n−1)/2 pairs, n1 / n2 the pairs tied in x / in y (a pair tied in both counts in
    /// both and in neither C nor D). nil when the lengths differ, n < 2, a value is not finite,
    /// or either variable is constant. O(n²), fine for run counts.
    public static func kendallTauB(_ x: [Double], _ y: [Double]) -> Double? {
        guard x.count == y.count, x.count >= 2, (x + y).allSatisfy(\.isFinite) else { return nil }
        var concordant = 0, discordant = 0, tiesX = 0, tiesY = 0
        let n = x.count
        for i in 0 ..< n {
            for j in (i + 1) ..< n {
                let dx = x[i] - x[j], dy = y[i] - y[j]
                if dx == 0 { tiesX += 1 }
                if dy == 0 { tiesY += 1 }
                if dx == 0 || dy == 0 { continue }
                if (dx > 0) == (dy > 0) { concordant += 1 } else { discordant += 1 }
            }
        }
        let n0 = Double(n * (n - 1) / 2)
        let denominator = ((n0 - Double(tiesX)) * (n0 - Double(tiesY))).squareRoot()
        guard denominator > 0 else { return nil }
        return min(1, max(-1, Double(concordant - discordant) / denominator))
    }

    /// Ordinary least squares y = intercept + slope·x; nil when n < 2, a value is not finite,
    /// or x is constant.
    public static func linearFit(_ x: [Double], _ y: [Double]) -> (slope: Double, intercept: Double)? {
        guard x.count == y.count, x.count >= 2, (x + y).allSatisfy(\.isFinite) else { return nil }
        let mx = mean(x), my = mean(y)
        var sxy = 0.0, sxx = 0.0
        for i in x.indices { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) * (x[i] - mx) }
        guard sxx > 0 else { return nil }
        let slope = sxy / sxx
        return (slope, my - slope * mx)
    }
}
