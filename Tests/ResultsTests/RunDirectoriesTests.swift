// The daemon-free report (`pruned report DIR…`): run directories and directories of run
// directories read from disk, unfinished runs (no summary.json) excluded and described from their
// progress.json, clear errors for paths that are not runs, and the same printed text as the
// report prunectl builds from the daemon's answers.
import Foundation
import PrunedJSON
import Results
import Testing

@Suite struct RunDirectoriesTests {
    /// A temporary directory removed by the caller.
    func temp(_ tag: String) throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("results-dirs-\(tag)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: d)
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Writes a run directory: spec.json, metrics.jsonl and, for finished runs, summary.json.
    func writeRun(_ dir: String, _ run: RunResult, progress: String? = nil) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try (run.spec.pretty + "\n").write(toFile: dir + "/spec.json", atomically: true, encoding: .utf8)
        try run.rows.map { $0.rendered + "\n" }.joined().write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
        if let s = run.summary { try (s.pretty + "\n").write(toFile: dir + "/summary.json", atomically: true, encoding: .utf8) }
        if let progress { try progress.write(toFile: dir + "/progress.json", atomically: true, encoding: .utf8) }
    }

    let rows = [row(1, train: 60, pre: 50, post: 40, score: 0.5), row(2, train: 70, pre: 65, post: 60)]

    func finished(_ id: String, target: String, seed: Int, best: Double) -> RunResult {
        finishedRun(id, spec: vggSpec(target: target, seed: seed), best: best, gap: 4, stability: 95 + Double(seed), rows: rows)
    }

    @Test func aDirectoryOfRunsPrintsWhatPrunectlPrints() throws {
        let root = try temp("same")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let runs = [finished("a", target: "largest", seed: 1, best: 80), finished("b", target: "largest", seed: 2, best: 82),
                    finished("c", target: "smallest", seed: 1, best: 86)]
        for r in runs { try writeRun(root + "/" + r.id, r) }
        let unfinished = RunResult(id: "d", spec: vggSpec(target: "smallest", seed: 2), rows: [rows[0]])
        try writeRun(root + "/d", unfinished, progress: #"{"state": "failed", "reason": "dataset: no such file", "epochs_done": 1, "epochs": 325}"#)
        try writeRun(root + "/e", RunResult(id: "e", spec: vggSpec(target: "smallest", seed: 3)))
        try "not a run".write(toFile: root + "/notes.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/figures", withIntermediateDirectories: true)

        let found = try RunDirectories.load([root + "/"])
        #expect(found.finished.map(\.id) == ["a", "b", "c"])
        #expect(found.unfinished.map(\.name) == ["d", "e"])
        #expect(found.unfinished.map(\.status) == ["failed, 1/325 epochs: dataset: no such file",
                                                   "0/325 epochs in metrics.jsonl, no progress.json"])
        #expect(found.exclusionNote == "excluded 2 runs without summary.json (unfinished or failed): "
                + "d (failed, 1/325 epochs: dataset: no such file), e (0/325 epochs in metrics.jsonl, no progress.json)")
        // The same text, byte for byte, as for the same runs handed over by the daemon (prunectl).
        for format in ReportFormat.allCases {
            let fromDisk = ReportOutput.text(Report(runs: found.finished, seed: 3), runs: found.finished, format: format)
            let fromDaemon = ReportOutput.text(Report(runs: runs, seed: 3), runs: runs, format: format)
            #expect(fromDisk == fromDaemon, "\(format)")
        }
        let table = ReportOutput.text(Report(runs: found.finished), runs: found.finished, format: .table)
        #expect(table.hasPrefix("configuration "))
        #expect(table.contains("pruning.target=largest ") && table.contains("Kendall tau-b"))
        #expect(!table.contains("not CIFAR-10"))   // the specs say cifar10
        // Figures and report.csv.
        let files = try ReportOutput.writeFigures(found.finished, report: Report(runs: found.finished), to: root + "/figures",
                                                  resamples: 100, seed: 0)
        for f in files { #expect(FileManager.default.fileExists(atPath: root + "/figures/" + f)) }
        #expect(files == ["accuracy-over-epochs.svg", "rate-sweep.svg", "stability-vs-accuracy.svg", "report.csv"])
    }

    @Test func runDirectoriesNamedDirectlyAndDuplicateNames() throws {
        let root = try temp("direct")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try writeRun(root + "/g1/s1", finished("s1", target: "largest", seed: 1, best: 80))
        try writeRun(root + "/g2/s1", finished("s1", target: "largest", seed: 2, best: 81))
        try writeRun(root + "/g2/s2", finished("s2", target: "largest", seed: 3, best: 82))
        let found = try RunDirectories.load([root + "/g1/s1", root + "/g2"])
        // Two directories called s1: both are named by their paths.
        #expect(found.finished.map(\.id) == [root + "/g1/s1", root + "/g2/s1", "s2"])
        #expect(found.unfinished.isEmpty && found.exclusionNote == nil)
        let report = Report(runs: found.finished)
        #expect(report.configurations.count == 1 && report.configurations[0].runs == 3)
    }

    @Test func pathsThatAreNotRunsAreNamedInTheError() throws {
        let root = try temp("errors")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/empty/sub", withIntermediateDirectories: true)
        try "x".write(toFile: root + "/file", atomically: true, encoding: .utf8)
        for (path, problem) in [(root + "/missing", "does not exist"), (root + "/file", "is not a directory"),
                                (root + "/empty", "is neither a run directory nor a directory of run directories")] {
            do {
                _ = try RunDirectories.load([path])
                Issue.record("\(path) was accepted")
            } catch let e as ResultsError {
                #expect(e.path == path && e.problem.hasPrefix(problem), "\(e)")
            }
        }
        // A damaged spec.json names the file.
        try FileManager.default.createDirectory(atPath: root + "/bad", withIntermediateDirectories: true)
        try "{".write(toFile: root + "/bad/spec.json", atomically: true, encoding: .utf8)
        #expect { try RunDirectories.load([root + "/bad"]) } throws: { e in (e as? ResultsError)?.path == root + "/bad/spec.json" }
    }
}
