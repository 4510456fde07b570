// summary.json, written atomically when a run completes: the run's size, final and best
// accuracies, its per-run statistics, final sparsity and canonical spec.
import Engine
import PrunedJSON
import Results

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
        let st = RunMetrics(records: records)
        if let best = st.bestTestAccuracy, let bestEpoch = st.bestEpoch, let gap = st.generalizationGap,
           let lastPruning = st.lastPruningEpoch, let stability = st.meanStability, let instability = st.meanInstability,
           let points = st.meanInstabilityPoints {
            pairs += [("best_test_acc", .number(best)), ("best_epoch", .number(Double(bestEpoch))),
                      ("generalization_gap", .number(gap)),
                      ("last_pruning_epoch", .number(Double(lastPruning))),
                      ("mean_stability", .number(stability)), ("mean_instability", .number(instability)),
                      ("mean_instability_points", .number(points)),
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

extension RunMetrics {
    /// The per-run statistics of a run's epoch records (summary.json, `pruned run`'s last line).
    public init(records: [EpochRecord]) { self.init(epochs: records.map(\.accuracy)) }
}
