// Client-supplied numbers and paths at their boundaries against an in-process daemon over its
// real socket: every numeric argument of every verb and every numeric spec field gets 0, −1,
// 2⁶³−1, 2⁶³, 2⁶⁴−1, 2⁶⁴, ±1e309, −0, NaN, inf, underflow, hex, underscores, huge exponents and
// 18/40-digit numbers; each line gets exactly one reply (OK or ERR with a known code) and the
// daemon lives on. Oversized override paths, override counts, tag lists and JSON nesting are
// refused quickly with the limit named. Submits are held, so nothing trains.
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import Testing
import TestSupport

/// Reads the next reply that is not an EVENT.
private func nextReply(_ c: TestClient) throws -> Reply {
    while true {
        let r = try c.reply()
        if case .event = r { continue }
        return r
    }
}

/// Sends `line` and a `ping` in one write: exactly one reply must come before the pong.
private func exactlyOneReply(_ c: TestClient, _ line: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Reply {
    try c.send(line + "\nping")
    let r = try nextReply(c)
    switch r {
    case .ok: break
    case .error(let e):
        #expect(e.code != .internal, "\(line.prefix(120)) → \(r.rendered.prefix(300))", sourceLocation: sourceLocation)
    case .hello, .event:
        Issue.record("\(line.prefix(120)) → \(r.rendered.prefix(300))", sourceLocation: sourceLocation)
    }
    let pong = try nextReply(c)
    guard case .ok(let j) = pong, j["pong"] == .bool(true) else {
        Issue.record("\(line.prefix(120)) was answered more than once: then \(pong.rendered.prefix(200))", sourceLocation: sourceLocation)
        throw ClientError(description: "replies out of step")
    }
    return r
}

/// A held-able Conv4 spec with pruning, noise and a checkpoint policy, so that every numeric
/// field exists; the dataset directory only has to exist (nothing trains).
private func boundarySpec(_ data: String) -> String {
    #"{"model":"conv4","width":0.25,"dataset":{"kind":"fashion_mnist","path":"\#(data)","train_limit":1024,"test_limit":256},"#
        + #""epochs":40,"batch_size":64,"seed":1,"lr_milestones":[30],"#
        + #""pruning":{"period":9,"layers":[{"name":"features.conv2","fraction":0.1,"start":3,"end":30}]},"#
        + #""noise":{"mode":"iter","kind":"zeroing","batches":129},"checkpoint":{"every_steps":4,"keep_last":3}}"#
}

@Suite struct BoundaryTests {
    static let values: [String] = [
        "0", "-1", "1", "9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616",
        "1e309", "-1e309", "-0", "NaN", "nan", "inf", "1e-400", "0x10", "1_000", "9e999999999", "123456789012345678",
        "1234567890123456789012345678901234567890", "4294967296", "0.5", "100000",
    ]

    /// Every numeric spec field (and the array index in an override path).
    static let specFields: [String] = [
        "width", "epochs", "batch_size", "test_batch_size", "seed", "lr_milestones", "lr_gamma", "optimizer.lr",
        "optimizer.weight_decay", "optimizer.beta1", "optimizer.beta2", "optimizer.eps", "dataset.train_limit",
        "dataset.test_limit", "pruning.period", "pruning.layers.0.fraction", "pruning.layers.0.start", "pruning.layers.0.end",
        "pruning.layers.0.period", "noise.batches", "checkpoint.every_steps", "checkpoint.every_seconds",
        "checkpoint.keep_last", "checkpoint.keep_milestones", "checkpoint.level",
    ]

    @Test func boundaryNumbersInEveryArgumentGetOneReplyEachAndTheDaemonLives() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let data = d.dir + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let spec = boundarySpec(data)
        let c = try d.client()
        let sub = try d.client()
        #expect(try c.ok("submit hold=true spec=" + spec)["id"] == .string("r-0001"))

        var lines: [String] = []
        for v in Self.values {
            for f in Self.specFields {
                lines.append("submit hold=true spec=\(spec) \(f)=\(v)")
                lines.append("submit hold=true spec=\(spec) \(f)=[\(v)]")
            }
            lines += [
                "submit hold=true spec=\(spec) pruning.layers.\(v).fraction=0.5",
                "submit hold=true spec=\(spec) lr_milestones=[1,\(v)]",
                "submit hold=true C4_S_L epochs=\(v) dataset.path=\(data)",
                "submit hold=true F2_VGG_4 epochs=\(v) dataset.path=\(data) width=0.0625",
                "submit hold=true priority=\(v) spec=\(spec)",
                "set r-0001 epochs=\(v)", "set r-0001 pruning.layers.0.end=\(v)", "set r-0001 priority=\(v)", "set \(v) priority=1",
                "fork r-0001 seed=\(v)", "fork r-0001 checkpoint=\(v)", "fork \(v)",
                "metrics r-0001 since=\(v)", "metrics r-0001 kind=prunes since=\(v)", "metrics \(v)",
                "logs r-0001 tail=\(v)", "logs \(v)", "priority r-0001 \(v)", "priority \(v) 5",
                "show \(v)", "hold \(v)", "release \(v)", "pause \(v)", "resume \(v)", "checkpoint \(v)", "cancel \(v)",
                "list owner=\(v)", "list state=\(v)",
            ]
        }
        var answered = 0, accepted = 0
        for line in lines {
            if case .ok = try exactlyOneReply(c, line) { accepted += 1 }
            answered += 1
        }
        #expect(answered == lines.count)
        // In-range values are accepted (so the fields really reach the spec reader), e.g.
        // width=0.5, epochs=100000, seed=0, pruning.layers.0.period=1, checkpoint.level=0.
        #expect(accepted > 50, "only \(accepted) of \(lines.count) lines were accepted")
        // Subscriptions on their own connection (events arrive there from now on).
        for v in Self.values {
            for line in ["subscribe since=\(v)", "subscribe run=\(v)", "subscribe since=\(v) run=r-0001"] {
                _ = try exactlyOneReply(sub, line)
            }
        }
        #expect(try d.client().ok("ping")["pong"] == .bool(true))
        let status = try d.client().ok("status")
        #expect(status["runs"]?["running"]?.intValue == 0, "nothing may start: \(status.rendered.prefix(300))")
    }

    /// `since` is a UInt64 and may be its maximum: adding 1 to it used to trap and kill the daemon.
    @Test func subscribeSinceTheLargestSequenceNumberIsAReset() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        for since in [UInt64.max, UInt64.max - 1, UInt64(Int64.max), UInt64(Int64.max) + 1] {
            let j = try c.ok("subscribe since=\(since)")
            #expect(j["reset"] == .bool(true) && j["lost"]?.intValue == 0, "\(since): \(j.rendered)")
        }
        // The ordinary case is unchanged: since = next_seq − 1 is no reset.
        let next = try #require(try d.client().ok("status")["next_seq"]?.intValue)
        let j = try d.client().ok("subscribe since=\(next - 1)")
        #expect(j["reset"] == .bool(false))
        #expect(try d.client().ok("ping")["pong"] == .bool(true))
    }

    /// Override paths of 100,000 segments, 20,000 overrides, 20,000 tags and 100,000 nested
    /// arrays (on a daemon that takes 1 MiB lines, so the parser sees them whole) are refused in
    /// well under a second each, with the limit in the message. Applying the deep path used to
    /// recurse once per segment on the control thread, with quadratic copying.
    @Test func oversizedPathsCountsAndNestingAreRefusedQuickly() throws {
        let d = try TestDaemon(tweak: { $0.maxLineBytes = 1 << 20 })
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let data = d.dir + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let c = try d.client()
        let deepPath = Array(repeating: "a", count: 100_000).joined(separator: ".")
        let cases: [(String, String)] = [
            ("submit C4_0 hold=true \(deepPath)=1", "has 100000 segments; at most 8"),
            ("set r-0001 \(deepPath)=1", "has 100000 segments; at most 8"),
            ("fork r-0001 \(deepPath)=1", "has 100000 segments; at most 8"),
            ("submit C4_0 hold=true a.b.c.d.e.f.g.h.i=1", "has 9 segments; at most 8"),
            ("submit C4_0 hold=true \(String(repeating: "k", count: 300))=1", "is 300 bytes long; at most 256"),
            ("submit C4_0 hold=true " + (0 ..< 20_000).map { "k\($0)=1" }.joined(separator: " "), "more than 64 spec overrides"),
            ("submit C4_0 hold=true " + (0 ..< 20_000).map { "tag=t\($0)" }.joined(separator: " "), "at most 64 per run"),
            ("submit C4_0 hold=true x=" + String(repeating: "[", count: 17) + String(repeating: "]", count: 17), "at most 16"),
            ("submit hold=true spec=" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000),
             "nesting deeper than 64 levels"),
            ("submit hold=true spec={\"a\":" + String(repeating: "{\"a\":", count: 100_000) + "1" + String(repeating: "}", count: 100_001),
             "nesting deeper than 64 levels"),
        ]
        for (line, message) in cases {
            let start = Date()
            let r = try exactlyOneReply(c, line)
            let seconds = Date().timeIntervalSince(start)
            guard case .error(let e) = r else { Issue.record("\(line.prefix(60))… accepted"); continue }
            #expect(e.code == .badArgument && e.message.contains(message), "\(line.prefix(60))… → \(e)")
            #expect(e.message.utf8.count < 300, "the message quotes the input whole: \(e.message.prefix(300))")
            #expect(seconds < 2, "\(line.prefix(60))… took \(seconds) s")
        }
        // The longest allowed path still reaches the spec (and is refused there, by name).
        let e = try c.err("submit C4_0 hold=true dataset.path=\(data) a.b.c.d.e.f.g.h=1", .badSpec)
        #expect(e.contains("'a'") && e.contains("unknown key"), "\(e)")
        #expect(try c.ok("ping")["pong"] == .bool(true))
    }

    /// A ledger line with a uid out of UInt32's range used to trap on replay (UInt32(Int)); it is
    /// now an unreadable line: skipped with a note, the run's previous record kept.
    @Test func ledgerUIDsOutOfRangeAreUnreadableLinesNotTraps() throws {
        let dir = makeTempDir("ledger-uid")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ledger.jsonl"
        let l = Ledger(path: path)
        _ = try l.open()
        let good = RunRecord(id: RunID(1), state: .queued, owner: 1000, ownerName: "alice", order: 1,
                             spec: .object([("model", .string("conv4")), ("epochs", .number(2))]), epochs: 2, created: 1)
        try l.append(good, time: 1)
        let bad: [(String, JSON)] = [("owner", .number(-1)), ("owner", .number(4_294_967_296)), ("owner", .number(1e20)),
                                     ("owner", .number(0.5)), ("owner", .string("root")), ("cancelled_by", .number(-1)),
                                     ("cancelled_by", .number(9.2e18)), ("cancelled_by", .number(4_294_967_296))]
        for (field, value) in bad {
            guard case .object(var pairs) = good.json else { Issue.record("record is not an object"); return }
            if let i = pairs.firstIndex(where: { $0.0 == field }) { pairs[i].1 = value } else { pairs.append((field, value)) }
            #expect(throws: DaemonError.self, "\(field)=\(value.rendered)") { try RunRecord(json: .object(pairs)) }
            try appendRaw(JSON.object([("v", .number(1)), ("time", .number(2)), ("run", .object(pairs))]).rendered + "\n", to: path)
        }
        let replay = try Ledger(path: path).open()
        #expect(replay.runs[RunID(1)] == good)
        #expect(replay.notes.count == bad.count && replay.notes.allSatisfy { $0.contains("a uid is an integer in 0…4294967295") },
                "\(replay.notes)")
        // The largest uid is fine.
        var top = good
        top.owner = UInt32.max
        top.cancelledBy = UInt32.max
        #expect(try RunRecord(json: top.json) == top)
    }
}
