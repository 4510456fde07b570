// The real `prunectl` binary against an in-process daemon over the real socket: every
// subcommand, seeds and sweep expansion, --json, tables, wait's exit codes, watch on a pipe,
// report and figures, error codes and exit statuses, shell completions.
import Control
@testable import Daemon
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import PrunedJSON
import Testing
import TestSupport

typealias CLIResult = ToolResult

extension ToolResult {
    var lines: [String] { out.split(separator: "\n").map(String.init) }
    var json: [JSON] { lines.compactMap { try? JSON.parse($0) } }
}

/// Runs prunectl with `args` against `socket` (via PRUNED_SOCKET), with a bounded wait.
func prunectl(_ socket: String, _ args: [String], timeout: Double = 120) throws -> CLIResult {
    try runTool(prunectlBinary, args, environment: ["PRUNED_SOCKET": socket], limit: timeout)
}

@Suite(.serialized, .enabled(if: haveFashionMNIST && FileManager.default.isExecutableFile(atPath: prunectlBinary)))
struct PrunectlTests {
    @Test func queueCommandsTablesAndErrors() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let s = d.socketPath
        let specPath = d.dir + "/spec.json"
        try tinySpec(epochs: 50, trainLimit: 4096).write(toFile: specPath, atomically: true, encoding: .utf8)
        #expect(try prunectl(s, ["ping"]).out.contains("pong"))
        // Seeds: one run per seed, tagged, in one group; the first starts, the others queue.
        let sub = try prunectl(s, ["submit", "--spec", specPath, "--seeds", "1..3", "--group", "g", "--tag", "t1"])
        #expect(sub.status == 0, "\(sub.err)")
        #expect(sub.lines == ["r-0001", "r-0002", "r-0003"])
        let list = try prunectl(s, ["list", "--group", "g", "--json"])
        let runs = list.json.first?["runs"]?.arrayValue ?? []
        #expect(runs.count == 3)
        #expect(runs.map { $0["tags"] } == (1 ... 3).map { JSON.array([.string("t1"), .string("seed:\($0)")]) })
        #expect(try prunectl(s, ["show", "r-0002", "--json"]).json.first?["spec"]?["seed"]?.intValue == 2)
        let table = try prunectl(s, ["list"]).out
        #expect(table.hasPrefix("ID"))
        #expect(table.contains("r-0003") && table.contains("queued"))
        #expect(try prunectl(s, ["status"]).out.contains("1 running"))
        // Group verbs and per-run verbs.
        #expect(try prunectl(s, ["hold", "--group", "g"]).lines.sorted() == ["r-0002 held", "r-0003 held"])
        #expect(try prunectl(s, ["release", "r-0002"]).lines == ["r-0002 queued"])
        #expect(try prunectl(s, ["priority", "r-0002", "7"]).status == 0)
        let set = try prunectl(s, ["set", "r-0002", "epochs=2", "optimizer.lr=0.002", "--tag", "edited", "--json"])
        #expect(set.json.first?["spec"]?["epochs"]?.intValue == 2)
        #expect(set.json.first?["tags"] == .array([.string("edited")]))
        let cleared = try prunectl(s, ["set", "r-0002", "--no-tags", "--no-group", "--json"]).json.first
        #expect(cleared?["tags"] == .array([]) && cleared?["group"] == .null)
        #expect(waitFor { (try? prunectl(s, ["show", "r-0001", "--json"]).json.first?["progress"]?["step"]?.intValue ?? 0) ?? 0 >= 2 })
        let ck = try prunectl(s, ["checkpoint", "r-0001"])
        #expect(ck.status == 0 && ck.out.contains("ckpt-"), "\(ck.err)")
        #expect(try prunectl(s, ["pause", "r-0001"]).lines == ["r-0001 paused"])
        #expect(try prunectl(s, ["logs", "r-0001", "--tail", "5"]).lines.count == 5)
        // Errors: the daemon's code on stderr, exit 1; usage errors 64; no daemon 4.
        let bad = try prunectl(s, ["pause", "r-0003"])
        #expect(bad.status == 1)
        #expect(bad.err.contains("BAD_STATE"))
        let missing = try prunectl(s, ["show", "r-0099"])
        #expect(missing.status == 1 && missing.err.contains("NOT_FOUND"))
        let badSpec = try prunectl(s, ["submit", "--spec", specPath, "--set", "optimizer.lr=-1"])
        #expect(badSpec.status == 1 && badSpec.err.contains("BAD_SPEC") && badSpec.err.contains("optimizer.lr"))
        #expect(try prunectl(s, ["submit"]).status == 64)
        let preset = try prunectl(s, ["submit", "--preset", "F2_VGG_4", "--seeds", "1..2"])
        #expect(preset.status == 1 && preset.err.contains("BAD_SPEC") && preset.err.contains("dataset.path"))   // no CIFAR-10 here
        #expect(try prunectl(s, ["submit", "--preset", "NO_SUCH"]).err.contains("NOT_FOUND"))
        let nodaemon = try prunectl(d.dir + "/nothing.sock", ["ping"])
        #expect(nodaemon.status == 4 && nodaemon.err.contains("no pruned daemon"))
        let raw = try prunectl(s, ["raw", "version", "frobnicate"])
        #expect(raw.status == 1 && raw.lines.count == 2 && raw.lines[1].hasPrefix("ERR UNKNOWN_COMMAND"))
        // Cancel everything left; wait reports cancelled with exit 2.
        #expect(try prunectl(s, ["cancel", "--group", "g"]).status == 0)
        let w = try prunectl(s, ["wait", "--group", "g", "--quiet"])
        #expect(w.status == 2, "\(w.out)\(w.err)")
        #expect(try prunectl(s, ["drain", "off"]).out.contains("draining: off"))
        #expect(try prunectl(s, ["--generate-completion-script", "bash"]).out.contains("prunectl"))
    }

    @Test func sweepWatchWaitReportAndFork() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let s = d.socketPath
        let specPath = d.dir + "/spec.json"
        let pruning = #","pruning":{"score":"l2","target":"smallest","layers":[{"name":"features.conv3","fraction":0.25,"start":0,"end":1}]}"#
        try tinySpec(epochs: 2, everySteps: 100, extra: pruning).write(toFile: specPath, atomically: true, encoding: .utf8)
        let dry = try prunectl(s, ["sweep", "--spec", specPath, "--grid", "pruning.target=smallest,largest", "--seeds", "1..2", "--group", "sw", "--dry-run"])
        #expect(dry.lines.count == 4)
        #expect(try prunectl(s, ["list", "--json"]).json.first?["count"]?.intValue == 0)
        let sweep = try prunectl(s, ["sweep", "--spec", specPath, "--grid", "pruning.target=smallest,largest", "--seeds", "1..2", "--group", "sw"])
        #expect(sweep.lines.count == 4, "\(sweep.err)")
        let shown = try prunectl(s, ["show", "r-0004", "--json"]).json.first
        #expect(shown?["spec"]?["pruning"]?["target"]?.stringValue == "largest")
        #expect(shown?["tags"] == .array([.string("pruning.target:largest"), .string("seed:2")]))
        // watch on a pipe prints event lines and ends when every run has finished.
        let watch = try prunectl(s, ["watch", "--group", "sw"], timeout: 300)
        #expect(watch.status == 0, "\(watch.err)")
        #expect(watch.out.contains("epoch 2/2"))
        #expect(watch.out.contains("pruned at epoch"))
        // On a terminal (script(1) provides one) the view is drawn in place with bars.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/script") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            p.arguments = ["-qec", "\(prunectlBinary) watch --group sw", "/dev/null"]
            var env = ProcessInfo.processInfo.environment
            env["PRUNED_SOCKET"] = s
            p.environment = env
            let out = Pipe()
            p.standardOutput = out
            p.standardInput = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            #expect(text.contains("\u{1B}[2K"), "\(text.prefix(300))")
            #expect(text.contains("r-0001 completed   [########################] epoch 2/2"), "\(text.prefix(600))")
        }
        let w = try prunectl(s, ["wait", "--group", "sw"])
        #expect(w.status == 0)
        #expect(w.lines.count == 4 && w.lines.allSatisfy { $0.hasSuffix("completed") })
        // metrics as a table, CSV and JSON.
        let csv = try prunectl(s, ["metrics", "r-0001", "--format", "csv"]).lines
        #expect(csv.first?.hasPrefix("epoch,train_loss") == true && csv.count == 3)
        let prunes = try prunectl(s, ["metrics", "r-0001", "--prunes", "--json"]).json.first?["rows"]?.arrayValue ?? []
        #expect(prunes.count == 2)   // events at epochs 0 and 1 (0-based): metrics epochs 1 and 2
        // report: two configurations of two runs, figures written and well-formed.
        let figs = d.dir + "/figs"
        let report = try prunectl(s, ["report", "sw", "--figures", figs, "--json"])
        #expect(report.status == 0, "\(report.err)")
        let configs = report.json.first?["configurations"]?.arrayValue ?? []
        #expect(configs.count == 2)
        #expect(configs.allSatisfy { $0["runs"]?.intValue == 2 || $0["runs"]?.arrayValue?.count == 2 })
        for f in ["accuracy-over-epochs.svg", "rate-sweep.svg", "stability-vs-accuracy.svg", "report.csv"] {
            let text = (try? String(contentsOfFile: figs + "/" + f, encoding: .utf8)) ?? ""
            #expect(!text.isEmpty, "\(f)")
            if f.hasSuffix(".svg") {
                #expect(XMLParser(data: Data(text.utf8)).parse(), "\(f) is not well-formed")
                #expect(text.contains("pruning.target=largest"))
            }
        }
        #expect(try prunectl(s, ["report", "sw"]).out.contains("Kendall"))
        // fork from the newest checkpoint with another target; wait for it; failed runs exit 1.
        let fork = try prunectl(s, ["fork", "r-0001", "pruning.target=random"])
        #expect(fork.status == 0 && fork.out.hasPrefix("r-0005"), "\(fork.err)")
        #expect(try prunectl(s, ["wait", "r-0005"]).status == 0)
        let broken = try prunectl(s, ["submit", "--spec", specPath, "--set", "dataset.path=/tmp", "--group", "broken"])
        #expect(broken.status == 0)
        #expect(try prunectl(s, ["wait", "--group", "broken", "--quiet"]).status == 1)
        // report: the failed run counts in no statistic; its configuration says it was excluded.
        let withFailed = try prunectl(s, ["report", "sw", "broken", "--json"])
        #expect(withFailed.status == 0, "\(withFailed.err)")
        let failedJSON = try #require(withFailed.json.first)
        #expect(failedJSON["failed_runs"]?.intValue == 1)
        let failedConfigs = failedJSON["configurations"]?.arrayValue ?? []
        let failedConfig = failedConfigs.filter { $0["failed"]?.intValue == 1 }
        #expect(failedConfig.count == 1 && failedConfig.first?["runs"]?.intValue == 0, "\(failedConfigs)")
        #expect(failedConfig.first?["failed_run_ids"] == .array([.string("r-0006")]))
        #expect(failedConfigs.filter { $0["failed"]?.intValue == 0 }.count == failedConfigs.count - 1)
        let failedTable = try prunectl(s, ["report", "sw", "broken"])
        #expect(failedTable.out.contains("excluded: 1 failed run (r-0006)"), "\(failedTable.out)")
        let onlyFailed = try prunectl(s, ["report", "broken"])
        #expect(onlyFailed.status != 0 && onlyFailed.err.contains("1 failed, excluded: r-0006"), "\(onlyFailed.err)")
        #expect(try prunectl(s, ["submit", "--spec", specPath, "--hold", "--group", "held"]).status == 0)
        #expect(try prunectl(s, ["wait", "--group", "held", "--max-wait", "0.5", "--poll", "0.1", "--quiet"]).status == 3)
    }
}
