// The results report: per configuration the number of runs, mean and bootstrapped 95% CI of
// the best post-prune test accuracy, mean stability, mean instability and generalization gap
// (docs/EXPERIMENTS.md §6.3/§6.4), and the iterative pruning rate; across all runs the Pearson r and Kendall
// tau-b of mean stability against best accuracy and against the gap (one point per run, as the
// paper's correlation panels). Failed runs (diverged, final checkpoint not written, …) never
// contribute: each configuration counts them as excluded. Rendered as an aligned text table,
// CSV, or a JSON value.
import Foundation
import PrunedJSON

/// One configuration's row of the report.
public struct ConfigurationReport: Sendable {
    public var label: String
    /// Canonical key of the configuration (see Configurations.key).
    public var key: String
    public var spec: JSON
    public var runIDs: [String]
    /// Runs of the configuration that contribute (failed ones excluded), and how many of them
    /// have a summary.json.
    public var runs: Int
    public var finished: Int
    /// Failed runs of the configuration, excluded from every statistic.
    public var failed: Int = 0
    public var failedRunIDs: [String] = []
    public var bestTestAccuracy: Estimate
    public var stability: Estimate
    public var instability: Estimate
    public var generalizationGap: Estimate
    /// % of the largest-fraction layer per event; nil without pruning.
    public var iterativeRate: Double?
}

/// A correlation across runs (pairs where both values are finite).
public struct CorrelationReport: Sendable {
    public var x: String
    public var y: String
    public var n: Int
    public var pearson: Double?
    public var kendallTauB: Double?
    /// Why both are nil when they are ("n too small: …", Statistics.correlation).
    public var reason: String? = nil
}

public struct Report: Sendable {
    public var configurations: [ConfigurationReport]
    public var correlations: [CorrelationReport]
    public var resamples: Int
    public var seed: UInt64

    /// Failed runs over all configurations (excluded from every statistic).
    public var failed: Int { configurations.reduce(0) { $0 + $1.failed } }

    /// Builds the report. Each bootstrap uses a fresh SplitMix64 seeded with `seed`, so a row does
    /// not depend on which other configurations are present. Failed runs are grouped with their
    /// configuration (a configuration whose runs all failed still gets a row) and only counted.
    public init(runs: [RunResult], resamples: Int = Statistics.defaultResamples, seed: UInt64 = 0) {
        self.resamples = resamples
        self.seed = seed
        let configs = Configurations.group(runs)
        configurations = configs.map { c in
            let counted = c.runs.filter { !$0.isFailed }, failed = c.runs.filter(\.isFailed)
            let m = counted.map(\.metrics)
            func est(_ values: [Double?]) -> Estimate { Statistics.estimate(values.compactMap { $0 }, resamples: resamples, seed: seed) }
            return ConfigurationReport(
                label: c.label, key: c.key, spec: c.spec, runIDs: counted.map(\.id), runs: counted.count,
                finished: counted.filter(\.isFinished).count, failed: failed.count, failedRunIDs: failed.map(\.id),
                bestTestAccuracy: est(m.map(\.bestTestAccuracy)), stability: est(m.map(\.meanStability)),
                instability: est(m.map(\.meanInstability)), generalizationGap: est(m.map(\.generalizationGap)),
                iterativeRate: c.iterativeRate)
        }
        let all = configs.flatMap(\.runs).filter { !$0.isFailed }.map(\.metrics)
        func correlate(_ xName: String, _ x: KeyPath<RunMetrics, Double?>, _ yName: String, _ y: KeyPath<RunMetrics, Double?>) -> CorrelationReport {
            let pairs = all.compactMap { m -> (Double, Double)? in
                guard let a = m[keyPath: x], let b = m[keyPath: y], a.isFinite, b.isFinite else { return nil }
                return (a, b)
            }
            let xs = pairs.map(\.0), ys = pairs.map(\.1)
            let c = Statistics.correlation(xs, ys)
            return CorrelationReport(x: xName, y: yName, n: pairs.count, pearson: c.pearson, kendallTauB: c.kendallTauB, reason: c.reason)
        }
        correlations = [
            correlate("mean_stability", \.meanStability, "best_test_acc", \.bestTestAccuracy),
            correlate("mean_stability", \.meanStability, "generalization_gap", \.generalizationGap),
        ]
    }

    // MARK: renderings

    /// Aligned text: one line per configuration ("mean [CI low, CI high] n=N", 2 decimals; "–"
    /// when there is no value, "[n too small]" for a single value), then the correlations with
    /// their n ("n too small" below 3 distinct points).
    public func table() -> String {
        func num(_ d: Double?, _ digits: Int = 2) -> String {
            guard let d, d.isFinite else { return "–" }
            return String(format: "%.\(digits)f", d)
        }
        func withCI(_ e: Estimate) -> String {
            guard e.n > 0 else { return "– n=0" }
            guard let ci = e.ci else { return "\(num(e.mean)) [\(Statistics.tooSmall)] n=\(e.n)" }
            return "\(num(e.mean)) [\(num(ci.lower)), \(num(ci.upper))] n=\(e.n)"
        }
        let header = ["configuration", "runs", "finished", "failed", "best test acc % [95% CI]", "mean stability % [95% CI]",
                      "mean instability %", "gen. gap pts [95% CI]", "rate %/event"]
        var rows = [header]
        for c in configurations {
            rows.append([c.label, "\(c.runs)", "\(c.finished)", "\(c.failed)", withCI(c.bestTestAccuracy), withCI(c.stability),
                         c.instability.n > 0 ? "\(num(c.instability.mean)) n=\(c.instability.n)" : "– n=0", withCI(c.generalizationGap),
                         num(c.iterativeRate)])
        }
        var widths = header.map { _ in 0 }
        for r in rows { for (i, cell) in r.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func pad(_ s: String, _ w: Int, left: Bool) -> String {
            let fill = String(repeating: " ", count: max(0, w - s.count))
            return left ? s + fill : fill + s
        }
        var lines = rows.map { r in
            r.enumerated().map { i, cell in pad(cell, widths[i], left: i == 0) }.joined(separator: "  ")
                .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        lines.insert(String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1)), at: 1)
        if configurations.isEmpty { lines.append("(no runs)") }
        lines.append("")
        if failed > 0 {
            let ids = configurations.flatMap(\.failedRunIDs)
            lines.append("excluded: \(failed) failed run\(failed == 1 ? "" : "s") (\(ids.joined(separator: ", "))); "
                         + "they count in no statistic.")
        }
        lines.append("95% CIs: percentile bootstrap of the mean over runs, \(resamples) resamples, seed \(seed); "
                     + "none below \(Statistics.minimumForCI) runs, no correlation below \(Statistics.minimumForCorrelation) distinct points.")
        for c in correlations {
            if let reason = c.reason {
                lines.append("\(c.x) vs \(c.y): n=\(c.n)  Pearson r and Kendall tau-b: \(reason)")
            } else {
                lines.append("\(c.x) vs \(c.y): n=\(c.n)  Pearson r=\(num(c.pearson, 4))  Kendall tau-b=\(num(c.kendallTauB, 4))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static let csvHeader = [
        "configuration", "runs", "finished",
        "best_test_acc_mean", "best_test_acc_ci_low", "best_test_acc_ci_high",
        "mean_stability", "mean_stability_ci_low", "mean_stability_ci_high",
        "mean_instability", "mean_instability_ci_low", "mean_instability_ci_high",
        "generalization_gap_mean", "generalization_gap_ci_low", "generalization_gap_ci_high",
        "iterative_rate_percent", "failed",
        "best_test_acc_n", "mean_stability_n", "mean_instability_n", "generalization_gap_n", "ci_note",
    ]

    /// CSV (RFC 4180 quoting, "\n" line ends): the header `csvHeader`, then one row per
    /// configuration; numbers in shortest round-trip form, empty when absent; "failed" (last, so
    /// the earlier columns keep their places) counts the failed runs excluded; after it the n of
    /// each figure and "ci_note": "n too small" when a figure has a value but no CI (one run).
    /// The correlations are in table() and json().
    public func csv() -> String {
        func field(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        func num(_ d: Double?) -> String { d.map { $0.isFinite ? JSON.format($0) : "" } ?? "" }
        func est(_ e: Estimate) -> [String] { [num(e.n > 0 ? e.mean : nil), num(e.ci?.lower), num(e.ci?.upper)] }
        var lines = [Report.csvHeader.joined(separator: ",")]
        for c in configurations {
            let cells = [field(c.label), "\(c.runs)", "\(c.finished)"] + est(c.bestTestAccuracy) + est(c.stability)
                + est(c.instability) + est(c.generalizationGap) + [num(c.iterativeRate), "\(c.failed)"]
                + [c.bestTestAccuracy, c.stability, c.instability, c.generalizationGap].map { "\($0.n)" }
                + [[c.bestTestAccuracy, c.stability, c.instability, c.generalizationGap].contains { $0.n > 0 && $0.ci == nil }
                    ? Statistics.tooSmall : ""]
            lines.append(cells.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The report as JSON: bootstrap settings, configurations (label, stripped spec, run ids,
    /// counts, failed runs excluded with their ids, each metric as {n, mean, sd, ci: [low, high],
    /// ci_note}, iterative_rate_percent), correlations ({x, y, n, pearson_r, kendall_tau_b,
    /// reason}) and the number of failed runs excluded in all. Missing values are null; ci_note
    /// and reason say "n too small…" where the n rules withhold a CI or a correlation.
    public func json() -> JSON {
        func num(_ d: Double?) -> JSON { d.map { $0.isFinite ? .number($0) : .null } ?? .null }
        func est(_ e: Estimate) -> JSON {
            .object([("n", .number(Double(e.n))), ("mean", num(e.n > 0 ? e.mean : nil)), ("sd", num(e.sd)),
                     ("ci", e.ci.map { .array([num($0.lower), num($0.upper)]) } ?? .null),
                     ("ci_note", e.n > 0 && e.ci == nil ? .string(Statistics.tooSmall) : .null)])
        }
        return .object([
            ("bootstrap", .object([("resamples", .number(Double(resamples))), ("seed", .number(Double(seed))),
                                   ("level", .number(95))])),
            ("configurations", .array(configurations.map { c in
                .object([("label", .string(c.label)), ("runs", .number(Double(c.runs))), ("finished", .number(Double(c.finished))),
                         ("failed", .number(Double(c.failed))),
                         ("run_ids", .array(c.runIDs.map { .string($0) })), ("failed_run_ids", .array(c.failedRunIDs.map { .string($0) })),
                         ("best_test_acc", est(c.bestTestAccuracy)), ("mean_stability", est(c.stability)),
                         ("mean_instability", est(c.instability)), ("generalization_gap", est(c.generalizationGap)),
                         ("iterative_rate_percent", num(c.iterativeRate)), ("spec", c.spec)])
            })),
            ("correlations", .array(correlations.map { c in
                .object([("x", .string(c.x)), ("y", .string(c.y)), ("n", .number(Double(c.n))),
                         ("pearson_r", num(c.pearson)), ("kendall_tau_b", num(c.kendallTauB)),
                         ("reason", c.reason.map { .string($0) } ?? .null)])
            })),
            ("failed_runs", .number(Double(failed))),
        ])
    }
}
