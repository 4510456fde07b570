// report: fetch runs of groups (or by tag) over the protocol, then per configuration the mean
// and 95% bootstrap CI of best post-prune accuracy, stability and generalization gap, the
// correlations across runs, and optionally the paper-style SVG figures.
import ArgumentParser
import Control
import ControlClient
import Foundation
import PrunedJSON
import Results

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Per-configuration means with 95% bootstrap CIs, stability/accuracy/gap correlations, and figures.",
        discussion: """
        Runs of the named groups (and/or with --tag) are grouped into configurations by their spec without seed and name. \
        Unfinished runs count with the epochs they have; failed runs count in no statistic, the report says how many \
        each configuration lost (column failed); cancelled runs are left out. --figures DIR writes accuracy-over-epochs.svg, rate-sweep.svg and \
        stability-vs-accuracy.svg (the paper's Fig 2 left, Fig 3, Fig 2 right) and report.csv.
        """)
    @OptionGroup var g: Global
    @Argument(help: "Groups.") var groups: [String] = []
    @Option(name: .long, help: "Runs with this tag (repeatable).") var tag: [String] = []
    @Option(name: .long, help: "table, csv or json.") var format = "table"
    @Option(name: .long, help: "Write the SVG figures and report.csv into this directory.") var figures: String?
    @Option(name: .long, help: "Bootstrap resamples.") var resamples = Statistics.defaultResamples
    @Option(name: .long, help: "Bootstrap seed (results are reproducible for a seed).") var seed: UInt64 = 0
    @Flag(name: .long, help: "Only completed runs.") var completedOnly = false

    func run() throws {
        guard !groups.isEmpty || !tag.isEmpty else { throw ValidationError("name groups or --tag") }
        guard ["table", "csv", "json"].contains(format) else { throw ValidationError("--format must be table, csv or json") }
        guard (10 ... 1_000_000).contains(resamples) else { throw ValidationError("--resamples must be in 10…1000000") }
        try guarded {
            let c = try g.connect()
            var ids: [RunID] = []
            var filters: [ListFilter] = groups.map { var f = ListFilter(); f.group = $0; return f }
            filters += tag.map { var f = ListFilter(); f.tag = $0; return f }
            for f in filters {
                for r in try RunList(json: c.call(.list(f))).runs where !ids.contains(r.id) { ids.append(r.id) }
            }
            var runs: [RunResult] = []
            for id in ids {
                let show = try RunInfo(json: c.call(.show(id)))
                let text = id.description, state = show.state.rawValue
                if show.state == .failed {
                    // Grouped with its configuration only to be counted as excluded.
                    runs.append(RunResult(id: text, group: show.group, spec: show.details?.spec ?? .null, state: state))
                    continue
                }
                if show.state == .cancelled || (completedOnly && show.state != .completed) { continue }
                let rows = try MetricsReply(json: c.call(.metrics(id, kind: .epochs, since: 0))).rows
                if rows.isEmpty { continue }
                runs.append(RunResult(id: text, group: show.group, tags: show.tags, spec: show.details?.spec ?? .null,
                                      summary: show.shown?.summary, rows: rows, state: state))
            }
            let failed = runs.filter(\.isFailed).map(\.id)
            guard runs.count > failed.count else {
                throw Failure("no runs with metrics in \((groups + tag.map { "tag \($0)" }).joined(separator: ", "))"
                              + (failed.isEmpty ? "" : " (\(failed.count) failed, excluded: \(failed.joined(separator: ", ")))"))
            }
            let report = Results.Report(runs: runs, resamples: resamples, seed: seed)
            print(ReportOutput.text(report, runs: runs, format: g.json ? .json : ReportFormat(rawValue: format) ?? .table), terminator: "")
            if let dir = figures {
                do {
                    let files = try ReportOutput.writeFigures(runs, report: report, to: dir, resamples: resamples, seed: seed)
                    printErr("prunectl: wrote \(files.joined(separator: ", ")) to \(dir)")
                } catch {
                    throw Failure("\(error)")
                }
            }
        }
    }
}
