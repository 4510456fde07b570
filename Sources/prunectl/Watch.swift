// watch (live progress: bars, images/s, ETA, accuracy, instability; redrawn in place on a
// terminal, event lines otherwise) and wait (block until runs finish, with exit codes for scripts).
import ArgumentParser
import Control
import ControlClient
import Foundation
import PrunedJSON

/// A run as one look found it: the daemon's JSON (what --json prints) and its decoding (a
/// group's runs come in the short form from `list`, explicit ids in full from `show`).
struct SeenRun {
    let json: JSON
    let info: RunInfo
}

/// The runs a watch/wait is about: explicit ids, or whatever the group holds at each look.
struct Selection {
    var ids: [RunID]
    var group: String?

    func runs(_ c: ControlConnection) throws -> [SeenRun] {
        var out: [SeenRun] = []
        if let group {
            var f = ListFilter()
            f.group = group
            let reply = try c.call(.list(f))
            out += zip(reply["runs"]?.arrayValue ?? [], try RunList(json: reply).runs).map(SeenRun.init)
        }
        for id in ids where !out.contains(where: { $0.info.id == id }) {
            let reply = try c.call(.show(id))
            out.append(SeenRun(json: reply, info: try RunInfo(json: reply)))
        }
        return out
    }
}

struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait until runs (ids or a group) have finished.",
        discussion: """
        Exit status: 0 every run completed; 1 at least one failed; 2 at least one was cancelled (none failed); \
        3 --max-wait passed first; 4 the daemon could not be reached. Paused, held and interrupted runs are waited for.
        """)
    @OptionGroup var g: Global
    @Argument(help: "Run ids.") var ids: [String] = []
    @Option(name: .long, help: "Every run of this group (including runs added while waiting).") var group: String?
    @Option(name: .long, help: "Give up after this many seconds (exit 3).") var maxWait: Double?
    @Option(name: .long, help: "Seconds between two looks.") var poll = 2.0
    @Flag(name: .long, help: "Print nothing but the final states.") var quiet = false

    func run() throws {
        guard !ids.isEmpty || group != nil else { throw ValidationError("name run ids or --group") }
        guard poll > 0 else { throw ValidationError("--poll must be positive") }
        let sel = Selection(ids: try ids.map(runID), group: group)
        let deadline = maxWait.map { Date().addingTimeInterval($0) }
        try guarded {
            var c = try g.connect()
            var lastLine = ""
            while true {
                let runs: [SeenRun]
                do { runs = try sel.runs(c) } catch is ClientError {
                    // The daemon restarted (e.g. socket activation after a stop): reconnect once.
                    usleep(UInt32(poll * 1e6))
                    c = try g.connect()
                    continue
                }
                let states = runs.map(\.info.state)
                if !runs.isEmpty && states.allSatisfy(\.isTerminal) {
                    for r in runs {
                        print(g.json ? r.json.rendered : "\(r.info.id) \(r.info.state.rawValue)" + (r.info.reason.map { " (\($0))" } ?? ""))
                    }
                    if states.contains(.failed) { throw ExitCode(1) }
                    if states.contains(.cancelled) { throw ExitCode(2) }
                    return
                }
                if !quiet && !g.json {
                    let counts = Dictionary(grouping: states, by: { $0 }).map { "\($0.value.count) \($0.key.rawValue)" }.sorted().joined(separator: ", ")
                    let line = "waiting for \(runs.count) run(s): \(counts)"
                    if line != lastLine { printErr("prunectl: " + line); lastLine = line }
                }
                if let deadline, Date() >= deadline {
                    printErr("prunectl: gave up after \(Int(maxWait ?? 0)) s")
                    throw ExitCode(3)
                }
                usleep(UInt32(poll * 1e6))
            }
        }
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Live progress of runs (ids or a group): bars, images/s, ETA, latest accuracy and instability.",
        discussion: "On a terminal the view is redrawn in place every --interval seconds; otherwise one line per event. Ends when every run has finished (or with --follow, never).")
    @OptionGroup var g: Global
    @Argument(help: "Run ids.") var ids: [String] = []
    @Option(name: .long, help: "Every run of this group.") var group: String?
    @Option(name: .long, help: "Seconds between redraws.") var interval = 1.0
    @Flag(name: .long, help: "Keep watching after every run has finished.") var follow = false

    func run() throws {
        let sel = Selection(ids: try ids.map(runID), group: group)
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
        try guarded {
            if isatty(1) == 1 && !g.json { try live(sel) } else { try lines(sel) }
        }
    }

    /// Terminal view: one block, redrawn in place.
    func live(_ sel: Selection) throws {
        let c = try g.connect()
        var drawn = 0
        while true {
            var runs = try sel.ids.isEmpty && sel.group == nil ? RunList(json: c.call(.list(ListFilter()))).runs : sel.runs(c).map(\.info)
            // The full record (speed, batch size) for the running ones.
            runs = try runs.map { r in r.state == .running ? try RunInfo(json: c.call(.show(r.id))) : r }
            var out = [WatchView.header(g.socketPath)]
            out += runs.map(WatchView.line)
            if drawn > 0 { print("\u{1B}[\(drawn)A", terminator: "") }
            for l in out { print("\u{1B}[2K" + l) }
            drawn = out.count
            fflush(stdout)
            if !follow && !runs.isEmpty && runs.allSatisfy(\.state.isTerminal) { return }
            usleep(UInt32(interval * 1e6))
        }
    }

    /// Not a terminal: the current states, then one line per event.
    func lines(_ sel: Selection) throws {
        let c = try g.connect()
        var runs = try sel.runs(c)
        for r in runs { print(g.json ? r.json.rendered : WatchView.line(r.info)) }
        if !follow && !runs.isEmpty && runs.allSatisfy(\.info.state.isTerminal) { return }
        c.setTimeout(nil)
        let sub = try c.call(.subscribe(since: nil, run: sel.ids.count == 1 && sel.group == nil ? sel.ids[0] : nil, group: sel.group))
        _ = sub
        let wanted = Set(sel.ids.map(\.description))
        var finished = Set(runs.filter(\.info.state.isTerminal).map(\.info.id.description))
        let total = Set(runs.map(\.info.id.description))
        while true {
            guard case .event(let e) = try c.readReply() else { continue }
            let run = e["run"]?.stringValue ?? ""
            if !wanted.isEmpty && sel.group == nil && !wanted.contains(run) { continue }
            if e["type"]?.stringValue == "checkpoint" { continue }
            print(g.json ? e.rendered : Events.describe(e))
            fflush(stdout)
            if e["type"]?.stringValue == "state", let to = e["to"]?.stringValue.flatMap(RunState.init(rawValue:)), to.isTerminal {
                finished.insert(run)
                if !follow && !total.isEmpty && total.isSubset(of: finished) {
                    runs = try sel.runs(c)
                    if runs.allSatisfy(\.info.state.isTerminal) { return }
                }
            }
        }
    }
}

enum WatchView {
    static func header(_ socket: String) -> String {
        let f = DateFormatter()
        f.dateFormat = "HH:mm:ss"
        return "pruned at \(socket) — \(f.string(from: Date()))"
    }

    static func bar(_ fraction: Double, width: Int = 24) -> String {
        let f = min(max(fraction.isFinite ? fraction : 0, 0), 1)
        let full = Int((f * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: full) + String(repeating: "-", count: width - full) + "]"
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0, s < 1e12 else { return "?" }
        let t = Int(s)
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }

    /// One run's line. Speed and ETA need the full record (`show`), which `live` fetches for the
    /// running runs; a run seen only in `list`'s short form is shown without them.
    static func line(_ r: RunInfo) -> String {
        let st = r.state.rawValue
        let p = r.progress
        let done = p.epochsDone, total = max(p.epochs, 1)
        let step = p.step, per = p.stepsPerEpoch
        let fraction = (Double(done) + (per > 0 ? Double(step) / Double(per) : 0)) / Double(total)
        var s = "\(r.id) \(st.padding(toLength: 11, withPad: " ", startingAt: 0)) \(bar(fraction)) epoch \(min(done + 1, total))/\(total)"
        if per > 0 && r.state == .running { s += " step \(step)/\(per)" }
        if let d = r.details, let ips = p.imagesPerSecond, r.state == .running {
            s += String(format: " %.0f img/s", ips)
            if let batch = d.spec["batch_size"]?.intValue, per > 0 {
                let remaining = (Double(total - done) * Double(per) - Double(step)) * Double(batch) / ips
                s += " ETA " + duration(remaining)
            }
        }
        if let acc = r.lastTestAcc { s += String(format: " test %.2f%%", acc) }
        if let ins = r.details?.lastInstability { s += String(format: " instab %.4f", ins) }
        if let reason = r.reason, r.state == .failed { s += " (\(reason))" }
        return s
    }
}
