// `pruned report`: the report of `prunectl report` over run directories on disk, without a
// daemon (Results).
import ArgumentParser
import Foundation
import PrunedJSON
import Results

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "The report of `prunectl report` over run directories, without a daemon.",
        discussion: """
        Each DIR is a run directory (spec.json, metrics.jsonl, summary.json) or a directory of run directories. \
        Runs without summary.json (unfinished, stopped or failed) are excluded and listed. Runs are grouped into \
        configurations by their spec without seed and name. --figures DIR writes accuracy-over-epochs.svg, \
        rate-sweep.svg, stability-vs-accuracy.svg and report.csv.
        """)

    @Argument(help: "Run directories, or directories of run directories.") var dirs: [String]
    @Option(name: .long, help: "table, csv or json.") var format = "table"
    @Option(name: .long, help: "Write the SVG figures and report.csv into this directory.") var figures: String?
    @Option(name: .long, help: "Bootstrap resamples.") var resamples = Statistics.defaultResamples
    @Option(name: .long, help: "Bootstrap seed (results are reproducible for a seed).") var seed: UInt64 = 0

    func validate() throws {
        guard !dirs.isEmpty else { throw ValidationError("name at least one run directory") }
        guard ReportFormat(rawValue: format) != nil else { throw ValidationError("--format must be table, csv or json") }
        guard (10 ... 1_000_000).contains(resamples) else { throw ValidationError("--resamples must be in 10…1000000") }
    }

    func run() throws {
        let fmt = ReportFormat(rawValue: format) ?? .table
        do {
            let found = try RunDirectories.load(dirs)
            guard !found.finished.isEmpty else {
                printErr("pruned: no finished runs (summary.json) in \(dirs.joined(separator: ", "))"
                         + (found.exclusionNote.map { "; " + $0 } ?? ""))
                throw ExitCode(1)
            }
            let report = Results.Report(runs: found.finished, resamples: resamples, seed: seed)
            if fmt == .json, case .object(var pairs) = report.json() {
                pairs.append(("unfinished", found.unfinishedJSON))
                print(JSON.object(pairs).rendered)
            } else {
                print(ReportOutput.text(report, runs: found.finished, format: fmt), terminator: "")
            }
            if let note = found.exclusionNote {
                if fmt == .table { print(note) } else { printErr("pruned: " + note) }
            }
            if let dir = figures {
                let files = try ReportOutput.writeFigures(found.finished, report: report, to: dir, resamples: resamples, seed: seed)
                printErr("pruned: wrote \(files.joined(separator: ", ")) to \(dir)")
            }
        } catch let e as ResultsError {
            printErr("pruned: \(e)")
            throw ExitCode(1)
        }
    }
}
