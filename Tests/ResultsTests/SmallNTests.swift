// Statistics that know their n (issue 13): a CI only for n ≥ 2, a correlation only for ≥ 3
// distinct points, "n too small" otherwise in the table, null plus a reason in CSV and JSON,
// and n beside every figure.
import Foundation
import PrunedJSON
import Results
import Testing

@Suite struct SmallNTests {
    /// One run per configuration: means but no CIs. Before, a single value got a zero-width
    /// "CI" [x, x].
    @Test func noCIForASingleRun() throws {
        let report = Report(runs: [finishedRun("L0", spec: vggSpec(target: "largest"), best: 80, gap: 5, stability: 97),
                                   finishedRun("S0", spec: vggSpec(target: "smallest"), best: 82, gap: 6, stability: 98)])
        let c = report.configurations[0]
        #expect(c.bestTestAccuracy.n == 1 && c.bestTestAccuracy.ci == nil && c.bestTestAccuracy.mean == 80)
        let line = try #require(report.table().split(separator: "\n").first { $0.hasPrefix("pruning.target=largest") })
        #expect(line.contains("80.00 [n too small] n=1") && !line.contains("80.00 [80.00"), "\(line)")
        let csv = report.csv().split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = csv[0]
        func cell(_ name: String) throws -> String { csv[1][try #require(header.firstIndex(of: name))] }
        #expect(try cell("best_test_acc_mean") == "80" && cell("best_test_acc_ci_low") == "" && cell("best_test_acc_ci_high") == "")
        #expect(try cell("best_test_acc_n") == "1" && cell("ci_note") == "n too small")
        let j = try #require(report.json()["configurations"]?.arrayValue?[0]["best_test_acc"])
        #expect(j["ci"] == .null && j["ci_note"]?.stringValue == "n too small" && j["n"]?.intValue == 1)
    }

    /// Two runs: a CI, n=2 printed, no note.
    @Test func aCIFromTwoRuns() throws {
        let report = Report(runs: [finishedRun("L0", spec: vggSpec(target: "largest", seed: 1), best: 80, gap: 5, stability: 97),
                                   finishedRun("L1", spec: vggSpec(target: "largest", seed: 2), best: 82, gap: 6, stability: 98)])
        let c = report.configurations[0]
        #expect(c.runs == 2 && c.bestTestAccuracy.ci != nil)
        #expect(report.table().contains("81.00 [") && report.table().contains("] n=2"))
        let j = try #require(report.json()["configurations"]?.arrayValue?[0]["best_test_acc"])
        #expect(j["ci"] != .null && j["ci_note"] == .null)
        #expect(report.csv().split(separator: "\n")[1].hasSuffix(",2,2,2,2,"))
    }

    /// Two runs gave "Pearson r = 1.0000, Kendall τ = 1.0000" (the README's demo); now the
    /// correlation needs three distinct points.
    @Test func noCorrelationBelowThreeDistinctPoints() throws {
        let two = Report(runs: [finishedRun("L0", spec: vggSpec(target: "largest"), best: 80, gap: 5, stability: 97),
                                finishedRun("S0", spec: vggSpec(target: "smallest"), best: 82, gap: 6, stability: 98)])
        for c in two.correlations {
            #expect(c.n == 2 && c.pearson == nil && c.kendallTauB == nil && c.reason?.hasPrefix("n too small") == true)
        }
        #expect(two.table().contains("n=2  Pearson r and Kendall tau-b: n too small: 2 distinct points, a correlation needs 3"))
        #expect(!two.table().contains("1.0000"))
        let jc = try #require(two.json()["correlations"]?.arrayValue?[0])
        #expect(jc["pearson_r"] == .null && jc["kendall_tau_b"] == .null && jc["reason"]?.stringValue?.hasPrefix("n too small") == true)
        // Three runs, two of them the same point: still two distinct points.
        let dup = Report(runs: [
            finishedRun("L0", spec: vggSpec(target: "largest", seed: 1), best: 80, gap: 5, stability: 97),
            finishedRun("L1", spec: vggSpec(target: "largest", seed: 2), best: 80, gap: 5, stability: 97),
            finishedRun("S0", spec: vggSpec(target: "smallest"), best: 82, gap: 6, stability: 98)])
        #expect(dup.correlations.allSatisfy { $0.n == 3 && $0.pearson == nil && $0.reason != nil })
        // Three distinct points: reported, with n.
        let three = Report(runs: [finishedRun("L0", spec: vggSpec(target: "largest"), best: 80, gap: 5, stability: 97),
                                  finishedRun("S0", spec: vggSpec(target: "smallest"), best: 82, gap: 7, stability: 98),
                                  finishedRun("R0", spec: vggSpec(target: "random"), best: 81, gap: 6, stability: 99)])
        #expect(three.correlations.allSatisfy { $0.n == 3 && $0.pearson != nil && $0.kendallTauB != nil && $0.reason == nil })
        #expect(three.table().contains("n=3  Pearson r="))
        #expect(three.json()["correlations"]?.arrayValue?[0]["reason"] == .null)
    }

    /// The figure's correlation obeys the same rule.
    @Test func theScatterFigureSaysNTooSmall() {
        let svg = Figures.stabilityVsAccuracy([finishedRun("L0", spec: vggSpec(target: "largest"), best: 80, gap: 5, stability: 97),
                                               finishedRun("S0", spec: vggSpec(target: "smallest"), best: 82, gap: 6, stability: 98)])
        #expect(svg.contains("n = 2, Pearson r = n too small, Kendall τ-b = n too small"))
    }

    /// A figure over epochs from a single run has no CI band but does not fail.
    @Test func accuracyFigureFromOneRun() {
        let run = finishedRun("L0", spec: vggSpec(target: "largest"), best: 80, gap: 5, stability: 97,
                              rows: [row(1, train: 50, pre: 40, post: 40), row(2, train: 60, pre: 45, post: 44)])
        #expect(Figures.accuracyOverEpochs([run]).contains("<svg"))
    }
}
