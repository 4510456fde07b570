// The report: per-configuration counts, means and CIs in the table, CSV and JSON renderings;
// correlations over runs; partial runs computed from their metrics rows; no runs at all; loading a
// run directory.
import Foundation
import PrunedJSON
import Results
import Testing

@Suite struct ReportTests {
    /// Config "largest": best 80/82/84, gap 5/6/7, stability 99/98/97.
    /// Config "smallest": best 85/86/87, gap 3/3/3, stability 99.5 ×3. One unfinished "smallest"
    /// run of 2 epochs whose statistics come from its rows (best 86, gap 4, stability 100).
    func runs() -> [RunResult] {
        var out: [RunResult] = []
        for (i, (b, g, s)) in [(80.0, 5.0, 99.0), (82, 6, 98), (84, 7, 97)].enumerated() {
            out.append(finishedRun("L\(i)", spec: vggSpec(target: "largest", seed: i), best: b, gap: g, stability: s))
        }
        for i in 0 ..< 3 {
            out.append(finishedRun("S\(i)", spec: vggSpec(target: "smallest", seed: i), best: 85 + Double(i), gap: 3, stability: 99.5))
        }
        return out
    }

    @Test func perConfigurationNumbers() {
        let report = Report(runs: runs(), seed: 11)
        #expect(report.configurations.map(\.label) == ["pruning.target=largest", "pruning.target=smallest"])
        let l = report.configurations[0], s = report.configurations[1]
        #expect(l.runs == 3 && l.finished == 3 && s.runs == 3)
        #expect(l.bestTestAccuracy.mean == 82 && l.bestTestAccuracy.n == 3 && l.bestTestAccuracy.sd == 2)
        #expect(l.bestTestAccuracy.ci!.contains(82) && l.bestTestAccuracy.ci!.lower >= 80 && l.bestTestAccuracy.ci!.upper <= 84)
        #expect(l.stability.mean == 98 && abs(l.instability.mean - 2) < 1e-12 && l.generalizationGap.mean == 6)
        #expect(s.stability.ci == Interval(lower: 99.5, upper: 99.5) && s.generalizationGap.ci!.width == 0)
        #expect(abs(l.iterativeRate! - 90.0 / 7) < 1e-9)
        // Same seed, same report.
        #expect(Report(runs: runs(), seed: 11).json() == report.json())
    }

    @Test func correlationsAcrossRuns() {
        let report = Report(runs: runs())
        let c = report.correlations
        #expect(c.count == 2 && c[0].x == "mean_stability" && c[0].y == "best_test_acc" && c[1].y == "generalization_gap")
        #expect(c[0].n == 6 && c[1].n == 6)
        let m = runs().map(\.metrics)
        let xs = m.map { $0.meanStability! }, acc = m.map { $0.bestTestAccuracy! }, gap = m.map { $0.generalizationGap! }
        #expect(c[0].pearson == Statistics.pearson(xs, acc) && c[0].kendallTauB == Statistics.kendallTauB(xs, acc))
        #expect(c[1].pearson == Statistics.pearson(xs, gap) && c[1].kendallTauB == Statistics.kendallTauB(xs, gap))
        #expect(c[1].pearson! < -0.9)   // stability up, gap down in this data
    }

    @Test func renderings() throws {
        let report = Report(runs: runs())
        let table = report.table()
        let lines = table.split(separator: "\n").map(String.init)
        let lLine = try #require(lines.first { $0.hasPrefix("pruning.target=largest") })
        #expect(lLine.contains("82.00 [") && lLine.contains("98.00 [") && lLine.contains(" 2.00 ") && lLine.contains("6.00 ["))
        #expect(lLine.contains("12.86"))
        let sLine = try #require(lines.first { $0.hasPrefix("pruning.target=smallest") })
        #expect(sLine.contains("86.00 [") && sLine.contains("99.50 [99.50, 99.50]"))
        #expect(table.contains("n=6") && table.contains("Pearson r=") && table.contains("Kendall tau-b="))
        // Columns line up: numbers are right-aligned, so every line of the table body is equally long.
        #expect(lines[0].count == lLine.count && lLine.count == sLine.count)

        let csv = report.csv().split(separator: "\n").map(String.init)
        #expect(csv.count == 3 && csv[0] == Report.csvHeader.joined(separator: ","))
        let cells = csv[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        #expect(cells.count == Report.csvHeader.count)
        #expect(cells[0] == "pruning.target=largest" && cells[1] == "3" && cells[2] == "3" && cells[3] == "82"
            && cells[6] == "98" && cells[12] == "6")
        #expect(abs(Double(cells[15])! - 90.0 / 7) < 1e-9)

        let json = report.json()
        let configs = try #require(json["configurations"]?.arrayValue)
        #expect(configs.count == 2)
        #expect(configs[0]["runs"]?.intValue == 3 && configs[0]["best_test_acc"]?["mean"]?.doubleValue == 82)
        #expect(configs[1]["best_test_acc"]?["mean"]?.doubleValue == 86 && configs[1]["mean_stability"]?["ci"] == .array([.number(99.5), .number(99.5)]))
        #expect(configs[0]["run_ids"] == .array(["L0", "L1", "L2"].map { .string($0) }))
        #expect(json["correlations"]?.arrayValue?.first?["n"]?.intValue == 6)
        #expect(json["bootstrap"]?["resamples"]?.intValue == 1000)
        // The JSON renders and parses back.
        #expect(try JSON.parse(json.rendered) == json)
    }

    @Test func csvQuotesLabelsWithCommas() {
        var runs: [RunResult] = []
        for target in ["largest", "smallest"] {
            for period in [4, 40] { runs.append(finishedRun("\(target)\(period)", spec: vggSpec(target: target, period: period), best: 80, gap: 1, stability: 99)) }
        }
        let csv = Report(runs: runs).csv().split(separator: "\n")
        #expect(csv[1].hasPrefix("\"pruning.target=largest, pruning.period=4\",1,1,80,,,"))
    }

    @Test func unfinishedRunsUseTheirRows() {
        var all = runs()
        let rows = [row(1, train: 70, pre: 60, post: 60), row(2, train: 90, pre: 86, post: 86)]
        all.append(RunResult(id: "S-partial", spec: vggSpec(target: "smallest", seed: 9), rows: rows))
        let s = Report(runs: all).configurations[1]
        #expect(s.runs == 4 && s.finished == 3 && s.bestTestAccuracy.n == 4)
        #expect(s.bestTestAccuracy.mean == (85 + 86 + 87 + 86) / 4.0)
        #expect(s.generalizationGap.mean == (3 + 3 + 3 + 4) / 4.0 && s.stability.mean == (99.5 * 3 + 100) / 4)
        // A run with no rows and no summary counts as a run but contributes no values.
        all.append(RunResult(id: "S-empty", spec: vggSpec(target: "smallest", seed: 10)))
        let s2 = Report(runs: all).configurations[1]
        #expect(s2.runs == 5 && s2.bestTestAccuracy.n == 4)
    }

    /// A diverged run as the daemon lists it: state failed, no summary.json, rows of the epochs
    /// before the divergence (whose accuracies looked fine, or even 100% before the fix). It is
    /// excluded from every statistic, correlation and figure, and counted per configuration.
    @Test func failedRunsAreExcludedAndCounted() throws {
        var all = runs()
        let rows = [row(1, train: 100, pre: 100, post: 100), row(2, train: 100, pre: 100, post: 100)]
        all.append(RunResult(id: "S-diverged", spec: vggSpec(target: "smallest", seed: 7), rows: rows, state: "failed"))
        // A configuration whose only run failed still gets a row, with nothing to average.
        all.append(RunResult(id: "R-failed", spec: vggSpec(target: "random", seed: 1), state: "failed"))
        #expect(all[6].isFailed && !all[0].isFailed && !all[6].isFinished)
        let report = Report(runs: all, seed: 11)
        let clean = Report(runs: runs(), seed: 11)
        #expect(report.configurations.map(\.label) == ["pruning.target=largest", "pruning.target=random", "pruning.target=smallest"])
        let l = report.configurations[0], r = report.configurations[1], s = report.configurations[2]
        #expect(l.failed == 0 && r.failed == 1 && s.failed == 1 && report.failed == 2)
        #expect(s.runs == 3 && s.finished == 3 && s.runIDs == ["S0", "S1", "S2"] && s.failedRunIDs == ["S-diverged"])
        #expect(r.runs == 0 && r.failedRunIDs == ["R-failed"] && r.bestTestAccuracy.n == 0 && r.stability.n == 0)
        // The statistics are exactly those of the report without the failed runs.
        #expect(s.bestTestAccuracy == clean.configurations[1].bestTestAccuracy && s.stability == clean.configurations[1].stability)
        #expect(s.generalizationGap == clean.configurations[1].generalizationGap)
        #expect(report.correlations.map(\.n) == [6, 6] && report.correlations.map(\.pearson) == clean.correlations.map(\.pearson))

        let table = report.table()
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines[0].contains("finished  failed"))
        let sLine = try #require(lines.first { $0.hasPrefix("pruning.target=smallest") })
        #expect(sLine.contains(" 3         3       1 ") && sLine.contains("86.00 ["), "\(sLine)")
        #expect(table.contains("excluded: 2 failed runs (R-failed, S-diverged); they count in no statistic."))
        #expect(!clean.table().contains("excluded:"))

        let csv = report.csv().split(separator: "\n").map(String.init)
        #expect(Report.csvHeader[16] == "failed" && csv.count == 4)
        let cells = csv[3].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        #expect(cells.count == Report.csvHeader.count && cells[0] == "pruning.target=smallest" && cells[1] == "3" && cells[16] == "1")
        #expect(csv[2].hasPrefix("pruning.target=random,0,0,,") && csv[2].hasSuffix(",1,0,0,0,0,"))

        let json = report.json()
        #expect(json["failed_runs"]?.intValue == 2)
        let configs = try #require(json["configurations"]?.arrayValue)
        #expect(configs[2]["failed"]?.intValue == 1 && configs[2]["failed_run_ids"] == .array([.string("S-diverged")]))
        #expect(configs[2]["runs"]?.intValue == 3 && configs[0]["failed"]?.intValue == 0)
        #expect(try JSON.parse(json.rendered) == json)

        // Figures leave it out as well: the same points as without it.
        #expect(Figures.stabilityVsAccuracy(all) == Figures.stabilityVsAccuracy(runs()))
    }

    @Test func emptyAndDegenerateReports() throws {
        let empty = Report(runs: [])
        #expect(empty.configurations.isEmpty && empty.correlations.allSatisfy { $0.n == 0 && $0.pearson == nil })
        #expect(empty.table().contains("(no runs)"))
        #expect(empty.csv() == Report.csvHeader.joined(separator: ",") + "\n")
        #expect(try JSON.parse(empty.json().rendered) == empty.json())
        let one = Report(runs: [RunResult(id: "x", spec: vggSpec(target: "smallest"))])
        #expect(one.configurations[0].label == "all" && one.configurations[0].bestTestAccuracy.n == 0)
        #expect(one.table().contains("–"))
        #expect(one.json()["configurations"]?.arrayValue?[0]["best_test_acc"]?["mean"] == .null)
    }
}

@Suite struct LoadingTests {
    @Test func loadsARunDirectoryAndIgnoresACutShortLastLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("results-load-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = vggSpec(target: "smallest", seed: 3)
        try (spec.pretty + "\n").write(toFile: dir + "/spec.json", atomically: true, encoding: .utf8)
        let lines = [row(1, train: 50, pre: 40, post: 40), row(2, train: 60, pre: 45, post: 44)].map(\.rendered)
        try (lines.joined(separator: "\n") + "\n{\"epoch\": 3, \"tra").write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
        let run = try RunResult.load(directory: dir, group: "g", tags: ["t"])
        #expect(run.id == (dir as NSString).lastPathComponent && run.group == "g" && run.tags == ["t"])
        #expect(run.spec == spec && run.summary == nil && !run.isFinished && run.rows.count == 2)
        #expect(run.metrics.bestTestAccuracy == 44)
        // A damaged line before the last one is an error; a directory without a spec too.
        try (lines[0] + "\n{oops\n" + lines[1] + "\n").write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
        #expect(throws: ResultsError.self) { try RunResult.load(directory: dir) }
        try FileManager.default.removeItem(atPath: dir + "/spec.json")
        #expect(throws: ResultsError.self) { try RunResult.load(directory: dir) }
        // summary.json alone supplies the spec.
        try summary(best: 90, gap: 1, stability: 99, spec: spec).rendered.write(toFile: dir + "/summary.json", atomically: true, encoding: .utf8)
        try "".write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
        let finished = try RunResult.load(directory: dir, id: "x")
        #expect(finished.id == "x" && finished.spec == spec && finished.isFinished && finished.metrics.bestTestAccuracy == 90)
    }
}
