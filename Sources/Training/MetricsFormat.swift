// metrics.jsonl, one JSON object per epoch (appended and fsynced by ForegroundRun): the
// epoch's losses and accuracies, and after a pruning event the units pruned and the event.
import Engine
import PrunedJSON
import Results

/// Epoch records as metrics.jsonl lines.
public enum MetricsFormat {
    public static func json(_ r: EpochRecord) -> JSON {
        .object([
            ("epoch", .number(Double(r.epoch))),
            ("train_loss", .number(r.train.meanLoss)), ("train_acc", .number(r.train.top1)), ("train_acc5", .number(r.train.top5)),
            ("pre_test_loss", .number(r.pre.meanLoss)), ("pre_test_acc", .number(r.pre.top1)), ("pre_test_acc5", .number(r.pre.top5)),
            ("test_loss", .number(r.post.meanLoss)), ("test_acc", .number(r.post.top1)), ("test_acc5", .number(r.post.top5)),
            ("lr", .number(r.lr)), ("seconds", .number(r.seconds)), ("train_images_per_second", .number(r.trainImagesPerSecond)),
            ("trained", .bool(r.trained)),
        ] + (r.macsPerImage.map { [("macs_per_image", JSON.number(Double($0)))] } ?? []) + pruningFields(r))
    }

    static func pruningFields(_ r: EpochRecord) -> [(String, JSON)] {
        guard !r.prunedCounts.isEmpty else { return [] }
        var out: [(String, JSON)] = [
            ("pruned", .object(r.prunedCounts.map { ($0.0, .number(Double($0.1))) })),
            ("p_count", .number(Double(r.prunedCounts.reduce(0) { $0 + $1.1 }))),
            ("avg_pruned_score", r.averagePrunedScore.map { $0 < 0 ? JSON.null : .number($0) } ?? .null),
        ]
        if let event = pruneEvent(r) { out.append(("prune_event", event)) }
        return out
    }

    /// The `prune_event` of an epoch whose event pruned units (nil otherwise): each layer's k
    /// and mean score, the test accuracy before and after, instability (relative and in
    /// points) and stability. metrics.jsonl holds it; the daemon's `prune` events carry its
    /// fields (Daemon.pruneEventFields), from the record for local runs and from the metrics
    /// row for Slurm runs.
    public static func pruneEvent(_ r: EpochRecord) -> JSON? {
        guard let events = r.pruning, !events.isEmpty else { return nil }
        let epoch = r.accuracy
        return .object([
            ("layers", .array(events.map { .object([("layer", .string($0.layer)), ("k", .number(Double($0.k))),
                                                    ("mean_score", .number($0.meanScore))]) })),
            ("t_pre", .number(r.pre.top1)), ("t_post", .number(r.post.top1)),
            ("instability", epoch.instability.map { .number($0) } ?? .null),
            ("instability_points", epoch.instabilityPoints.map { .number($0) } ?? .null),
            ("stability", epoch.stability.map { .number($0) } ?? .null),
        ])
    }
}
