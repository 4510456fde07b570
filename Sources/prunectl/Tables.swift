// Human-readable renderings (aligned tables, a run summary) and the list/status/metrics/logs
// subcommands that use them. --json bypasses all of this and prints the daemon's payloads.
import ArgumentParser
import Control
import ControlClient
import Foundation
import PrunedJSON

enum Tables {
    /// Left-aligned columns separated by two spaces; numbers right-aligned.
    static func render(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: max(0, widths[i] - c.count))
                let numeric = !c.isEmpty && c.allSatisfy { "0123456789.-%/".contains($0) }
                return numeric ? pad + c : c + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    static func pct(_ d: Double?) -> String { d.map { String(format: "%.2f", $0) } ?? "-" }

    static func progress(_ p: RunProgress) -> String {
        p.stepsPerEpoch > 0 && p.step > 0 ? "\(p.epochsDone)/\(p.epochs) +\(p.step)/\(p.stepsPerEpoch)" : "\(p.epochsDone)/\(p.epochs)"
    }

    static func runRows(_ runs: [RunInfo]) -> String {
        render(["ID", "STATE", "OWNER", "GROUP", "MODEL", "EPOCHS", "TEST%", "BEST%", "PRIO", "TAGS"], runs.map { r in
            [r.id.description, r.state.rawValue, r.ownerName, r.group ?? "-", r.model ?? "", progress(r.progress), pct(r.lastTestAcc),
             pct(r.bestTestAcc), String(r.priority), r.tags.joined(separator: ",")]
        })
    }

    /// A Slurm run's lines in `show`: where it stands, its job, array index, node, Slurm state and restarts.
    static func slurmLines(_ r: RunInfo) -> [String] {
        let s = r.slurm
        let status = r.shown?.slurmStatus
        var lines = ["  Slurm: " + (status ?? "-")]
        lines.append("  Slurm job \(s?.jobID ?? "-"), array index \(s?.arrayIndex.map(String.init) ?? "-"), node \(s?.node ?? "-"), state \(s?.state ?? "-")"
                     + (s?.slurmReason.map { " (\($0))" } ?? "")
                     + ", restarts \(s?.restarts ?? 0), submissions \(s?.submitAttempts ?? 0)"
                     + ((s?.resubmits ?? 0) > 0 ? ", resubmitted \(s?.resubmits ?? 0)×" : ""))
        if let note = s?.note, status?.contains(note) != true { lines.append("  Slurm note: \(note)") }
        if let out = s?.output { lines.append("  Slurm output: \(out)") }
        return lines
    }

    static func showRun(_ r: RunInfo) -> String {
        let d = r.details
        var lines: [String] = []
        lines.append("\(r.id)  \(r.state.rawValue)" + (r.reason.map { " (\($0))" } ?? "") + (d?.pending.map { " [\($0) pending]" } ?? ""))
        lines.append("  owner \(r.ownerName), group \(r.group ?? "-"), tags \(r.tags.joined(separator: ",")), priority \(r.priority)")
        let spec = d?.spec
        lines.append("  \(spec?["model"]?.stringValue ?? "?") width \(spec?["width"].map { JSON.format($0.doubleValue ?? 1) } ?? "1") on \(spec?["dataset"]?["kind"]?.stringValue ?? "?"), seed \(spec?["seed"]?.intValue ?? 0)"
                     + (spec?["pruning"].map { p in ", pruning \(p["target"]?.stringValue ?? "largest") by \(p["score"]?.stringValue ?? "l2")" } ?? ""))
        lines.append("  progress: epoch \(progress(r.progress))" + (r.progress.imagesPerSecond.map { String(format: ", %.0f img/s", $0) } ?? ""))
        lines.append("  test accuracy: last \(pct(r.lastTestAcc)), best \(pct(r.bestTestAcc))"
                     + (d?.lastInstability.map { String(format: ", last instability %.4f", $0) } ?? ""))
        if let ck = d?.lastCheckpoint { lines.append("  last checkpoint: \(ck)") }
        if r.executor == .slurm { lines += slurmLines(r) }
        if let f = d?.forkOf { lines.append("  forked from \(f) at \(d?.forkCheckpoint ?? "?")") }
        if let s = r.shown?.summary {
            lines.append(String(format: "  summary: best test %.2f%% at epoch %d, gap %.2f, mean stability %.2f%%",
                                s["best_test_acc"]?.doubleValue ?? .nan, s["best_epoch"]?.intValue ?? 0,
                                s["generalization_gap"]?.doubleValue ?? .nan, s["mean_stability"]?.doubleValue ?? .nan))
        }
        if let dir = r.shown?.directory { lines.append("  directory: \(dir)") }
        return lines.joined(separator: "\n")
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List runs (filters combine).")
    @OptionGroup var g: Global
    @Option(name: .long, help: "States, comma-separated (queued, held, running, paused, interrupted, completed, failed, cancelled).") var state: String?
    @Option(name: .long, help: "Group.") var group: String?
    @Option(name: .long, help: "Tag.") var tag: String?
    @Option(name: .long, help: "Owner (user name or uid).") var owner: String?

    func run() throws {
        var f = ListFilter()
        if let state {
            f.states = try state.split(separator: ",").map { s in
                guard let v = RunState(rawValue: String(s)) else { throw ValidationError("unknown state \(s)") }
                return v
            }
        }
        f.group = group
        f.tag = tag
        f.owner = owner
        try guarded { try perform(g, .list(f)) { Tables.runRows(try RunList(json: $0).runs) } }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The daemon's overview and the runs that are not finished.")
    @OptionGroup var g: Global
    func run() throws {
        try guarded {
            let c = try g.connect()
            let st = try c.call(.status)
            var f = ListFilter()
            f.states = [.running, .queued, .held, .paused, .interrupted]
            let runs = try c.call(.list(f))
            if g.json {
                print(st.rendered)
                print(runs.rendered)
                return
            }
            let status = try DaemonStatus(json: st)
            print("pruned \(status.daemon) on \(g.socketPath): \(status.status)")
            let rows = try RunList(json: runs).runs
            if !rows.isEmpty { print(Tables.runRows(rows)) }
        }
    }
}

struct Metrics: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A run's per-epoch metrics, or its pruning events with instability.")
    @OptionGroup var g: Global
    @Argument(help: "Run id.") var id: String
    @Flag(name: .long, help: "Pruning events instead of epochs.") var prunes = false
    @Option(name: .long, help: "Only epochs after this one.") var since = 0
    @Option(name: .long, help: "table, csv or json.") var format = "table"

    func run() throws {
        guard ["table", "csv", "json"].contains(format) else { throw ValidationError("--format must be table, csv or json") }
        try guarded {
            let j = try g.connect().call(.metrics(try runID(id), kind: prunes ? .prunes : .epochs, since: since))
            if g.json || format == "json" { print(j.rendered); return }
            let rows = try MetricsReply(json: j).rows
            let columns = prunes ? ["epoch", "t_pre", "t_post", "instability", "instability_points", "stability"]
                                 : ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "p_count"]
            func cell(_ r: JSON, _ c: String) -> String {
                guard let v = r[c] else { return "" }
                switch v {
                case .number(let d): return d.rounded() == d && abs(d) < 1e9 ? String(Int(d)) : (format == "csv" ? JSON.format(d) : String(format: "%.4g", d))
                case .null: return ""
                default: return v.stringValue ?? v.rendered
                }
            }
            if format == "csv" {
                print(columns.joined(separator: ","))
                for r in rows { print(columns.map { cell(r, $0) }.joined(separator: ",")) }
            } else {
                print(Tables.render(columns, rows.map { r in columns.map { cell(r, $0) } }))
            }
        }
    }
}

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A run's log; with --follow, then its events as they happen.")
    @OptionGroup var g: Global
    @Argument(help: "Run id.") var id: String
    @Option(name: .long, help: "Lines from the end.") var tail = 100
    @Flag(name: [.customShort("f"), .long], help: "Keep printing the run's events until it finishes.") var follow = false

    func run() throws {
        try guarded {
            let rid = try runID(id)
            let c = try g.connect()
            let logs = try LogsReply(json: c.call(.logs(rid, tail: max(1, min(tail, 10_000)))))
            for l in logs.lines { print(g.json ? JSON.string(l).rendered : l) }
            guard follow else { return }
            c.setTimeout(nil)
            _ = try c.call(.subscribe(since: nil, run: rid, group: nil))
            while true {
                guard case .event(let e) = try c.readReply() else { continue }
                print(g.json ? e.rendered : Events.describe(e))
                fflush(stdout)
                if e["type"]?.stringValue == "state", let to = e["to"]?.stringValue.flatMap(RunState.init(rawValue:)),
                   to.isTerminal || to == .paused { return }
            }
        }
    }
}

enum Events {
    /// One line for an event, for logs -f and watch on a non-terminal.
    static func describe(_ e: JSON) -> String {
        let run = e["run"]?.stringValue ?? "daemon"
        let time = e["time"]?.doubleValue.map { Date(timeIntervalSince1970: $0) }.map { t -> String in
            let f = DateFormatter()
            f.dateFormat = "HH:mm:ss"
            return f.string(from: t)
        } ?? ""
        switch e["type"]?.stringValue ?? "" {
        case "state":
            return "\(time) \(run) \(e["from"]?.stringValue ?? "new") → \(e["to"]?.stringValue ?? "?")" + (e["reason"]?.stringValue.map { " (\($0))" } ?? "")
        case "epoch":
            return String(format: "%@ %@ epoch %d/%d test %.2f%% train %.2f%% loss %.4f lr %g (%.0f img/s)", time, run,
                          e["epoch"]?.intValue ?? 0, e["epochs"]?.intValue ?? 0, e["test_acc"]?.doubleValue ?? .nan,
                          e["train_acc"]?.doubleValue ?? .nan, e["test_loss"]?.doubleValue ?? .nan, e["lr"]?.doubleValue ?? .nan,
                          e["images_per_second"]?.doubleValue ?? 0)
        case "prune":
            let layers = (e["layers"]?.arrayValue ?? []).map { "\($0["layer"]?.stringValue ?? "?") \($0["k"]?.intValue ?? 0)" }.joined(separator: ", ")
            return String(format: "%@ %@ pruned at epoch %d (%@): test %.2f%% → %.2f%%, instability %.4f", time, run, e["epoch"]?.intValue ?? 0,
                          layers, e["t_pre"]?.doubleValue ?? .nan, e["t_post"]?.doubleValue ?? .nan, e["instability"]?.doubleValue ?? .nan)
        case "checkpoint": return "\(time) \(run) checkpoint \(e["file"]?.stringValue ?? "")"
        case "started": return "\(time) \(run) started"
        case "resumed": return "\(time) \(run) resumed from \(e["checkpoint"]?.stringValue ?? "?")"
        case "error": return "\(time) \(run) error: \(e["message"]?.stringValue ?? "")"
        default: return "\(time) \(run) \(e.rendered)"
        }
    }
}
