// The files of a run directory: spec.json (canonical spec), metrics.jsonl (one JSON object per
// epoch, appended and fsynced), summary.json (written atomically at the end). Small POSIX
// helpers for durable writes live here too.
import Engine
import Foundation
import PrunedJSON

public struct FileError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public var description: String { "\(path): \(problem)" }
}

public enum DurableFile {
    /// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync of the directory.
    public static func write(_ text: String, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: tmp, problem: String(cString: strerror(errno))) }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = String(cString: strerror(errno)); close(fd); unlink(tmp)
                throw FileError(path: tmp, problem: e)
            }
            done += n
        }
        if fsync(fd) != 0 { let e = String(cString: strerror(errno)); close(fd); unlink(tmp); throw FileError(path: tmp, problem: e) }
        close(fd)
        if rename(tmp, path) != 0 { let e = String(cString: strerror(errno)); unlink(tmp); throw FileError(path: path, problem: e) }
        syncDirectory(dir.isEmpty ? "." : dir)
    }

    /// Appends one line and fsyncs.
    public static func appendLine(_ line: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: path, problem: String(cString: strerror(errno))) }
        defer { close(fd) }
        let bytes = Array((line + "\n").utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 { if errno == EINTR { continue }; throw FileError(path: path, problem: String(cString: strerror(errno))) }
            done += n
        }
        if fsync(fd) != 0 { throw FileError(path: path, problem: String(cString: strerror(errno))) }
    }

    public static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}

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
        ] + pruningFields(r))
    }

    static func pruningFields(_ r: EpochRecord) -> [(String, JSON)] {
        guard !r.prunedCounts.isEmpty else { return [] }
        var out: [(String, JSON)] = [
            ("pruned", .object(r.prunedCounts.map { ($0.0, .number(Double($0.1))) })),
            ("p_count", .number(Double(r.prunedCounts.reduce(0) { $0 + $1.1 }))),
            ("avg_pruned_score", r.averagePrunedScore.map { $0 < 0 ? JSON.null : .number($0) } ?? .null),
        ]
        if let events = r.pruning, !events.isEmpty {
            out.append(("prune_event", .object([
                ("layers", .array(events.map { .object([("layer", .string($0.layer)), ("k", .number(Double($0.k))),
                                                        ("mean_score", .number($0.meanScore))]) })),
                ("t_pre", .number(r.pre.top1)), ("t_post", .number(r.post.top1)),
                ("instability", r.instability.map { .number($0) } ?? .null),
                ("instability_points", r.instabilityPoints.map { .number($0) } ?? .null),
                ("stability", r.instability.map { .number(100 * (1 - $0)) } ?? .null),
            ])))
        }
        return out
    }
}

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

/// Runs a spec in the foreground into `outDir`, calling `log` with human-readable progress.
public enum ForegroundRun {
    public static func execute(spec: RunSpec, outDir: String, threads: Int, log: (String) -> Void) throws -> RunSummary {
        let fm = FileManager.default
        let metricsPath = outDir + "/metrics.jsonl"
        if fm.fileExists(atPath: metricsPath) {
            throw FileError(path: outDir, problem: "already holds a run (metrics.jsonl exists); choose a new --out directory")
        }
        do { try fm.createDirectory(atPath: outDir, withIntermediateDirectories: true) } catch {
            throw FileError(path: outDir, problem: "cannot create the output directory (\(error.localizedDescription))")
        }
        try DurableFile.write(spec.json.pretty + "\n", to: outDir + "/spec.json")
        log("loading \(spec.data.kind.rawValue) from \(spec.data.path)")
        let data = try PreparedData.load(spec.data)
        let trainer = try Trainer(spec: spec, data: data, threads: threads)
        log("\(spec.architecture.rawValue) (width \(JSON.format(spec.width)), \(trainer.network.parameterCount) parameters), "
            + "\(data.train.count) train / \(data.test.count) test images, \(spec.epochs) epochs, batch \(spec.batchSize), "
            + "seed \(spec.seed), \(threads) thread\(threads == 1 ? "" : "s")")
        let start = Trainer.monotonicSeconds()
        var records: [EpochRecord] = []
        for _ in 0 ..< spec.epochs {
            let r = trainer.runEpoch()
            records.append(r)
            try DurableFile.appendLine(MetricsFormat.json(r).rendered, to: metricsPath)
            var line = String(format: "epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  lr %g  %.1f s (%.0f img/s)",
                              r.epoch, spec.epochs, r.train.meanLoss, r.train.top1, r.post.meanLoss, r.post.top1, r.lr, r.seconds,
                              r.trainImagesPerSecond)
            if let events = r.pruning, !events.isEmpty {
                line += "  pruned " + events.map { "\($0.layer) \($0.k)" }.joined(separator: ", ")
                line += String(format: "  pre %.2f%% → post %.2f%%", r.pre.top1, r.post.top1)
            }
            log(line)
        }
        var summary = RunSummary(spec: spec, records: records, threads: threads, parameters: trainer.network.parameterCount,
                                 seconds: Trainer.monotonicSeconds() - start)
        if let p = trainer.pruner { summary.totalUnits = Dictionary(uniqueKeysWithValues: zip(p.layers.map(\.name), p.kept.map(\.count))) }
        try DurableFile.write(summary.json.pretty + "\n", to: outDir + "/summary.json")
        return summary
    }
}
