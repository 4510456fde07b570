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

    static func pct(_ j: JSON?) -> String { j?.doubleValue.map { String(format: "%.2f", $0) } ?? "-" }

    static func progress(_ r: JSON) -> String {
        let done = r["epochs_done"]?.intValue ?? r["progress"]?["epochs_done"]?.intValue ?? 0
        let total = r["epochs"]?.intValue ?? r["progress"]?["epochs"]?.intValue ?? 0
        let step = r["step"]?.intValue ?? r["progress"]?["step"]?.intValue ?? 0
        let per = r["steps_per_epoch"]?.intValue ?? r["progress"]?["steps_per_epoch"]?.intValue ?? 0
        return per > 0 && step > 0 ? "\(done)/\(total) +\(step)/\(per)" : "\(done)/\(total)"
    }

    static func runRows(_ runs: [JSON]) -> String {
        render(["ID", "STATE", "OWNER", "GROUP", "MODEL", "EPOCHS", "TEST%", "BEST%", "PRIO", "TAGS"], runs.map { r in
            [r["id"]?.stringValue ?? "", r["state"]?.stringValue ?? "", r["owner_name"]?.stringValue ?? "",
             r["group"]?.stringValue ?? "-", r["model"]?.stringValue ?? "", progress(r), pct(r["last_test_acc"]), pct(r["best_test_acc"]),
             String(r["priority"]?.intValue ?? 0), (r["tags"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ",")]
        })
    }

    /// A Slurm run's lines in `show`: where it stands, its job, array index, node, Slurm state and restarts.
    static func slurmLines(_ r: JSON) -> [String] {
        let s = r["slurm"]
        func v(_ key: String) -> String { s?[key]?.stringValue ?? s?[key]?.intValue.map(String.init) ?? "-" }
        var lines = ["  Slurm: " + (r["slurm_status"]?.stringValue ?? "-")]
        lines.append("  Slurm job \(v("job_id")), array index \(v("array_index")), node \(v("node")), state \(v("state"))"
                     + (s?["reason"]?.stringValue.map { " (\($0))" } ?? "")
                     + ", restarts \(s?["restarts"]?.intValue ?? 0), submissions \(s?["submit_attempts"]?.intValue ?? 0)"
                     + ((s?["resubmits"]?.intValue ?? 0) > 0 ? ", resubmitted \(s?["resubmits"]?.intValue ?? 0)×" : ""))
        if let note = s?["note"]?.stringValue, r["slurm_status"]?.stringValue?.contains(note) != true { lines.append("  Slurm note: \(note)") }
        if let out = s?["output"]?.stringValue { lines.append("  Slurm output: \(out)") }
        return lines
    }

    static func showRun(_ r: JSON) -> String {
        var lines: [String] = []
        lines.append("\(r["id"]?.stringValue ?? "?")  \(r["state"]?.stringValue ?? "?")" + (r["reason"]?.stringValue.map { " (\($0))" } ?? "")
                     + (r["pending"]?.stringValue.map { " [\($0) pending]" } ?? ""))
        lines.append("  owner \(r["owner_name"]?.stringValue ?? "?"), group \(r["group"]?.stringValue ?? "-"), tags \((r["tags"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ",")), priority \(r["priority"]?.intValue ?? 0)")
        let spec = r["spec"]
        lines.append("  \(spec?["model"]?.stringValue ?? "?") width \(spec?["width"].map { JSON.format($0.doubleValue ?? 1) } ?? "1") on \(spec?["dataset"]?["kind"]?.stringValue ?? "?"), seed \(spec?["seed"]?.intValue ?? 0)"
                     + (spec?["pruning"].map { p in ", pruning \(p["target"]?.stringValue ?? "largest") by \(p["score"]?.stringValue ?? "l2")" } ?? ""))
        lines.append("  progress: epoch \(progress(r))" + (r["progress"]?["images_per_second"]?.doubleValue.map { String(format: ", %.0f img/s", $0) } ?? ""))
        lines.append("  test accuracy: last \(pct(r["last_test_acc"])), best \(pct(r["best_test_acc"]))"
                     + (r["last_instability"]?.doubleValue.map { String(format: ", last instability %.4f", $0) } ?? ""))
        if let ck = r["last_checkpoint"]?.stringValue { lines.append("  last checkpoint: \(ck)") }
        if r["executor"]?.stringValue == "slurm" { lines += slurmLines(r) }
        if let f = r["fork_of"]?.stringValue { lines.append("  forked from \(f) at \(r["fork_checkpoint"]?.stringValue ?? "?")") }
        if let s = r["summary"] {
            lines.append(String(format: "  summary: best test %.2f%% at epoch %d, gap %.2f, mean stability %.2f%%",
                                s["best_test_acc"]?.doubleValue ?? .nan, s["best_epoch"]?.intValue ?? 0,
                                s["generalization_gap"]?.doubleValue ?? .nan, s["mean_stability"]?.doubleValue ?? .nan))
        }
        if let d = r["directory"]?.stringValue { lines.append("  directory: \(d)") }
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
        try guarded { try perform(g, .list(f)) { Tables.runRows($0["runs"]?.arrayValue ?? []) } }
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
            print("pruned \(st["daemon"]?.stringValue ?? "?") on \(g.socketPath): \(st["status"]?.stringValue ?? "")")
            let rows = runs["runs"]?.arrayValue ?? []
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
            let rows = j["rows"]?.arrayValue ?? []
            if g.json || format == "json" { print(j.rendered); return }
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
            let j = try c.call(.logs(rid, tail: max(1, min(tail, 10_000))))
            for l in j["lines"]?.arrayValue ?? [] { print(g.json ? l.rendered : l.stringValue ?? "") }
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
