// One run as the results code sees it: spec.json, summary.json and metrics.jsonl of a run
// directory, with its per-run statistics (RunMetrics.swift) and iterative pruning rate
// (IterativeRate.swift).
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

    /// Best accuracy, gap and stability of this run (docs/EXPERIMENTS.md §6.3).
    public var metrics: RunMetrics { RunMetrics(summary: summary, rows: rows) }

    /// Iterative pruning rate in % per event (docs/EXPERIMENTS.md §5.2); nil without pruning.
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
