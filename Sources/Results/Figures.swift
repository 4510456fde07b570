// The paper's figures as standalone SVG strings, drawn by this module (no plotting stack):
// - accuracyOverEpochs: post-prune test accuracy per epoch, mean line and shaded 95% bootstrap
//   band across the runs of each configuration (Fig 2 left);
// - rateSweep: mean stability and best test accuracy against the iterative pruning rate, mean
//   ± 95% CI per configuration, one line per configuration family differing only in the period
//   (Fig 3);
// - stabilityVsAccuracy: one point per run, mean stability against best test accuracy, coloured
//   by configuration, with the least-squares line, Pearson r and Kendall tau-b (Fig 2 right).
// Every series and point carries data- attributes (and a <title>) holding its values.
// Failed runs are left out of every figure. Inputs with nothing to plot give a figure that says so.
import PrunedJSON

public enum Figures {
    // MARK: Fig 2 left

    /// Test accuracy (metrics row "test_acc", after any pruning of the epoch) against the 1-based
    /// epoch: per configuration, at each epoch, the mean over the runs that reached it and the
    /// bootstrap 95% CI of that mean (shaded band). Series: `<g class="series">` with
    /// data-label, data-runs, data-epochs, data-mean, data-ci-low, data-ci-high.
    public static func accuracyOverEpochs(_ runs: [RunResult], resamples: Int = Statistics.defaultResamples,
                                          seed: UInt64 = 0) -> String {
        let title = "Test accuracy over training (mean and 95% bootstrap CI across runs)"
        struct Series { var label: String; var colour: String; var runs: Int; var epochs: [Int]; var mean: [Double]; var ci: [Interval] }
        var series: [Series] = []
        for (i, c) in Configurations.group(runs.filter { !$0.isFailed }).enumerated() {
            var byEpoch: [Int: [Double]] = [:]
            for r in c.runs {
                for (j, row) in r.rows.enumerated() {
                    guard let t = row["test_acc"]?.doubleValue, t.isFinite else { continue }
                    byEpoch[row["epoch"]?.intValue ?? j + 1, default: []].append(t)
                }
            }
            let epochs = byEpoch.keys.sorted()
            guard !epochs.isEmpty else { continue }
            let ests = epochs.map { Statistics.estimate(byEpoch[$0]!, resamples: resamples, seed: seed) }
            series.append(Series(label: c.label, colour: SVG.colour(i), runs: c.runs.count, epochs: epochs,
                                 mean: ests.map(\.mean),
                                 // One run at an epoch: no CI (n too small), a band of zero width.
                                 ci: ests.map { $0.ci ?? Interval(lower: $0.mean, upper: $0.mean) }))
        }
        let xs = series.flatMap { $0.epochs.map(Double.init) }
        let ys = series.flatMap { $0.ci.flatMap { [$0.lower, $0.upper] } + $0.mean }
        guard let xr = SVG.range(xs, pad: 0), let yr = SVG.range(ys) else { return SVG.noData(title: title) }
        let panel = Panel(left: 80, top: 50, width: 700, height: 380, x: xr, y: yr, integerX: true)
        var body = panel.axes(xLabel: "epoch", yLabel: "test accuracy (%)")
        for s in series {
            let upper = zip(s.epochs, s.ci).map { "\(SVG.px(panel.sx(Double($0.0)))),\(SVG.px(panel.sy($0.1.upper)))" }
            let lower = zip(s.epochs, s.ci).reversed().map { "\(SVG.px(panel.sx(Double($0.0)))),\(SVG.px(panel.sy($0.1.lower)))" }
            let points = zip(s.epochs, s.mean).map { "\(SVG.px(panel.sx(Double($0.0)))),\(SVG.px(panel.sy($0.1)))" }
            body.append("<g class=\"series\" data-label=\"\(SVG.escape(s.label))\" data-runs=\"\(s.runs)\" "
                + "data-epochs=\"\(s.epochs.map(String.init).joined(separator: ","))\" data-mean=\"\(SVG.values(s.mean))\" "
                + "data-ci-low=\"\(SVG.values(s.ci.map(\.lower)))\" data-ci-high=\"\(SVG.values(s.ci.map(\.upper)))\">")
            body.append("<title>\(SVG.escape(s.label)): \(s.runs) run\(s.runs == 1 ? "" : "s"), epochs \(s.epochs.first ?? 0)–\(s.epochs.last ?? 0)</title>")
            body.append("<path class=\"band\" d=\"M \((upper + lower).joined(separator: " L ")) Z\" fill=\"\(s.colour)\" fill-opacity=\"0.2\" stroke=\"none\"/>")
            body.append("<polyline class=\"mean\" points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"\(s.colour)\" stroke-width=\"1.8\"/>")
            if s.epochs.count == 1 {
                body.append("<circle class=\"marker\" cx=\"\(SVG.px(panel.sx(Double(s.epochs[0]))))\" cy=\"\(SVG.px(panel.sy(s.mean[0])))\" r=\"3.5\" fill=\"\(s.colour)\"/>")
            }
            body.append("</g>")
        }
        let legend = Legend.render(series.map { .init(label: "\($0.label) (n=\($0.runs))", colour: $0.colour) },
                                   left: panel.left, top: panel.top + panel.height + 58)
        body += legend.elements
        return SVG.document(width: 820, height: panel.top + panel.height + 62 + legend.height, title: title, body: body)
    }

    // MARK: Fig 3

    /// Mean stability (left panel) and best post-prune test accuracy (right panel) against the
    /// iterative pruning rate (% per event): per pruned configuration the mean over its runs with
    /// a 95% bootstrap CI error bar; configurations that differ only in the pruning period form
    /// one line. Unpruned configurations are dashed horizontal reference lines. Points:
    /// `<circle class="point">` with data-series, data-panel (stability | accuracy), data-rate,
    /// data-mean, data-ci-low, data-ci-high, data-runs; lines: `<g class="series">`.
    public static func rateSweep(_ runs: [RunResult], resamples: Int = Statistics.defaultResamples, seed: UInt64 = 0) -> String {
        let title = "Stability and accuracy against the iterative pruning rate (mean and 95% bootstrap CI)"
        struct Point { var rate: Double; var runs: Int; var stability: Estimate; var accuracy: Estimate }
        struct Family { var key: String; var spec: JSON; var points: [Point] = []; var baseline = false; var label = ""; var colour = "" }
        var families: [Family] = []
        for c in Configurations.group(runs.filter { !$0.isFailed }) {
            let m = c.runs.map(\.metrics)
            let stab = Statistics.estimate(m.compactMap(\.meanStability), resamples: resamples, seed: seed)
            let acc = Statistics.estimate(m.compactMap(\.bestTestAccuracy), resamples: resamples, seed: seed)
            guard stab.n > 0 || acc.n > 0 else { continue }
            let spec = withoutPeriod(c.spec)
            let key = Configurations.key(spec)
            var index = families.firstIndex { $0.key == key }
            if index == nil { families.append(Family(key: key, spec: spec)); index = families.count - 1 }
            families[index!].points.append(Point(rate: c.iterativeRate ?? .nan, runs: c.runs.count, stability: stab, accuracy: acc))
            families[index!].baseline = c.iterativeRate == nil
        }
        let labels = Configurations.label(families.map(\.spec))
        for i in families.indices {
            families[i].label = labels[i]
            families[i].colour = SVG.colour(i)
            families[i].points.sort { $0.rate < $1.rate }
        }
        let pruned = families.filter { !$0.baseline }
        guard !pruned.isEmpty else { return SVG.noData(title: title, reason: runs.isEmpty ? "no data" : "no data: no pruned runs") }
        let rates = pruned.flatMap { $0.points.map(\.rate) }
        guard let xr = SVG.range(rates) else { return SVG.noData(title: title) }
        func yValues(_ e: KeyPath<Point, Estimate>) -> [Double] {
            families.flatMap { f in f.points.flatMap { p -> [Double] in
                let x = p[keyPath: e]
                return x.n > 0 ? [x.mean, x.ci?.lower ?? x.mean, x.ci?.upper ?? x.mean] : []
            } }
        }
        var body: [String] = []
        let panels: [(String, String, String, KeyPath<Point, Estimate>, Double)] = [
            ("stability", "Mean stability", "mean stability (%)", \.stability, 80),
            ("accuracy", "Best post-prune test accuracy", "best test accuracy (%)", \.accuracy, 600),
        ]
        var bottom = 0.0
        for (name, panelTitle, yLabel, path, left) in panels {
            let yr = SVG.range(yValues(path)) ?? (0, 100)
            let panel = Panel(left: left, top: 60, width: 400, height: 340, x: xr, y: yr)
            bottom = panel.top + panel.height
            body += panel.axes(xLabel: "iterative pruning rate (% of the layer's filters per event)", yLabel: yLabel, title: panelTitle)
            for f in families {
                let pts = f.points.filter { $0[keyPath: path].n > 0 }
                guard !pts.isEmpty else { continue }
                if f.baseline {
                    let e = pts[0][keyPath: path]
                    body.append("<line class=\"baseline\" data-series=\"\(SVG.escape(f.label))\" data-panel=\"\(name)\" data-mean=\"\(SVG.value(e.mean))\" "
                        + "data-runs=\"\(pts[0].runs)\" x1=\"\(SVG.px(panel.left))\" y1=\"\(SVG.px(panel.sy(e.mean)))\" x2=\"\(SVG.px(panel.left + panel.width))\" "
                        + "y2=\"\(SVG.px(panel.sy(e.mean)))\" stroke=\"\(f.colour)\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\">"
                        + "<title>\(SVG.escape(f.label)): \(SVG.value(e.mean)) (no pruning, \(pts[0].runs) runs)</title></line>")
                    continue
                }
                let means = pts.map { $0[keyPath: path].mean }
                body.append("<g class=\"series\" data-label=\"\(SVG.escape(f.label))\" data-panel=\"\(name)\" data-rates=\"\(SVG.values(pts.map(\.rate)))\" "
                    + "data-mean=\"\(SVG.values(means))\">")
                body.append("<polyline class=\"mean\" points=\"\(zip(pts, means).map { "\(SVG.px(panel.sx($0.0.rate))),\(SVG.px(panel.sy($0.1)))" }.joined(separator: " "))\" "
                    + "fill=\"none\" stroke=\"\(f.colour)\" stroke-width=\"1.8\"/>")
                for p in pts {
                    let e = p[keyPath: path]
                    let x = panel.sx(p.rate)
                    if let ci = e.ci {
                        body.append("<line class=\"errorbar\" x1=\"\(SVG.px(x))\" y1=\"\(SVG.px(panel.sy(ci.lower)))\" x2=\"\(SVG.px(x))\" y2=\"\(SVG.px(panel.sy(ci.upper)))\" stroke=\"\(f.colour)\" stroke-width=\"1.5\"/>")
                    }
                    body.append("<circle class=\"point\" data-series=\"\(SVG.escape(f.label))\" data-panel=\"\(name)\" data-rate=\"\(SVG.value(p.rate))\" "
                        + "data-mean=\"\(SVG.value(e.mean))\" data-ci-low=\"\(SVG.value(e.ci?.lower))\" data-ci-high=\"\(SVG.value(e.ci?.upper))\" "
                        + "data-runs=\"\(e.n)\" cx=\"\(SVG.px(x))\" cy=\"\(SVG.px(panel.sy(e.mean)))\" r=\"4\" fill=\"\(f.colour)\">"
                        + "<title>\(SVG.escape(f.label)), rate \(SVG.value(p.rate))%: \(SVG.value(e.mean)) [\(SVG.value(e.ci?.lower)), \(SVG.value(e.ci?.upper))], n=\(e.n)</title></circle>")
                }
                body.append("</g>")
            }
        }
        let legend = Legend.render(families.map { .init(label: $0.label, colour: $0.colour, dashed: $0.baseline, marker: !$0.baseline) },
                                   left: 80, top: bottom + 58)
        body += legend.elements
        return SVG.document(width: 1040, height: bottom + 62 + legend.height, title: title, body: body)
    }

    /// The spec without pruning periods (top-level and per layer): configurations that differ only
    /// in their period form one line of the rate sweep.
    static func withoutPeriod(_ spec: JSON) -> JSON {
        guard case .object(var pairs) = spec, let i = pairs.firstIndex(where: { $0.0 == "pruning" }),
              case .object(var p) = pairs[i].1 else { return spec }
        p.removeAll { $0.0 == "period" }
        if let j = p.firstIndex(where: { $0.0 == "layers" }), case .array(let layers) = p[j].1 {
            p[j].1 = .array(layers.map { l in
                guard case .object(var lp) = l else { return l }
                lp.removeAll { $0.0 == "period" }
                return .object(lp)
            })
        }
        pairs[i].1 = .object(p)
        return .object(pairs)
    }

    // MARK: Fig 2 right

    /// One point per run (runs with a finite mean stability and best test accuracy): x = mean
    /// stability (%), y = best post-prune test accuracy (%), coloured by configuration, with the
    /// least-squares line over all points (`<line class="regression">` with data-slope and
    /// data-intercept; absent for fewer than two distinct stabilities) and Pearson r / Kendall
    /// tau-b (`<text class="statistics">`). Points: `<circle class="point">` with data-run,
    /// data-config, data-stability, data-accuracy.
    public static func stabilityVsAccuracy(_ runs: [RunResult]) -> String {
        let title = "Mean stability vs best test accuracy (one point per run)"
        struct Point { var run: String; var config: Int; var x: Double; var y: Double }
        let configs = Configurations.group(runs.filter { !$0.isFailed })
        var points: [Point] = []
        for (i, c) in configs.enumerated() {
            for r in c.runs {
                let m = r.metrics
                guard let x = m.meanStability, let y = m.bestTestAccuracy, x.isFinite, y.isFinite else { continue }
                points.append(Point(run: r.id, config: i, x: x, y: y))
            }
        }
        let xs = points.map(\.x), ys = points.map(\.y)
        let fit = Statistics.linearFit(xs, ys)
        var yAll = ys
        if let fit, let lo = xs.min(), let hi = xs.max() { yAll += [fit.intercept + fit.slope * lo, fit.intercept + fit.slope * hi] }
        guard let xr = SVG.range(xs), let yr = SVG.range(yAll) else { return SVG.noData(title: title) }
        let panel = Panel(left: 80, top: 70, width: 620, height: 380, x: xr, y: yr)
        var body = panel.axes(xLabel: "mean stability (%)", yLabel: "best test accuracy (%)")
        let (r, tau, reason) = Statistics.correlation(xs, ys)
        func show(_ d: Double?) -> String { d.map { String(format: "%.3f", $0) } ?? (reason == nil ? "n/a" : Statistics.tooSmall) }
        body.append("<text class=\"statistics\" data-n=\"\(points.count)\" data-pearson=\"\(SVG.value(r))\" data-kendall=\"\(SVG.value(tau))\" "
            + "x=\"\(SVG.px(panel.left + panel.width / 2))\" y=\"50\" text-anchor=\"middle\">"
            + SVG.escape("n = \(points.count), Pearson r = \(show(r)), Kendall τ-b = \(show(tau))") + "</text>")
        if let fit, let lo = xs.min(), let hi = xs.max() {
            body.append("<line class=\"regression\" data-slope=\"\(SVG.value(fit.slope))\" data-intercept=\"\(SVG.value(fit.intercept))\" "
                + "x1=\"\(SVG.px(panel.sx(lo)))\" y1=\"\(SVG.px(panel.sy(fit.intercept + fit.slope * lo)))\" "
                + "x2=\"\(SVG.px(panel.sx(hi)))\" y2=\"\(SVG.px(panel.sy(fit.intercept + fit.slope * hi)))\" stroke=\"#888\" stroke-width=\"1.5\">"
                + "<title>least squares: accuracy = \(SVG.value(fit.intercept)) + \(SVG.value(fit.slope)) × stability</title></line>")
        }
        for p in points {
            let label = configs[p.config].label
            body.append("<circle class=\"point\" data-run=\"\(SVG.escape(p.run))\" data-config=\"\(SVG.escape(label))\" "
                + "data-stability=\"\(SVG.value(p.x))\" data-accuracy=\"\(SVG.value(p.y))\" cx=\"\(SVG.px(panel.sx(p.x)))\" "
                + "cy=\"\(SVG.px(panel.sy(p.y)))\" r=\"4\" fill=\"\(SVG.colour(p.config))\" fill-opacity=\"0.8\">"
                + "<title>\(SVG.escape(p.run)) (\(SVG.escape(label))): stability \(SVG.value(p.x)), accuracy \(SVG.value(p.y))</title></circle>")
        }
        let used = Array(Set(points.map(\.config))).sorted()
        let legend = Legend.render(used.map { .init(label: configs[$0].label, colour: SVG.colour($0), marker: true) },
                                   left: panel.left, top: panel.top + panel.height + 58)
        body += legend.elements
        return SVG.document(width: 740, height: panel.top + panel.height + 62 + legend.height, title: title, body: body)
    }
}
