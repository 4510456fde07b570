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
        ])
    }
}

/// What a finished run reports in summary.json.
public struct RunSummary: Sendable {
    public var spec: RunSpec
    public var records: [EpochRecord]
    public var threads: Int
    public var parameters: Int
    public var seconds: Double

    public var best: EpochRecord? { records.max { a, b in a.post.top1 < b.post.top1 || (a.post.top1 == b.post.top1 && a.epoch > b.epoch) } }

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
        if let b = best {
            pairs += [("best_test_acc", .number(b.post.top1)), ("best_epoch", .number(Double(b.epoch))),
                      ("generalization_gap", .number(b.train.top1 - b.post.top1))]
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
            log(String(format: "epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  lr %g  %.1f s (%.0f img/s)",
                       r.epoch, spec.epochs, r.train.meanLoss, r.train.top1, r.post.meanLoss, r.post.top1, r.lr, r.seconds,
                       r.trainImagesPerSecond))
        }
        let summary = RunSummary(spec: spec, records: records, threads: threads, parameters: trainer.network.parameterCount,
                                 seconds: Trainer.monotonicSeconds() - start)
        try DurableFile.write(summary.json.pretty + "\n", to: outDir + "/summary.json")
        return summary
    }
}
