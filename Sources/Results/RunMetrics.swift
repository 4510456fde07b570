// Per-run statistics of docs/EXPERIMENTS.md §6.3, computed here once for every run: best post-prune test
// accuracy (at or after the last pruning epoch), its epoch and generalization gap, and mean
// stability and instability over the pruning epochs. Training's summary.json holds them for a
// finished run (from its epoch records); a report takes them from there, or recomputes them
// from metrics.jsonl rows for a run without one.
import PrunedJSON

/// One epoch as the per-run statistics read it: a metrics.jsonl row, or Training's EpochRecord.
public struct EpochAccuracy: Sendable, Equatable {
    /// 1-based.
    public var epoch: Int
    /// Training accuracy (%) over the epoch's steps.
    public var train: Double?
    /// Test accuracy (%) before and after this epoch's pruning.
    public var preTest: Double?
    public var postTest: Double?
    /// A pruning epoch in the statistics' sense (docs/EXPERIMENTS.md §6.2): the authors' average pruned score
    /// (avg_pruned_magnitude) is > 0.
    public var isPruningEpoch: Bool

    public init(epoch: Int, train: Double?, preTest: Double?, postTest: Double?, isPruningEpoch: Bool) {
        self.epoch = epoch
        self.train = train
        self.preTest = preTest
        self.postTest = postTest
        self.isPruningEpoch = isPruningEpoch
    }

    /// A metrics.jsonl row (train_acc, pre_test_acc, test_acc, avg_pruned_score); `epoch`, or
    /// the row's position + 1 without one.
    public init(row: JSON, position: Int) {
        self.init(epoch: row["epoch"]?.intValue ?? position + 1, train: row["train_acc"]?.doubleValue,
                  preTest: row["pre_test_acc"]?.doubleValue, postTest: row["test_acc"]?.doubleValue,
                  isPruningEpoch: (row["avg_pruned_score"]?.doubleValue ?? -1) > 0)
    }

    /// (t_pre − t_post) / t_pre, the code's (relative) instability of a pruning epoch; nil for
    /// other epochs and when t_pre is not positive.
    public var instability: Double? {
        guard isPruningEpoch, let pre = preTest, let post = postTest, pre > 0 else { return nil }
        return (pre - post) / pre
    }

    /// t_pre − t_post in accuracy points, the poster's (absolute) instability of a pruning epoch.
    public var instabilityPoints: Double? {
        guard isPruningEpoch, let pre = preTest, let post = postTest else { return nil }
        return pre - post
    }

    /// 100 · (1 − instability): the epoch's stability in %.
    public var stability: Double? { instability.map { 100 * (1 - $0) } }
}

/// Per-run statistics of docs/EXPERIMENTS.md §6.3. From epochs they are computed; for a report each field
/// comes from summary.json when it holds a finite number there, otherwise from the metrics rows
/// (for unfinished runs); nil when neither has it.
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
    /// Mean over pruning epochs of t_pre − t_post in points; 0 without pruning.
    public var meanInstabilityPoints: Double?
    /// 1-based last pruning epoch, 0 when none (or only at epoch ≤ 1, i.e. scratch pruning).
    public var lastPruningEpoch: Int?

    public init(bestTestAccuracy: Double? = nil, bestEpoch: Int? = nil, generalizationGap: Double? = nil,
                meanStability: Double? = nil, meanInstability: Double? = nil, meanInstabilityPoints: Double? = nil,
                lastPruningEpoch: Int? = nil) {
        self.bestTestAccuracy = bestTestAccuracy
        self.bestEpoch = bestEpoch
        self.generalizationGap = generalizationGap
        self.meanStability = meanStability
        self.meanInstability = meanInstability
        self.meanInstabilityPoints = meanInstabilityPoints
        self.lastPruningEpoch = lastPruningEpoch
    }

    /// The statistics of these epochs (no epochs: all nil). The last pruning epoch ≤ 1 counts as
    /// none (scratch pruning); stability and instability points average the pruning epochs up
    /// to it; the best accuracy is the first maximum of the finite post-prune test accuracies
    /// at or after it.
    public init(epochs: [EpochAccuracy]) {
        guard !epochs.isEmpty else { self.init(); return }
        let pruning = epochs.filter(\.isPruningEpoch)
        var last = pruning.map(\.epoch).max() ?? 0
        var used = pruning
        if last <= 1 { last = 0; used = [] }
        let stabilities = used.compactMap(\.stability)
        let stability = stabilities.isEmpty ? 100 : Statistics.mean(stabilities)
        let points = used.compactMap(\.instabilityPoints)
        var best: (epoch: EpochAccuracy, accuracy: Double)?
        for e in epochs where e.epoch >= last {
            guard let t = e.postTest, t.isFinite else { continue }
            if best.map({ t > $0.accuracy }) ?? true { best = (e, t) }
        }
        self.init(bestTestAccuracy: best?.accuracy, bestEpoch: best?.epoch.epoch,
                  generalizationGap: best.flatMap { b in b.epoch.train.map { $0 - b.accuracy } },
                  meanStability: stability, meanInstability: 100 - stability,
                  meanInstabilityPoints: points.isEmpty ? 0 : Statistics.mean(points), lastPruningEpoch: last)
    }

    /// A report's view of a run: summary.json's statistics field by field, the rows' otherwise.
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
        meanInstabilityPoints = number("mean_instability_points") ?? computed.meanInstabilityPoints
        lastPruningEpoch = summary?["last_pruning_epoch"]?.intValue ?? computed.lastPruningEpoch
    }

    /// The statistics of metrics.jsonl rows.
    public static func fromRows(_ rows: [JSON]) -> RunMetrics {
        RunMetrics(epochs: rows.enumerated().map { EpochAccuracy(row: $1, position: $0) })
    }
}
