// summary.json, written atomically when a run completes: the run's size, final and best
// accuracies, its per-run statistics, final sparsity and canonical spec.
import Engine
import PrunedJSON

/// Per-run statistics of spec §6: stability over pruning epochs, best post-prune accuracy at
/// or after the last pruning epoch, and the generalization gap at that epoch.
public struct RunStatistics: Sendable {
    /// 1-based epoch of the last pruning epoch, 0 when none (or scratch only).
    public var lastPruningEpoch: Int
    public var meanStability: Double
    public var meanInstability: Double { 100 - meanStability }
    public var meanInstabilityPoints: Double
    public var bestTestAccuracy: Double
    public var bestEpoch: Int
    public var generalizationGap: Double

    public init?(_ records: [EpochRecord]) {
        guard !records.isEmpty else { return nil }
        let pruning = records.filter(\.isPruningEpoch)
        var last = pruning.map(\.epoch).max() ?? 0
        var used = pruning
        if last <= 1 { last = 0; used = [] }
        lastPruningEpoch = last
        let stabilities = used.compactMap(\.instability).map { 100 * (1 - $0) }
        meanStability = stabilities.isEmpty ? 100 : stabilities.reduce(0, +) / Double(stabilities.count)
        let points = used.compactMap(\.instabilityPoints)
        meanInstabilityPoints = points.isEmpty ? 0 : points.reduce(0, +) / Double(points.count)
        var best = records[0]
        var found = false
        for r in records where r.epoch >= last {
            if !found || r.post.top1 > best.post.top1 { best = r; found = true }
        }
        bestTestAccuracy = best.post.top1
        bestEpoch = best.epoch
        generalizationGap = best.train.top1 - best.post.top1
    }
}

/// What a finished run reports in summary.json.
public struct RunSummary: Sendable {
    public var spec: RunSpec
    public var records: [EpochRecord]
    public var threads: Int
    public var parameters: Int
    public var seconds: Double
    /// Units (filters, neurons or weights) of each pruned layer.
    public var totalUnits: [String: Int] = [:]
    /// The run stopped early on request (a checkpoint holds its state); no summary.json.
    public var interrupted = false
    /// The checkpoint the run resumed from, if any.
    public var resumedFrom: String?


    public var json: JSON {
        var pairs: [(String, JSON)] = [
            ("name", .string(spec.name)), ("model", .string(spec.architecture.rawValue)),
            ("dataset", .string(spec.data.kind.rawValue)), ("dataset_note", .string(datasetNote(spec.data.kind))),
            ("epochs", .number(Double(records.count))), ("parameters", .number(Double(parameters))),
            ("threads", .number(Double(threads))), ("seed", .number(Double(spec.seed))), ("seconds", .number(seconds)),
        ]
        if let last = records.last {
            pairs += [("final_train_acc", .number(last.train.top1)), ("final_test_acc", .number(last.post.top1)),
                      ("final_test_loss", .number(last.post.meanLoss))]
        }
        if let st = RunStatistics(records) {
            pairs += [("best_test_acc", .number(st.bestTestAccuracy)), ("best_epoch", .number(Double(st.bestEpoch))),
                      ("generalization_gap", .number(st.generalizationGap)),
                      ("last_pruning_epoch", .number(Double(st.lastPruningEpoch))),
                      ("mean_stability", .number(st.meanStability)), ("mean_instability", .number(st.meanInstability)),
                      ("mean_instability_points", .number(st.meanInstabilityPoints)),
                      ("pruning_epochs", .number(Double(records.filter(\.isPruningEpoch).count)))]
        }
        if let last = records.last, !last.prunedCounts.isEmpty, let plan = spec.pruning {
            pairs.append(("final_sparsity", .object(last.prunedCounts.map { name, count in
                let total = totalUnits[name] ?? 0
                return (name, .object([("pruned", .number(Double(count))), ("units", .number(Double(total))),
                                       ("fraction", .number(total > 0 ? Double(count) / Double(total) : 0)),
                                       ("planned_fraction", .number(plan.layers.first { $0.name == name }?.fraction ?? 0))]))
            })))
        }
        pairs.append(("spec", spec.json))
        return .object(pairs)
    }

    func datasetNote(_ kind: DatasetKind) -> String {
        switch kind {
        case .cifar10: return "CIFAR-10"
        case .cifar100: return "CIFAR-100"
        case .fashion_mnist: return "Fashion-MNIST (28x28 grey padded to 32x32, 3 planes); not CIFAR-10"
        case .mnist: return "MNIST (28x28 grey padded to 32x32, 3 planes); not CIFAR-10"
        }
    }
}
