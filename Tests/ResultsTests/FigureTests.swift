// The SVG figures: well-formed standalone XML (XMLParser), the svg namespace, the expected
// number of series and points, the plotted values in data- attributes, escaping of labels and
// run ids, and degenerate inputs (no runs, one run, equal values, NaN) giving valid figures.
import Foundation
import PrunedJSON
import Results
import Testing

@Suite struct FigureTests {
    /// Two configurations × three runs × five epochs with known test accuracies.
    func epochRuns() -> [RunResult] {
        var runs: [RunResult] = []
        for (c, target) in ["largest", "smallest"].enumerated() {
            for seed in 0 ..< 3 {
                let rows = (1 ... 5).map { e in
                    row(e, train: 90, pre: 80, post: 70 + Double(c * 10) + Double(e) + Double(seed), score: e == 2 ? 0.3 : nil)
                }
                runs.append(RunResult(id: "\(target)-\(seed)", spec: vggSpec(target: target, seed: seed), rows: rows))
            }
        }
        return runs
    }

    func wellFormed(_ svg: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> SVGDocument {
        #expect(svg.hasPrefix("<?xml version=\"1.0\""), sourceLocation: sourceLocation)
        #expect(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""), sourceLocation: sourceLocation)
        let doc = try #require(SVGDocument.parse(svg), "not well-formed XML", sourceLocation: sourceLocation)
        #expect(doc.root == "svg", sourceLocation: sourceLocation)
        return doc
    }

    @Test func accuracyOverEpochsHasOneBandedSeriesPerConfiguration() throws {
        let svg = Figures.accuracyOverEpochs(epochRuns(), seed: 5)
        let doc = try wellFormed(svg)
        let series = doc.all("g", class: "series")
        #expect(series.count == 2)
        #expect(doc.all("path", class: "band").count == 2 && doc.all("polyline", class: "mean").count == 2)
        #expect(series.map { $0["data-label"] } == ["pruning.target=largest", "pruning.target=smallest"])
        for (c, s) in series.enumerated() {
            #expect(s["data-runs"] == "3" && s["data-epochs"] == "1,2,3,4,5")
            // Mean over seeds 0,1,2 of 70 + 10c + e + seed = 71 + 10c + e.
            #expect(numbers(s["data-mean"]) == (1 ... 5).map { 71 + Double(c * 10) + Double($0) })
            let lo = numbers(s["data-ci-low"]), hi = numbers(s["data-ci-high"]), mean = numbers(s["data-mean"])
            #expect(lo.count == 5 && hi.count == 5)
            for i in 0 ..< 5 { #expect(lo[i] <= mean[i] && mean[i] <= hi[i] && lo[i] < hi[i]) }
        }
        #expect(doc.text.contains("epoch") && doc.text.contains("test accuracy (%)"))
        #expect(doc.all("text", class: "tick-label").count >= 4)
        #expect(doc.all("g", class: "legend-entry").count == 2)
        #expect(Figures.accuracyOverEpochs(epochRuns(), seed: 5) == svg)   // deterministic
    }

    @Test func rateSweepHasPointsPerRateAndPanel() throws {
        var runs: [RunResult] = []
        for target in ["largest", "smallest"] {
            for period in [4, 40, 300] {
                for seed in 0 ..< 2 {
                    runs.append(finishedRun("\(target)-\(period)-\(seed)", spec: vggSpec(target: target, period: period, seed: seed),
                                            best: 85 + Double(seed) + (target == "largest" ? 0 : 0.5), gap: 5,
                                            stability: 100 - Double(period) / 30 - Double(seed)))
                }
            }
        }
        runs += (0 ..< 2).map { finishedRun("base-\($0)", spec: vggSpec(target: nil, seed: $0), best: 85.21, gap: 6, stability: 100) }
        let doc = try wellFormed(Figures.rateSweep(runs))
        let points = doc.all("circle", class: "point")
        #expect(points.count == 2 * 3 * 2)   // families × rates × panels
        #expect(doc.all("g", class: "series").count == 4)
        #expect(doc.all("line", class: "baseline").count == 2)
        #expect(doc.all("line", class: "errorbar").count == 12)
        let largestStability = points.filter { $0["data-series"] == "pruning.target=largest" && $0["data-panel"] == "stability" }
        #expect(largestStability.map { Double($0["data-rate"]!)! }.map { ($0 * 100).rounded() / 100 } == [1.32, 12.86, 90])
        // r = 4: stabilities 100 − 4/30 and 99 − 4/30 ⇒ mean 99.5 − 4/30.
        #expect(abs(Double(largestStability[0]["data-mean"]!)! - (99.5 - 4.0 / 30)) < 1e-9)
        #expect(largestStability.allSatisfy { $0["data-runs"] == "2" })
        let smallestAccuracy = points.filter { $0["data-series"] == "pruning.target=smallest" && $0["data-panel"] == "accuracy" }
        #expect(smallestAccuracy.allSatisfy { Double($0["data-mean"]!)! == 86 && Double($0["data-ci-low"]!)! >= 85.5 })
        let base = doc.all("line", class: "baseline")
        #expect(base.contains { $0["data-panel"] == "accuracy" && $0["data-mean"] == "85.21" && $0["data-series"] == "pruning=none" })
        #expect(doc.text.contains("iterative pruning rate"))
    }

    @Test func stabilityVsAccuracyHasOnePointPerRunAndTheLeastSquaresLine() throws {
        let data: [(String, Double, Double)] = [("largest", 97, 84), ("largest", 98, 84.5), ("largest", 99, 85),
                                                ("smallest", 99.5, 85.5), ("smallest", 99.8, 85.4), ("smallest", 99.9, 86)]
        let runs = data.enumerated().map { i, d in
            finishedRun("run\(i)", spec: vggSpec(target: d.0, seed: i), best: d.2, gap: 4, stability: d.1)
        }
        let doc = try wellFormed(Figures.stabilityVsAccuracy(runs))
        let points = doc.all("circle", class: "point")
        #expect(points.count == 6)
        #expect(Set(points.map { $0["data-config"]! }) == ["pruning.target=largest", "pruning.target=smallest"])
        let run3 = try #require(points.first { $0["data-run"] == "run3" })
        #expect(run3["data-stability"] == "99.5" && run3["data-accuracy"] == "85.5")
        let line = try #require(doc.all("line", class: "regression").first)
        let fit = try #require(Statistics.linearFit(data.map(\.1), data.map(\.2)))
        #expect(Double(line["data-slope"]!)! == fit.slope && Double(line["data-intercept"]!)! == fit.intercept)
        let stats = try #require(doc.all("text", class: "statistics").first)
        #expect(stats["data-n"] == "6")
        #expect(Double(stats["data-pearson"]!)! == Statistics.pearson(data.map(\.1), data.map(\.2))!)
        #expect(Double(stats["data-kendall"]!)! == Statistics.kendallTauB(data.map(\.1), data.map(\.2))!)
        #expect(doc.all("g", class: "legend-entry").count == 2)
    }

    @Test func textIsEscaped() throws {
        let runs = [finishedRun("a&b<c>\"d\"", spec: vggSpec(target: "smallest", path: "/data/x&y<z>"), best: 80, gap: 2, stability: 99,
                                rows: [row(1, train: 80, pre: 70, post: 70)]),
                    finishedRun("plain", spec: vggSpec(target: "smallest", path: "/data/plain"), best: 81, gap: 2, stability: 98,
                                rows: [row(1, train: 80, pre: 71, post: 71)])]
        for svg in [Figures.stabilityVsAccuracy(runs), Figures.accuracyOverEpochs(runs), Figures.rateSweep(runs)] {
            let doc = try wellFormed(svg)
            #expect(svg.contains("x&amp;y&lt;z&gt;"))
            #expect(doc.elements.contains { $0.attributes.values.contains { $0.contains("dataset.path=/data/x&y<z>") } })
        }
        let doc = try wellFormed(Figures.stabilityVsAccuracy(runs))
        #expect(doc.all("circle", class: "point").contains { $0["data-run"] == "a&b<c>\"d\"" })
    }

    @Test func degenerateInputsGiveValidFigures() throws {
        // No runs.
        for svg in [Figures.accuracyOverEpochs([]), Figures.rateSweep([]), Figures.stabilityVsAccuracy([])] {
            let doc = try wellFormed(svg)
            #expect(doc.all("text", class: "no-data").count == 1 && doc.text.contains("no data"))
        }
        // One run.
        let one = [finishedRun("solo", spec: vggSpec(target: "smallest"), best: 85, gap: 3, stability: 99,
                               rows: [row(1, train: 80, pre: 70, post: 70)])]
        let epochs = try wellFormed(Figures.accuracyOverEpochs(one))
        #expect(epochs.all("g", class: "series").count == 1 && epochs.all("circle", class: "marker").count == 1)
        let sweep = try wellFormed(Figures.rateSweep(one))
        #expect(sweep.all("circle", class: "point").count == 2)
        let scatter = try wellFormed(Figures.stabilityVsAccuracy(one))
        #expect(scatter.all("circle", class: "point").count == 1 && scatter.all("line", class: "regression").isEmpty)
        #expect(scatter.all("text", class: "statistics").first?["data-pearson"] == "")
        // All values equal.
        let same = (0 ..< 4).map { finishedRun("s\($0)", spec: vggSpec(target: "smallest", seed: $0), best: 85, gap: 3, stability: 99,
                                               rows: (1 ... 3).map { row($0, train: 80, pre: 70, post: 70) }) }
        let flat = try wellFormed(Figures.accuracyOverEpochs(same))
        #expect(numbers(flat.all("g", class: "series")[0]["data-ci-low"]) == [70, 70, 70])
        #expect(try wellFormed(Figures.stabilityVsAccuracy(same)).all("circle", class: "point").count == 4)
        #expect(try wellFormed(Figures.rateSweep(same)).all("circle", class: "point").count == 2)
        // NaN values and runs without any statistics.
        let nanRows = [row(1, train: .nan, pre: .nan, post: .nan)]
        let nan = [RunResult(id: "nan", spec: vggSpec(target: "smallest"), summary: .object([("best_test_acc", .number(.nan))]), rows: nanRows)]
        for svg in [Figures.accuracyOverEpochs(nan), Figures.stabilityVsAccuracy(nan), Figures.rateSweep(nan)] {
            let doc = try wellFormed(svg)
            #expect(!svg.contains("nan") || svg.contains("no data"))
            _ = doc
        }
        #expect(Figures.accuracyOverEpochs(nan).contains("no data"))
        // Only unpruned runs: nothing to sweep.
        let base = [finishedRun("b", spec: vggSpec(target: nil), best: 85, gap: 3, stability: 100)]
        #expect(try wellFormed(Figures.rateSweep(base)).text.contains("no pruned runs"))
    }
}
