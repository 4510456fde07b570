// One run as the results code sees it (spec.json, summary.json, metrics.jsonl of a run
// directory), its per-run statistics of spec §6.3 (RunMetrics: from summary.json when present,
// otherwise recomputed from the metrics rows exactly as Training's RunStatistics does), and the
// "iterative pruning rate" of spec §5.2.
import Foundation
import PrunedJSON
import RunLayout

/// One finished (or partial, or failed) run.
public struct RunResult: Sendable {
    /// A unique name (the run directory's name by default).
    public var id: String
    /// Group and tags from the daemon's ledger, if any (not used for grouping configurations).
    public var group: String?
    public var tags: [String]
    /// The canonical spec the run recorded (spec.json, or the "spec" of summary.json).
    public var spec: JSON
    /// summary.json as an object; nil while the run is unfinished.
    public var summary: JSON?
    /// metrics.jsonl, one object per epoch.
    public var rows: [JSON]
    /// The run's state in the daemon's ledger ("completed", "failed", …), if known.
    public var state: String?

    public init(id: String, group: String? = nil, tags: [String] = [], spec: JSON, summary: JSON? = nil, rows: [JSON] = [],
                state: String? = nil) {
        self.id = id
        self.group = group
        self.tags = tags
        self.spec = spec
        self.summary = summary
        self.rows = rows
        self.state = state
    }

    /// Whether summary.json exists.
    public var isFinished: Bool { summary != nil }

    /// Whether the run failed (diverged, final checkpoint not written, bad data, …): its state
    /// is "failed". A failed run never contributes to a report's statistics; it is counted.
    public var isFailed: Bool { state == "failed" }

    /// Best accuracy, gap and stability of this run (spec §6.3).
    public var metrics: RunMetrics { RunMetrics(summary: summary, rows: rows) }

    /// Iterative pruning rate in % per event (spec §5.2); nil without pruning.
    public var iterativeRate: Double? { IterativeRate.percent(spec: spec) }

    /// Reads a run directory: spec.json (or, failing that, summary.json's "spec"), summary.json
    /// if present, metrics.jsonl if present. An unparsable final metrics line (a write cut
    /// short) is ignored; an unparsable line before it is an error. `state` is the ledger's state
    /// when known (the directory does not record it).
    public static func load(directory: String, id: String? = nil, group: String? = nil, tags: [String] = [],
                            state: String? = nil) throws -> RunResult {
        let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        let files = RunDirectory(dir)
        func read(_ path: String) throws -> String? {
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw ResultsError(path: path, problem: "cannot be read (\(error.localizedDescription))")
            }
        }
        func parse(_ text: String, _ path: String) throws -> JSON {
            do { return try JSON.parse(text) } catch let e as JSONParseError {
                throw ResultsError(path: path, problem: e.description)
            }
        }
        let summary = try read(files.summary).map { try parse($0, files.summary) }
        var spec = try read(files.spec).map { try parse($0, files.spec) }
        if spec == nil { spec = summary?["spec"] }
        guard let spec else { throw ResultsError(path: dir, problem: "holds no spec.json (not a run directory)") }
        var rows: [JSON] = []
        if let text = try read(files.metrics) {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
            for (i, line) in lines.enumerated() {
                do { rows.append(try JSON.parse(String(line))) } catch let e as JSONParseError {
                    if i == lines.count - 1 { break }
                    throw ResultsError(path: files.metrics, problem: "line \(i + 1): \(e.description)")
                }
            }
        }
        return RunResult(id: id ?? (dir as NSString).lastPathComponent, group: group, tags: tags, spec: spec,
                         summary: summary, rows: rows, state: state)
    }
}

public struct ResultsError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public var description: String { "\(path): \(problem)" }
}

/// Per-run statistics of spec §6.3. Each field comes from summary.json when it holds a finite
/// number there, otherwise from the metrics rows (for unfinished runs); nil when neither has it.
public struct RunMetrics: Equatable, Sendable {
    /// Max post-prune test accuracy (%) over epochs ≥ the last pruning epoch.
    public var bestTestAccuracy: Double?
    /// 1-based epoch of that maximum (first one reaching it).
    public var bestEpoch: Int?
    /// train_acc − test_acc at the best epoch, in points.
    public var generalizationGap: Double?
    /// Mean over pruning epochs of 100·(1 − (t_pre − t_post)/t_pre); 100 without pruning.
    public var meanStability: Double?
    /// 100 − mean stability.
    public var meanInstability: Double?
    /// 1-based last pruning epoch, 0 when none (or only at epoch ≤ 1, i.e. scratch pruning).
    public var lastPruningEpoch: Int?

    public init(bestTestAccuracy: Double? = nil, bestEpoch: Int? = nil, generalizationGap: Double? = nil,
                meanStability: Double? = nil, meanInstability: Double? = nil, lastPruningEpoch: Int? = nil) {
        self.bestTestAccuracy = bestTestAccuracy
        self.bestEpoch = bestEpoch
        self.generalizationGap = generalizationGap
        self.meanStability = meanStability
        self.meanInstability = meanInstability
        self.lastPruningEpoch = lastPruningEpoch
    }

    public init(summary: JSON?, rows: [JSON]) {
        let computed = RunMetrics.fromRows(rows)
        func number(_ key: String) -> Double? {
            guard let d = summary?[key]?.doubleValue, d.isFinite else { return nil }
            return d
        }
        bestTestAccuracy = number("best_test_acc") ?? computed.bestTestAccuracy
        bestEpoch = summary?["best_epoch"]?.intValue ?? computed.bestEpoch
        generalizationGap = number("generalization_gap") ?? computed.generalizationGap
        meanStability = number("mean_stability") ?? computed.meanStability
        meanInstability = number("mean_instability") ?? meanStability.map { 100 - $0 }
        lastPruningEpoch = summary?["last_pruning_epoch"]?.intValue ?? computed.lastPruningEpoch
    }

    /// The statistics recomputed from metrics rows with the rules of Training's RunStatistics:
    /// a pruning epoch has avg_pruned_score > 0; the last one ≤ 1 counts as none (scratch);
    /// stability uses pre_test_acc and test_acc of the pruning epochs (pre > 0); the best
    /// accuracy is the first maximum of test_acc over epochs ≥ the last pruning epoch.
    public static func fromRows(_ rows: [JSON]) -> RunMetrics {
        struct Row { var epoch: Int; var train: Double?; var pre: Double?; var post: Double?; var pruning: Bool }
        let parsed = rows.enumerated().map { i, r in
            Row(epoch: r["epoch"]?.intValue ?? i + 1, train: r["train_acc"]?.doubleValue, pre: r["pre_test_acc"]?.doubleValue,
                post: r["test_acc"]?.doubleValue, pruning: (r["avg_pruned_score"]?.doubleValue ?? -1) > 0)
        }
        guard !parsed.isEmpty else { return RunMetrics() }
        let pruning = parsed.filter(\.pruning)
        var last = pruning.map(\.epoch).max() ?? 0
        var used = pruning
        if last <= 1 { last = 0; used = [] }
        let stabilities: [Double] = used.compactMap { r in
            guard let pre = r.pre, let post = r.post, pre > 0 else { return nil }
            return 100 * (1 - (pre - post) / pre)
        }
        let stability = stabilities.isEmpty ? 100 : Statistics.mean(stabilities)
        var best: Row?
        for r in parsed where r.epoch >= last {
            guard let t = r.post, t.isFinite else { continue }
            if best == nil || t > best!.post! { best = r }
        }
        return RunMetrics(bestTestAccuracy: best?.post, bestEpoch: best?.epoch,
                          generalizationGap: best.flatMap { b in b.train.map { $0 - b.post! } },
                          meanStability: stability, meanInstability: 100 - stability, lastPruningEpoch: last)
    }
}

/// Spec §5.2: "iterative pruning rate" = frac / n of the layer with the largest fraction, where
/// n = len(range(start, end + 1, period)) is that layer's number of pruning events (epochs start,
/// start + period, … ≤ end, as Engine's LayerPlan.events). Ties for the largest fraction go to the
/// first layer listed.
public enum IterativeRate {
    /// Number of events of a layer: len(range(start, end + 1, period)); 0 if end < start.
    public static func events(start: Int, end: Int, period: Int) -> Int {
        guard end >= start else { return 0 }
        return (end - start) / max(period, 1) + 1
    }

    /// The rate in percent of the layer's original units per event (rounded to 12 decimals);
    /// nil when the spec has no pruning layers (or the largest-fraction layer lacks a schedule).
    public static func percent(spec: JSON) -> Double? {
        guard let pruning = spec["pruning"], let layers = pruning["layers"]?.arrayValue, !layers.isEmpty else { return nil }
        var chosen: JSON?
        var largest = -Double.infinity
        for l in layers {
            if let f = l["fraction"]?.doubleValue, f > largest { largest = f; chosen = l }
        }
        guard let layer = chosen else { return nil }
        let scratch = pruning["scratch"]?.boolValue ?? false
        guard let start = layer["start"]?.intValue ?? (scratch ? 0 : nil),
              let end = layer["end"]?.intValue ?? (scratch ? 0 : nil) else { return nil }
        let period = layer["period"]?.intValue ?? pruning["period"]?.intValue ?? 1
        let n = events(start: start, end: end, period: period)
        guard n > 0 else { return nil }
        // Rounded to 12 decimals so that e.g. 0.9 / 1 reads 90 rather than 90.00000000000001.
        return (largest / Double(n) * 100 * 1e12).rounded() / 1e12
    }
}
