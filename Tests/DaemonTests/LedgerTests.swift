// The run ledger on its own: append + replay, a torn last line (the daemon died mid-append)
// dropped and truncated away, an unreadable middle line skipped with a note, compaction, and a
// daemon starting on a torn ledger with every acknowledged run intact.
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import Testing
import TestSupport

/// Appends bytes as they are (a torn or damaged line), without the ledger's framing.
func appendRaw(_ text: String, to path: String) throws {
    let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    h.seekToEndOfFile()
    h.write(Data(text.utf8))
    try h.close()
}

@Suite struct LedgerTests {
    func record(_ n: Int, _ state: RunState = .queued, priority: Int = 0) -> RunRecord {
        var r = RunRecord(id: RunID(n), state: state, owner: 1000, ownerName: "alice", order: n,
                          spec: .object([("model", .string("conv4")), ("epochs", .number(2))]), epochs: 2, created: 1)
        r.priority = priority
        return r
    }

    /// A pending stop is typed in memory and the same string in the ledger's JSON.
    @Test func pendingStopRoundTrips() throws {
        for pending in [PendingStop.pause, .cancel] {
            var r = record(1, .running)
            r.pending = pending
            #expect(r.json["pending"] == .string(pending.rawValue))
            #expect(try RunRecord(json: r.json).pending == pending)
        }
        #expect(record(1).json["pending"] == .null)
        #expect(try RunRecord(json: record(1).json).pending == nil)
    }

    @Test func tornTailIsDroppedAndTruncated() throws {
        let dir = makeTempDir("ledger")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ledger.jsonl"
        let l = Ledger(path: path)
        _ = try l.open()
        try l.append(record(1), time: 1)
        try l.append(record(2), time: 2)
        try l.append(record(1, .held), time: 3)
        let goodSize = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        // The daemon died in the middle of appending a line.
        try appendRaw(#"{"v":1,"time":4,"run":{"id":"r-0003","sta"#, to: path)
        let l2 = Ledger(path: path)
        let replay = try l2.open()
        #expect(replay.runs.count == 2)
        #expect(replay.runs[RunID(1)]?.state == .held)
        #expect(replay.runs[RunID(2)]?.state == .queued)
        #expect(replay.notes.contains { $0.contains("torn") })
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == goodSize)
        // Appends continue on a clean line boundary.
        try l2.append(record(3), time: 5)
        let again = try Ledger(path: path).open()
        #expect(again.runs.count == 3 && again.notes.isEmpty)
    }

    @Test func unreadableLineIsSkippedWithANote() throws {
        let dir = makeTempDir("ledger")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ledger.jsonl"
        let l = Ledger(path: path)
        _ = try l.open()
        try l.append(record(1), time: 1)
        try appendRaw("this is not json\n{\"v\":1,\"run\":{\"id\":\"bogus\"}}\n", to: path)
        let l2 = Ledger(path: path)
        _ = try l2.open()
        try l2.append(record(2, priority: 5), time: 2)
        let replay = try Ledger(path: path).open()
        #expect(replay.runs.count == 2)
        #expect(replay.runs[RunID(2)]?.priority == 5)
        #expect(replay.notes.count == 2)
        #expect(replay.notes.allSatisfy { $0.contains("unreadable") })
    }

    @Test func compactionKeepsTheLastRecordOfEachRun() throws {
        let dir = makeTempDir("ledger")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ledger.jsonl"
        let l = Ledger(path: path)
        _ = try l.open()
        for p in 0 ..< 50 { try l.append(record(1, priority: p), time: Double(p)) }
        try l.append(record(2, .paused), time: 60)
        let before = try l.open().runs
        try l.compact(Array(before.values), time: 70)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 2)
        try l.append(record(3), time: 80)
        let after = try Ledger(path: path).open().runs
        #expect(after.count == 3)
        #expect(after[RunID(1)]?.priority == 49)
        #expect(after[RunID(2)]?.state == .paused)
        #expect(after[RunID(1)] == before[RunID(1)])
    }

    @Test func aDaemonStartsOnATornLedgerWithEveryAcknowledgedRun() throws {
        let dir = makeTempDir("ledgerd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var d: TestDaemon? = try TestDaemon(dir: dir)
        let c = try d!.client()
        for _ in 0 ..< 3 { _ = try c.ok("submit hold=true spec=" + tinySpec() + " dataset.path=/tmp") }
        d?.stop()
        d = nil
        let path = dir + "/state/ledger.jsonl"
        try appendRaw(#"{"v":1,"time":9,"run":{"id":"r-0004""#, to: path)
        let d2 = try TestDaemon(dir: dir)
        defer { d2.stop() }
        let c2 = try d2.client()
        #expect(try c2.ok("list")["count"]?.intValue == 3)
        #expect(try c2.ok("submit hold=true spec=" + tinySpec() + " dataset.path=/tmp")["id"]?.stringValue == "r-0004")
        #expect(d2.daemon.logger.capturedLines.contains { $0.contains("torn") })
    }
}
