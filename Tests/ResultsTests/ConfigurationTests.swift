// Grouping runs into configurations (seed, name, checkpoint ignored; dataset limits kept),
// short labels from the differing fields, stable order, the iterative pruning rate against the
// numbers of EXPERIMENTS.md §5.2, and per-run metrics recomputed from metrics rows.
import PrunedJSON
import Results
import Testing

@Suite struct ConfigurationTests {
    /// Two targets × two periods × three seeds, in a scrambled order.
    func grid() -> [RunResult] {
        var runs: [RunResult] = []
        for seed in [2, 0, 1] {
            for period in [40, 4] {
                for target in ["smallest", "largest"] {
                    runs.append(RunResult(id: "\(target)-\(period)-\(seed)", spec: vggSpec(target: target, period: period, seed: seed,
                                                                                         name: "n\(seed)")))
                }
            }
        }
        return runs
    }

    @Test func groupsByEverythingButSeedNameAndCheckpoint() {
        let configs = Configurations.group(grid())
        #expect(configs.count == 4)
        #expect(configs.allSatisfy { $0.runs.count == 3 })
        #expect(configs.map(\.label) == [
            "pruning.target=largest, pruning.period=4", "pruning.target=largest, pruning.period=40",
            "pruning.target=smallest, pruning.period=4", "pruning.target=smallest, pruning.period=40",
        ])
        // Runs ordered by seed within a configuration; the key ignores seed/name/checkpoint.
        #expect(configs[0].runs.map(\.id) == ["largest-4-0", "largest-4-1", "largest-4-2"])
        #expect(Configurations.key(vggSpec(target: "smallest", seed: 1, name: "a"))
            == Configurations.key(vggSpec(target: "smallest", seed: 9, name: "b")))
        #expect(configs[0].spec["seed"] == nil && configs[0].spec["checkpoint"] == nil && configs[0].spec["name"] == nil)
    }

    @Test func orderDoesNotDependOnInputOrder() {
        let a = Configurations.group(grid()), b = Configurations.group(grid().reversed())
        #expect(a.map(\.label) == b.map(\.label))
        #expect(a.map { $0.runs.map(\.id) } == b.map { $0.runs.map(\.id) })
    }

    @Test func baselineReadsPruningNoneAndComesFirst() {
        var runs = grid()
        runs += (0 ..< 2).map { RunResult(id: "base-\($0)", spec: vggSpec(target: nil, seed: $0)) }
        let configs = Configurations.group(runs)
        #expect(configs.count == 5)
        #expect(configs[0].label == "pruning=none" && configs[0].runs.count == 2)
        #expect(configs[1].label == "pruning.target=largest, pruning.period=4")
        #expect(configs[0].iterativeRate == nil)
    }

    @Test func singleConfigurationIsAll() {
        let runs = (0 ..< 3).map { RunResult(id: "r\($0)", spec: vggSpec(target: "smallest", seed: $0)) }
        let configs = Configurations.group(runs)
        #expect(configs.count == 1 && configs[0].label == "all")
        #expect(Configurations.label([vggSpec(target: "largest")]) == ["all"])
        #expect(Configurations.group([]).isEmpty)
    }

    @Test func datasetLimitsSeparateConfigurations() {
        let runs = [RunResult(id: "a", spec: vggSpec(target: "smallest", trainLimit: 5000)),
                    RunResult(id: "b", spec: vggSpec(target: "smallest", seed: 1, trainLimit: 5000)),
                    RunResult(id: "c", spec: vggSpec(target: "smallest"))]
        let configs = Configurations.group(runs)
        #expect(configs.map(\.label) == ["dataset.train_limit=none", "dataset.train_limit=5000"])
        #expect(configs.map(\.runs.count) == [1, 2])
    }

    @Test func labelsFoldPerLayerFields() {
        let fields = Dictionary(Configurations.fields(vggSpec(target: "smallest", period: 4)), uniquingKeysWith: { a, _ in a })
        #expect(fields["pruning.period"] == "4")
        #expect(fields["pruning.start"] == "[3,4,5,6]")
        #expect(fields["pruning.fraction"] == "[0.3,0.3,0.3,0.9]")
        #expect(fields["lr_milestones"] == "[150,300]")
        #expect(fields["dataset.path"] == "/data/cifar10")
        // Labels are aligned with the input and equal for equal configurations.
        let labels = Configurations.label([vggSpec(target: "smallest", seed: 1), vggSpec(target: "largest"), vggSpec(target: "smallest", seed: 5)])
        #expect(labels == ["pruning.target=smallest", "pruning.target=largest", "pruning.target=smallest"])
    }

    // MARK: iterative pruning rate (EXPERIMENTS.md §5.2)

    @Test func vggRateSweepMatchesTheSpec() {
        // VGG c8 (.9, 6→275): r = 4, 20, 40, 60, 100, 200, 300 → n = 68, 14, 7, 5, 3, 2, 1
        // → 1.32, 6.43, 12.86, 18.0, 30.0, 45.0, 90.0 % per event.
        let expected: [(Int, Int, Double)] = [(4, 68, 1.32), (20, 14, 6.43), (40, 7, 12.86), (60, 5, 18.0), (100, 3, 30.0),
                                              (200, 2, 45.0), (300, 1, 90.0)]
        for (r, n, rate) in expected {
            #expect(IterativeRate.events(start: 6, end: 275, period: r) == n)
            let got = IterativeRate.percent(spec: vggSpec(target: "smallest", period: r))
            #expect(got != nil && abs(got! - rate) < 0.01, "r=\(r): \(String(describing: got))")
        }
        // c5 at r = 40: epochs 3, 43, 83, 123 (4 events).
        #expect(IterativeRate.events(start: 3, end: 150, period: 40) == 4)
        #expect(IterativeRate.percent(spec: vggSpec(target: "smallest", period: 300)) == 90)   // not 90.00000000000001
        #expect(IterativeRate.percent(spec: vggSpec(target: nil)) == nil)
    }

    @Test func otherRatesFromTheSpec() {
        // RN18 layer4.1.conv2 (.95, 10→275, r=4): 67 events, 1.42 %.
        #expect(abs(IterativeRate.percent(spec: singleLayerSpec(fraction: 0.95, start: 10, end: 275, period: 4))! - 1.42) < 0.01)
        // F4: 40→100, r=30 ⇒ events 40, 70, 100 ⇒ 3.33 %; r=60 ⇒ 40, 100 ⇒ 5 %.
        #expect(abs(IterativeRate.percent(spec: singleLayerSpec(fraction: 0.1, start: 40, end: 100, period: 30))! - 3.33) < 0.01)
        #expect(abs(IterativeRate.percent(spec: singleLayerSpec(fraction: 0.1, start: 40, end: 100, period: 60))! - 5) < 1e-9)
        // TF1: 2500→3500, r=750 ⇒ 2 events × 35 %.
        #expect(abs(IterativeRate.percent(spec: singleLayerSpec(fraction: 0.7, start: 2500, end: 3500, period: 750))! - 35) < 1e-9)
        // Scratch: one event at epoch 0 ⇒ the whole fraction.
        #expect(abs(IterativeRate.percent(spec: singleLayerSpec(fraction: 0.9, start: 0, end: 0, period: 1, scratch: true))! - 90) < 1e-9)
        #expect(IterativeRate.events(start: 5, end: 4, period: 1) == 0)
    }

    // MARK: per-run metrics

    @Test func perRunMetricsFromRows() {
        // Pruning at epochs 2 and 4 (1-based); best post-prune accuracy counted from epoch 4 on.
        let rows = [row(1, train: 60, pre: 50, post: 50), row(2, train: 70, pre: 80, post: 60, score: 0.5),
                    row(3, train: 90, pre: 90, post: 90), row(4, train: 85, pre: 80, post: 72, score: 0.2),
                    row(5, train: 88, pre: 75, post: 75), row(6, train: 95, pre: 75, post: 75)]
        let m = RunMetrics.fromRows(rows)
        #expect(m.lastPruningEpoch == 4)
        #expect(m.bestTestAccuracy == 75 && m.bestEpoch == 5)   // epoch 3's 90 is before the last prune; first max wins
        #expect(m.generalizationGap == 13)
        // stabilities: 100·60/80 = 75, 100·72/80 = 90 ⇒ 82.5; points 20 and 8 ⇒ 14
        #expect(abs(m.meanStability! - 82.5) < 1e-12 && abs(m.meanInstability! - 17.5) < 1e-12)
        #expect(m.meanInstabilityPoints == 14)
        // Without a summary the run uses these; a summary wins field by field.
        let spec = vggSpec(target: "smallest")
        #expect(RunResult(id: "p", spec: spec, rows: rows).metrics == m)
        let done = finishedRun("f", spec: spec, best: 91, gap: 2, stability: 99, rows: rows).metrics
        #expect(done.bestTestAccuracy == 91 && done.generalizationGap == 2 && done.meanStability == 99 && done.bestEpoch == 5)
    }

    @Test func scratchAndUnprunedRowsHaveFullStability() {
        let scratch = [row(1, train: 10, pre: 10, post: 9, score: 1), row(2, train: 50, pre: 40, post: 40)]
        let m = RunMetrics.fromRows(scratch)
        #expect(m.lastPruningEpoch == 0 && m.meanStability == 100 && m.bestTestAccuracy == 40)
        // Non-positive scores are not pruning epochs (the authors' avg_pruned_magnitude > 0 rule).
        let m2 = RunMetrics.fromRows([row(1, train: 50, pre: 40, post: 30, score: -1), row(2, train: 60, pre: 45, post: 45)])
        #expect(m2.lastPruningEpoch == 0 && m2.meanStability == 100 && m2.bestTestAccuracy == 45 && m2.generalizationGap == 15)
        #expect(RunMetrics.fromRows([]) == RunMetrics())
        // NaN accuracies are skipped; a NaN in the summary falls back to the rows.
        let withNaN = [row(1, train: 50, pre: .nan, post: .nan), row(2, train: 60, pre: 45, post: 44)]
        #expect(RunMetrics.fromRows(withNaN).bestTestAccuracy == 44)
        let s = JSON.object([("best_test_acc", .number(.nan))])
        #expect(RunMetrics(summary: s, rows: withNaN).bestTestAccuracy == 44)
    }

    /// One epoch's instability, points and stability, as metrics.jsonl and the statistics use them.
    @Test func epochInstability() {
        let e = EpochAccuracy(row: row(3, train: 70, pre: 80, post: 60, score: 0.5), position: 0)
        #expect(e.epoch == 3 && e.isPruningEpoch && e.instability == 0.25 && e.instabilityPoints == 20 && e.stability == 75)
        let quiet = EpochAccuracy(row: row(4, train: 70, pre: 80, post: 60), position: 3)
        #expect(!quiet.isPruningEpoch && quiet.instability == nil && quiet.instabilityPoints == nil && quiet.stability == nil)
        let zero = EpochAccuracy(epoch: 2, train: 10, preTest: 0, postTest: 0, isPruningEpoch: true)
        #expect(zero.instability == nil && zero.instabilityPoints == 0)
        #expect(EpochAccuracy(row: .object([("test_acc", .number(5))]), position: 6).epoch == 7)
        #expect(RunMetrics(epochs: []) == RunMetrics() && RunMetrics(epochs: [quiet]).meanInstabilityPoints == 0)
    }
}
