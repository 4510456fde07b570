// What `prunectl report` (runs fetched from the daemon) and `pruned report` (run directories read
// from disk) both print and write: the report in one of three formats, the figures, and the
// reading of run directories for the daemon-free report.
import Foundation
import PrunedJSON
import RunLayout

public enum ReportFormat: String, CaseIterable, Sendable {
    case table, csv, json
}

public enum ReportOutput {
    /// The text printed for `report`: the table followed by a note when runs are on datasets other
    /// than CIFAR-10, the CSV, or the JSON on one line. Ends with a newline.
    public static func text(_ report: Report, runs: [RunResult], format: ReportFormat) -> String {
        switch format {
        case .json:
            return report.json().rendered + "\n"
        case .csv:
            return report.csv()
        case .table:
            var out = report.table() + "\n"
            let counted = runs.filter { !$0.isFailed }
            let kinds = Set(counted.compactMap { $0.spec["dataset"]?["kind"]?.stringValue })
            if counted.contains(where: { ($0.spec["dataset"]?["kind"]?.stringValue ?? "") != "cifar10" }) {
                out += "note: runs on \(kinds.sorted().joined(separator: ", ")), not CIFAR-10\n"
            }
            return out
        }
    }

    /// The figure files and report.csv written by `writeFigures`, in order.
    public static let figureFiles = ["accuracy-over-epochs.svg", "rate-sweep.svg", "stability-vs-accuracy.svg", "report.csv"]

    /// Writes the paper's Figure 2 left, Figure 3 and Figure 2 right as SVG, and the report as CSV,
    /// into `directory` (created if needed). Returns the file names written.
    @discardableResult
    public static func writeFigures(_ runs: [RunResult], report: Report, to directory: String,
                                    resamples: Int, seed: UInt64) throws -> [String] {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let texts = [
                Figures.accuracyOverEpochs(runs, resamples: resamples, seed: seed),
                Figures.rateSweep(runs, resamples: resamples, seed: seed),
                Figures.stabilityVsAccuracy(runs),
                report.csv(),
            ]
            for (name, text) in zip(figureFiles, texts) {
                try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
            }
            return figureFiles
        } catch {
            throw ResultsError(path: directory, problem: "cannot write the figures (\(error.localizedDescription))")
        }
    }
}

/// Run directories read from disk for a report without the daemon: the finished runs (those with
/// summary.json) and the others, which a report excludes and counts.
public struct RunDirectories: Sendable {
    /// A run directory without summary.json: unfinished, stopped or failed.
    public struct Unfinished: Sendable {
        public var name: String
        public var path: String
        /// From progress.json when present ("stopped, 2/5 epochs", "failed: …"), else from metrics.jsonl.
        public var status: String
    }

    public var finished: [RunResult]
    public var unfinished: [Unfinished]

    /// Whether `path` is a run directory (holds spec.json or summary.json).
    public static func isRunDirectory(_ path: String) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: RunDirectory(path).spec) || fm.fileExists(atPath: RunDirectory(path).summary)
    }

    /// Reads each path: a run directory, or a directory whose immediate subdirectories include run
    /// directories (taken in name order). Run names are the directories' names, or their paths when
    /// two directories share a name.
    public static func load(_ paths: [String]) throws -> RunDirectories {
        let fm = FileManager.default
        var dirs: [String] = []
        for given in paths {
            let path = given.count > 1 && given.hasSuffix("/") ? String(given.dropLast()) : given
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
                throw ResultsError(path: path, problem: "does not exist")
            }
            guard isDir.boolValue else { throw ResultsError(path: path, problem: "is not a directory") }
            if isRunDirectory(path) { dirs.append(path); continue }
            let entries: [String]
            do { entries = try fm.contentsOfDirectory(atPath: path) } catch {
                throw ResultsError(path: path, problem: "cannot be listed (\(error.localizedDescription))")
            }
            let runs = entries.sorted().map { path + "/" + $0 }.filter(isRunDirectory)
            guard !runs.isEmpty else {
                throw ResultsError(path: path, problem: "is neither a run directory nor a directory of run directories "
                                   + "(no spec.json or summary.json in it or its subdirectories)")
            }
            dirs += runs
        }
        let names = dirs.map { ($0 as NSString).lastPathComponent }
        var result = RunDirectories(finished: [], unfinished: [])
        for (dir, name) in zip(dirs, names) {
            let id = names.filter { $0 == name }.count > 1 ? dir : name
            let run = try RunResult.load(directory: dir, id: id)
            if run.isFinished {
                result.finished.append(run)
            } else {
                result.unfinished.append(Unfinished(name: id, path: dir, status: status(dir, run)))
            }
        }
        return result
    }

    /// One line naming the excluded runs, or nil when there are none.
    public var exclusionNote: String? {
        guard !unfinished.isEmpty else { return nil }
        let n = unfinished.count
        return "excluded \(n) run\(n == 1 ? "" : "s") without summary.json (unfinished or failed): "
            + unfinished.map { "\($0.name) (\($0.status))" }.joined(separator: ", ")
    }

    /// The unfinished runs as JSON: [{run, path, status}].
    public var unfinishedJSON: JSON {
        .array(unfinished.map { .object([("run", .string($0.name)), ("path", .string($0.path)), ("status", .string($0.status))]) })
    }

    static func status(_ dir: String, _ run: RunResult) -> String {
        let epochs = run.spec["epochs"]?.intValue
        if let text = try? String(contentsOfFile: RunDirectory(dir).progress, encoding: .utf8),
           let p = try? JSON.parse(text), let state = p["state"]?.stringValue {
            var s = state
            if let done = p["epochs_done"]?.intValue, let total = p["epochs"]?.intValue { s += ", \(done)/\(total) epochs" }
            if state == "failed", let reason = p["reason"]?.stringValue { s += ": " + reason }
            return s
        }
        return "\(run.rows.count)\(epochs.map { "/\($0)" } ?? "") epochs in metrics.jsonl, no progress.json"
    }
}
