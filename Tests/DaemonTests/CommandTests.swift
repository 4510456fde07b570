// Every protocol command against an in-process daemon over the real socket, with real training
// on Fashion-MNIST: state transitions, scheduling order, durable pause, restart recovery, fork,
// metrics, events, drain, and ownership checks. Only the permission table calls handlers directly.
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import Testing
import TestSupport

func metricRows(_ dir: String, _ id: String) -> [JSON] {
    let text = (try? String(contentsOfFile: dir + "/state/runs/\(id)/metrics.jsonl", encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
}

/// A metrics row without its timing fields (which differ between identical runs).
func withoutTiming(_ j: JSON) -> JSON {
    guard case .object(let pairs) = j else { return j }
    return .object(pairs.filter { $0.0 != "seconds" && $0.0 != "train_images_per_second" })
}

@Suite(.serialized, .enabled(if: haveFashionMNIST))
struct CommandTests {
    @Test func basicsAndValidationHaveNoSideEffects() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        #expect(c.hello["protocol"]?.intValue == ProtocolInfo.version)
        #expect(try c.ok("ping")["pong"] == .bool(true))
        #expect(try c.ok("version")["daemon"]?.stringValue == ProtocolInfo.softwareVersion)
        #expect(try c.ok("help")["commands"]?.arrayValue?.count == Verb.allCases.count)
        #expect(try c.ok("help submit")["usage"]?.stringValue == Verb.submit.usage)
        #expect(try c.ok("status")["runs"]?["queued"]?.intValue == 0)
        // Rejected submits leave nothing behind.
        #expect(try c.err("submit spec=" + tinySpec(extra: #","bogus":1"#), .badSpec).contains("bogus"))
        #expect(try c.err("submit spec=" + tinySpec() + " optimizer.lr=-1", .badSpec).contains("optimizer.lr"))
        #expect(try c.err("submit spec=" + tinySpec() + " dataset.path=/nonexistent", .badSpec).contains("dataset.path"))
        try c.err("submit NO_SUCH_PRESET", .notFound)
        #expect(try c.err("submit F2_VGG_4", .badSpec).contains("dataset.path"))
        try c.err("submit F2_VGG_4 spec=" + tinySpec(), .badArgument)
        try c.err("submit", .badArgument)
        try c.err("frobnicate r-1", .unknownCommand)
        for verb in ["show", "pause", "resume", "cancel", "hold", "release", "checkpoint", "metrics"] {
            try c.err("\(verb) r-0042", .notFound)
        }
        try c.err("priority r-0042 5", .notFound)
        try c.err("fork r-0042", .notFound)
        #expect(try c.ok("list")["count"]?.intValue == 0)
        let runs = try FileManager.default.contentsOfDirectory(atPath: d.dir + "/state/runs")
        #expect(runs.isEmpty)
        #expect(try c.ok("quit")["bye"] == .bool(true))
        #expect(c.atEOF())
    }

    @Test func queueOrderHoldReleaseSetPriorityCancel() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        // A long first run occupies the single slot.
        let a = try c.ok("submit spec=" + tinySpec(epochs: 50, trainLimit: 4096) + " group=g1 tag=long")["id"]?.stringValue ?? ""
        #expect(try c.state(a) == "running")
        let b = try c.ok("submit spec=" + tinySpec(epochs: 1) + " group=g2 tag=x,y priority=1")["id"]?.stringValue ?? ""
        let cc = try c.ok("submit spec=" + tinySpec(epochs: 1) + " group=g2 tag=y")["id"]?.stringValue ?? ""
        let h = try c.ok("submit spec=" + tinySpec(epochs: 1) + " hold=true priority=100")["id"]?.stringValue ?? ""
        #expect(try c.state(b) == "queued")
        #expect(try c.state(h) == "held")
        #expect(try c.ok("list state=queued")["count"]?.intValue == 2)
        #expect(try c.ok("list group=g2")["count"]?.intValue == 2)
        #expect(try c.ok("list tag=x")["runs"]?.arrayValue?.first?["id"]?.stringValue == b)
        #expect(try c.ok("list owner=root")["count"]?.intValue == 4)
        #expect(try c.ok("list owner=0 state=running,held")["count"]?.intValue == 2)
        try c.err("list state=sleeping", .badArgument)
        // set edits a queued run that has not started; a running one is refused.
        let edited = try c.ok("set \(cc) epochs=2 optimizer.lr=0.002 tag=z")
        #expect(edited["spec"]?["epochs"]?.intValue == 2)
        #expect(edited["spec"]?["optimizer"]?["lr"]?.doubleValue == 0.002)
        #expect(edited["tags"] == .array([.string("z")]))
        let specOnDisk = try String(contentsOfFile: d.dir + "/state/runs/\(cc)/spec.json", encoding: .utf8)
        #expect(specOnDisk.contains("0.002"))
        try c.err("set \(a) epochs=3", .badState)
        #expect(try c.err("set \(cc) epochs=0", .badSpec).contains("epochs"))
        // Priority: cc (now 5) goes before b (1); the held run is never dispatched.
        #expect(try c.ok("priority \(cc) 5")["priority"]?.intValue == 5)
        try c.err("pause \(b)", .badState)
        try c.err("checkpoint \(b)", .badState)
        #expect(try c.ok("release \(b)")["changed"] == .bool(false))
        #expect(try c.ok("hold \(b)")["state"]?.stringValue == "held")
        #expect(try c.ok("hold \(b)")["changed"] == .bool(false))
        #expect(try c.ok("release \(b)")["state"]?.stringValue == "queued")
        // Cancelling the running run checkpoints it and answers once it has stopped.
        let cancelled = try c.ok("cancel \(a)")
        #expect(cancelled["state"]?.stringValue == "cancelled")
        #expect(cancelled["cancelled_by"]?.intValue == Int(getuid()))
        #expect(!(try c.ok("show \(a)")["checkpoints"]?.arrayValue ?? []).isEmpty)
        try c.err("resume \(a)", .badState)
        #expect(try c.ok("cancel \(a)")["changed"] == .bool(false))
        #expect(waitFor { (try? c.state(cc)) == "running" || (try? c.state(cc)) == "completed" })
        #expect(try c.state(b) == "queued")
        #expect(try c.state(h) == "held")
        #expect(waitFor(120) { (try? c.state(b)) == "completed" })
        #expect(try c.state(cc) == "completed")
        #expect(try c.ok("show \(cc)")["started"]?.doubleValue ?? 0 < c.ok("show \(b)")["started"]?.doubleValue ?? 0)
        #expect(try c.state(h) == "held")
        #expect(try c.ok("cancel \(h)")["state"]?.stringValue == "cancelled")
        let summary = try c.ok("show \(b)")["summary"]
        #expect(summary?["final_test_acc"]?.doubleValue ?? 0 > 10)
    }

    @Test func pauseIsDurableAndResumeIsBitIdentical() throws {
        let dir = makeTempDir("pause")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var d = try TestDaemon(dir: dir) { $0.runs = 1 }
        var c = try d.client()
        let spec = tinySpec(epochs: 2, seed: 7, everySteps: 5)
        let a = try c.ok("submit spec=" + spec)["id"]?.stringValue ?? ""
        #expect(waitFor { (try? c.ok("show \(a)")["progress"]?["step"]?.intValue ?? 0) ?? 0 >= 6 })
        let paused = try c.ok("pause \(a)")
        #expect(paused["state"]?.stringValue == "paused")
        let ck = paused["last_checkpoint"]?.stringValue ?? ""
        #expect(!ck.isEmpty)
        try c.err("pause \(a)" + " extra", .badArgument)
        #expect(try c.ok("pause \(a)")["changed"] == .bool(false))
        // The paused state survives a daemon restart; nothing resumes it by itself.
        d.stop()
        d = try TestDaemon(dir: dir)
        c = try d.client()
        #expect(try c.state(a) == "paused")
        usleep(300_000)
        #expect(try c.state(a) == "paused")
        #expect(try c.ok("resume \(a)")["state"]?.stringValue != "paused")
        #expect(waitFor(120) { (try? c.state(a)) == "completed" })
        #expect(try c.ok("show \(a)")["starts"]?.intValue == 2)
        // The same spec uninterrupted gives identical metrics.
        let b = try c.ok("submit spec=" + spec)["id"]?.stringValue ?? ""
        #expect(waitFor(120) { (try? c.state(b)) == "completed" })
        let ra = metricRows(dir, a).map(withoutTiming), rb = metricRows(dir, b).map(withoutTiming)
        #expect(ra.count == 2)
        #expect(ra == rb)
        d.stop()
    }

    @Test func stopRecordsInterruptedAndRestartResumesOrHolds() throws {
        let dir = makeTempDir("restart")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var d = try TestDaemon(dir: dir)
        var c = try d.client()
        let a = try c.ok("submit spec=" + tinySpec(epochs: 2, seed: 3, everySteps: 3))["id"]?.stringValue ?? ""
        #expect(waitFor { (try? c.ok("show \(a)")["progress"]?["step"]?.intValue ?? 0) ?? 0 >= 4 })
        d.stop()
        let ledger = try String(contentsOfFile: dir + "/state/ledger.jsonl", encoding: .utf8)
        let last = try JSON.parse(String(ledger.split(separator: "\n").last ?? ""))
        #expect(last["run"]?["state"]?.stringValue == "interrupted")
        // With on-start=hold it stays interrupted until resumed.
        d = try TestDaemon(dir: dir) { $0.resumeOnStart = false }
        c = try d.client()
        #expect(try c.state(a) == "interrupted")
        d.stop()
        d = try TestDaemon(dir: dir)
        c = try d.client()
        #expect(waitFor(120) { (try? c.state(a)) == "completed" })
        let show = try c.ok("show \(a)")
        #expect(show["starts"]?.intValue == 2)
        #expect(metricRows(dir, a).count == 2)
        d.stop()
    }

    @Test func forkCheckpointMetricsAndEvents() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        let sub = try d.client()
        let subscribed = try sub.ok("subscribe since=0")
        #expect(subscribed["subscribed"] == .bool(true))
        let a = try c.ok("submit spec=" + tinySpec(epochs: 2, seed: 5, everySteps: 100) + " group=forks")["id"]?.stringValue ?? ""
        // An on-demand checkpoint of the running run.
        #expect(waitFor { (try? c.ok("show \(a)")["progress"]?["step"]?.intValue ?? 0) ?? 0 >= 2 })
        let ck = try c.ok("checkpoint \(a)")
        #expect(ck["checkpoint"]?.stringValue?.hasPrefix("ckpt-") == true)
        #expect(waitFor(120) { (try? c.state(a)) == "completed" })
        let files = try c.ok("show \(a)")["checkpoints"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard let epoch1 = files.first(where: { $0.contains("-e00001-s000000") }) else {
            Issue.record("no epoch-1 checkpoint among \(files)")
            return
        }
        try c.err("fork \(a) checkpoint=nope.pck", .notFound)
        let pruning = #"{"score":"l2","target":"smallest","layers":[{"name":"features.conv3","fraction":0.25,"start":1,"end":1}]}"#
        let f = try c.ok("fork \(a) checkpoint=\(epoch1) pruning=\(pruning) epochs=3")
        let fid = f["id"]?.stringValue ?? ""
        #expect(waitFor(120) { (try? c.state(fid)) == "completed" })
        let shown = try c.ok("show \(fid)")
        #expect(shown["fork_of"]?.stringValue == a)
        #expect(shown["group"]?.stringValue == "forks")
        // The fork continues the source's history: its first epoch is the source's first epoch.
        let src = try c.ok("metrics \(a)")["rows"]?.arrayValue ?? []
        let forked = try c.ok("metrics \(fid)")["rows"]?.arrayValue ?? []
        #expect(forked.count == 3)
        #expect(forked.first.map(withoutTiming) == src.first.map(withoutTiming))
        #expect(try c.ok("metrics \(fid) since=2")["rows"]?.arrayValue?.count == 1)
        let prunes = try c.ok("metrics \(fid) kind=prunes")["rows"]?.arrayValue ?? []
        #expect(prunes.count == 1)
        #expect(prunes.first?["epoch"]?.intValue == 2)
        #expect(prunes.first?["instability"] != nil)
        // Events: ordered sequence numbers, state changes, epochs, the pruning event, checkpoints.
        var seen: [JSON] = []
        #expect(waitFor(30) {
            while seen.last?["type"]?.stringValue != "state" || seen.last?["to"]?.stringValue != "completed" || seen.last?["run"]?.stringValue != fid {
                guard case .event(let e)? = try? sub.reply() else { return false }
                seen.append(e)
            }
            return true
        })
        let seqs = seen.compactMap { $0["seq"]?.intValue }
        #expect(seqs == Array(seqs.sorted()) && Set(seqs).count == seqs.count)
        #expect(seen.contains { $0["type"]?.stringValue == "prune" && $0["run"]?.stringValue == fid })
        #expect(seen.contains { $0["type"]?.stringValue == "epoch" && $0["run"]?.stringValue == a && $0["test_acc"] != nil })
        #expect(seen.contains { $0["type"]?.stringValue == "checkpoint" && $0["run"]?.stringValue == a })
        // Replay after a reconnect: exactly the events after the given sequence number.
        let mid = seqs[seqs.count / 2]
        let again = try d.client()
        _ = try again.ok("subscribe since=\(mid) run=\(fid)")
        var replay: [JSON] = []
        while replay.last?["to"]?.stringValue != "completed" {
            guard case .event(let e) = try again.reply() else { break }
            replay.append(e)
        }
        #expect(replay.allSatisfy { $0["run"]?.stringValue == fid && ($0["seq"]?.intValue ?? 0) > mid })
        #expect(replay.map { $0["seq"] } == seen.filter { $0["run"]?.stringValue == fid && ($0["seq"]?.intValue ?? 0) > mid }.map { $0["seq"] })
        #expect(try again.ok("unsubscribe")["subscribed"] == .bool(false))
    }

    /// failed → (fix the cause) → resume → completed; interrupted → hold → release → completed;
    /// paused → cancel.
    @Test func failedInterruptedAndPausedTransitions() throws {
        let dir = makeTempDir("trans")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        var d = try TestDaemon(dir: dir) { $0.resumeOnStart = false }
        var c = try d.client()
        let a = try c.ok("submit spec=" + tinySpec(epochs: 1) + " dataset.path=\(data)")["id"]?.stringValue ?? ""
        #expect(waitFor { (try? c.state(a)) == "failed" })
        let failed = try c.ok("show \(a)")
        #expect(failed["reason"]?.stringValue?.contains("dataset") == true, "\(failed["reason"] ?? .null)")
        // The dataset appears (say, a mount came back): the same run resumes and completes.
        for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            try FileManager.default.createSymbolicLink(atPath: data + "/" + f, withDestinationPath: fashionMNIST + "/" + f)
        }
        #expect(try c.ok("resume \(a)")["changed"] == .bool(true))
        #expect(waitFor(120) { (try? c.state(a)) == "completed" })
        #expect(try c.ok("show \(a)")["reason"] == .null)
        // interrupted (daemon stopped mid-run, on-start hold) → hold → release → completed.
        let b = try c.ok("submit spec=" + tinySpec(epochs: 2, seed: 4, everySteps: 3))["id"]?.stringValue ?? ""
        #expect(waitFor { (try? c.ok("show \(b)")["progress"]?["step"]?.intValue ?? 0) ?? 0 >= 4 })
        d.stop()
        d = try TestDaemon(dir: dir) { $0.resumeOnStart = false }
        c = try d.client()
        #expect(try c.state(b) == "interrupted")
        #expect(try c.ok("hold \(b)")["state"]?.stringValue == "held")
        #expect(try c.ok("release \(b)")["changed"] == .bool(true))
        #expect(waitFor(120) { (try? c.state(b)) == "completed" })
        // paused → cancelled, without running again.
        let e = try c.ok("submit spec=" + tinySpec(epochs: 3, seed: 5, everySteps: 3))["id"]?.stringValue ?? ""
        #expect(waitFor { (try? c.ok("show \(e)")["progress"]?["step"]?.intValue ?? 0) ?? 0 >= 2 })
        #expect(try c.ok("pause \(e)")["state"]?.stringValue == "paused")
        let cancelled = try c.ok("cancel \(e)")
        #expect(cancelled["state"]?.stringValue == "cancelled" && cancelled["starts"]?.intValue == 1)
        d.stop()
    }

    @Test func drainFinishAndNow() throws {
        let dir = makeTempDir("drain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var d = try TestDaemon(dir: dir)
        var c = try d.client()
        let a = try c.ok("submit spec=" + tinySpec(epochs: 1, seed: 2))["id"]?.stringValue ?? ""
        let b = try c.ok("submit spec=" + tinySpec(epochs: 1, seed: 3))["id"]?.stringValue ?? ""
        #expect(try c.ok("drain")["draining"]?.stringValue == "finish")
        #expect(try c.ok("drain off")["draining"] == .null)
        #expect(try c.ok("drain finish")["draining"]?.stringValue == "finish")
        #expect(d.waitExit(120))
        let ledger = Ledger(path: dir + "/state/ledger.jsonl")
        let runs = try ledger.open().runs
        #expect(runs[RunID(a) ?? RunID(0)]?.state == .completed)
        #expect(runs[RunID(b) ?? RunID(0)]?.state == .queued)
        // drain now: checkpoints the running run and exits; it is interrupted, then resumed.
        d = try TestDaemon(dir: dir)
        c = try d.client()
        #expect(waitFor { (try? c.ok("show \(b)")["progress"]?["step"]?.intValue ?? 0) ?? 0 >= 2 })
        _ = try c.ok("drain now")
        #expect(d.waitExit(120))
        #expect(try Ledger(path: dir + "/state/ledger.jsonl").open().runs[RunID(b) ?? RunID(0)]?.state == .interrupted)
        d = try TestDaemon(dir: dir)
        c = try d.client()
        #expect(waitFor(120) { (try? c.state(b)) == "completed" })
        d.stop()
    }
}

/// Ownership: handlers called directly with peers of other users (a test cannot change its uid).
@Suite(.serialized, .enabled(if: haveFashionMNIST))
struct PermissionTests {
    @Test func onlyOwnersRootOrAdminsChangeRuns() throws {
        let d = try TestDaemon { $0.runs = 1 }
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let alice = Peer(pid: 1, uid: 4001, gid: 4001, name: "alice", admin: false)
        let bob = Peer(pid: 2, uid: 4002, gid: 4002, name: "bob", admin: false)
        let admin = Peer(pid: 3, uid: 4003, gid: 4003, name: "carol", admin: true)
        func reply(_ line: String, _ peer: Peer) throws -> Reply {
            switch d.daemon.handle(try Request.parse(line), peer: peer) {
            case .reply(let r), .close(let r), .unsubscribe(let r), .subscribe(let r, _, _, _): return r
            case .deferred: return .ok(.object([("deferred", .bool(true))]))
            }
        }
        guard case .ok(let sub) = try reply("submit spec=" + tinySpec(epochs: 1) + " hold=true", alice),
              let id = sub["id"]?.stringValue else { Issue.record("submit failed"); return }
        #expect(d.daemon.record(RunID(id)!)?.owner == 4001)
        #expect(d.daemon.record(RunID(id)!)?.ownerName == "alice")
        for line in ["release \(id)", "cancel \(id)", "priority \(id) 3", "set \(id) epochs=2", "hold \(id)", "resume \(id)", "pause \(id)", "checkpoint \(id)"] {
            guard case .error(let e) = try reply(line, bob) else { Issue.record("\(line) by bob succeeded"); continue }
            #expect(e.code == .permissionDenied, "\(line)")
        }
        // Reading is open to everyone who can connect.
        guard case .ok = try reply("show \(id)", bob), case .ok = try reply("metrics \(id)", bob), case .ok = try reply("list", bob) else {
            Issue.record("reads refused"); return
        }
        guard case .error(let e) = try reply("drain", bob) else { Issue.record("drain by bob succeeded"); return }
        #expect(e.code == .permissionDenied)
        guard case .ok(let p) = try reply("priority \(id) 3", admin) else { Issue.record("admin refused"); return }
        #expect(p["priority"]?.intValue == 3)
        guard case .ok(let s) = try reply("set \(id) epochs=2", alice) else { Issue.record("owner refused"); return }
        #expect(s["spec"]?["epochs"]?.intValue == 2)
        guard case .ok(let cancelled) = try reply("cancel \(id)", alice) else { Issue.record("owner cancel refused"); return }
        #expect(cancelled["cancelled_by"]?.intValue == 4001)
    }
}
