// A damaged or lost ledger never costs data: a flipped byte is detected by the line's CRC32,
// run ids are never reused (the next id is above every id in the ledger and under runs/), an
// existing run directory is never deleted or overwritten by a new run, and run directories the
// ledger does not know are recovered from their own files, loudly.
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import RunLayout
import Testing
import TestSupport

/// Every regular file under `dir` with its bytes, to prove nothing was changed.
func snapshotFiles(_ dir: String) -> [String: Data] {
    var out: [String: Data] = [:]
    let fm = FileManager.default
    guard let walker = fm.enumerator(atPath: dir) else { return out }
    while let rel = walker.nextObject() as? String {
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: dir + "/" + rel, isDirectory: &isDir), !isDir.boolValue {
            out[rel] = fm.contents(atPath: dir + "/" + rel)
        }
    }
    return out
}

@Suite(.serialized) struct LostLedgerTests {
    @Test func aFlippedByteIsDetectedNotBelieved() throws {
        let dir = makeTempDir("ledger-crc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ledger.jsonl"
        let l = Ledger(path: path)
        _ = try l.open()
        var r = RunRecord(id: RunID(1), state: .queued, owner: 1000, ownerName: "alice", order: 1,
                          spec: .object([("model", .string("conv4")), ("epochs", .number(2))]), epochs: 2, created: 1)
        try l.append(r, time: 1)
        r.state = .held
        try l.append(r, time: 2)
        // One digit of the second line changes: still valid JSON, so only a checksum can tell.
        var text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 2 && lines.allSatisfy { $0.hasPrefix(#"{"crc":""#) })
        let altered = lines[1].replacingOccurrences(of: #""priority":0"#, with: #""priority":9"#)
        #expect(altered != lines[1])
        text = lines[0] + "\n" + altered + "\n"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        let replay = try Ledger(path: path).open()
        #expect(replay.runs[RunID(1)]?.state == .queued, "the altered line must not be believed; the previous record stands")
        #expect(replay.runs[RunID(1)]?.priority == 0)
        #expect(replay.notes.contains { $0.contains("line 2") && $0.contains("checksum mismatch") })
    }

    @Test func earlierLinesWithoutAChecksumAreStillRead() throws {
        let dir = makeTempDir("ledger-v1")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ledger.jsonl"
        let v1 = #"{"v":1,"time":1,"run":{"id":"r-0004","state":"held","owner":1000,"owner_name":"alice","order":4,"spec":{"model":"conv4","epochs":3}}}"#
        try (v1 + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        let replay = try Ledger(path: path).open()
        #expect(replay.runs[RunID(4)]?.state == .held)
        #expect(replay.uncheckedLines == 1 && replay.notes.isEmpty)
    }

    /// A completed run and a held one; then the ledger is deleted, emptied, or cut in half
    /// before each restart. Every time: both runs come back from their directories, their files
    /// are untouched, and a new submission gets an id never used before.
    @Test(.enabled(if: haveFashionMNIST)) func aLostLedgerNeverReusesIdsOrDeletesRuns() throws {
        let dir = makeTempDir("lost-ledger")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var d = try TestDaemon(dir: dir)
        let c = try d.client()
        let done = try c.ok("submit spec=\(tinySpec(epochs: 1)) group=g tag=a,b priority=3")["id"]?.stringValue ?? ""
        let held = try c.ok("submit spec=\(tinySpec(epochs: 1, seed: 2)) hold=true")["id"]?.stringValue ?? ""
        #expect(done == "r-0001" && held == "r-0002")
        #expect(try waitFor(240) { try c.state(done) == "completed" })
        d.stop()
        let runs = dir + "/state/runs"
        let before = [done: snapshotFiles(runs + "/" + done), held: snapshotFiles(runs + "/" + held)]
        #expect(before[done]?.keys.contains("summary.json") == true)
        #expect(before[done]?.keys.contains { $0.hasPrefix("checkpoints/ckpt-") } == true)

        let ledger = dir + "/state/ledger.jsonl"
        let damage: [(String, () throws -> Void)] = [
            ("deleted", { try FileManager.default.removeItem(atPath: ledger) }),
            ("emptied", { #expect(truncate(ledger, 0) == 0) }),
            ("cut in half", {
                let size = (try FileManager.default.attributesOfItem(atPath: ledger)[.size] as? Int) ?? 0
                #expect(truncate(ledger, off_t(size / 2)) == 0)
            }),
        ]
        var expectedNext = 3
        for (how, harm) in damage {
            try harm()
            d = try TestDaemon(dir: dir)
            let c2 = try d.client()
            let shownDone = try c2.ok("show \(done)")
            #expect(shownDone["state"]?.stringValue == "completed", "ledger \(how)")
            #expect(shownDone["group"]?.stringValue == "g" && shownDone["priority"]?.intValue == 3, "ledger \(how): origin.json restores group and priority")
            #expect(shownDone["tags"]?.arrayValue?.compactMap(\.stringValue) == ["a", "b"], "ledger \(how)")
            let shownHeld = try c2.ok("show \(held)")
            if how == "cut in half" {
                // The first half of the ledger may still hold its record; either way it is there.
                #expect(["held", "interrupted"].contains(shownHeld["state"]?.stringValue ?? ""), "ledger \(how)")
            } else {
                #expect(shownHeld["state"]?.stringValue == "interrupted", "ledger \(how): recovered runs wait for resume")
                #expect(shownHeld["reason"]?.stringValue?.contains("recovered from its run directory") == true)
                #expect(d.daemon.logger.capturedLines.contains { $0.contains("THE LEDGER HAD NO RECORD") && $0.contains(held) }, "ledger \(how): said loudly")
            }
            let fresh = try c2.ok("submit spec=\(tinySpec(epochs: 1, seed: 9)) hold=true")["id"]?.stringValue ?? ""
            #expect(fresh == RunID(expectedNext).description, "ledger \(how): a new run gets a new id")
            expectedNext += 1
            d.stop()
            #expect(snapshotFiles(runs + "/" + done) == before[done], "ledger \(how): the completed run's files are untouched")
            #expect(snapshotFiles(runs + "/" + held) == before[held], "ledger \(how): the held run's files are untouched")
        }
        // The recovered ledger is whole again: a clean restart needs no recovery.
        d = try TestDaemon(dir: dir)
        #expect(!d.daemon.logger.capturedLines.contains { $0.contains("THE LEDGER HAD NO RECORD") })
        #expect(try d.client().ok("list")["count"]?.intValue == 5)
        d.stop()
    }

    /// A directory that is not the daemon's (no spec.json) is never recovered, deleted or reused,
    /// whether it was there at start or appears while the daemon runs.
    @Test(.enabled(if: haveFashionMNIST)) func anExistingDirectoryIsNeverTouched() throws {
        let dir = makeTempDir("foreign-dir")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let runs = dir + "/state/runs"
        try FileManager.default.createDirectory(atPath: runs + "/r-0001", withIntermediateDirectories: true)
        try "mine".write(toFile: runs + "/r-0001/keep.txt", atomically: false, encoding: .utf8)
        let d = try TestDaemon(dir: dir)
        defer { d.stop() }
        #expect(d.daemon.logger.capturedLines.contains { $0.contains("r-0001") && $0.contains("cannot be recovered") })
        let c = try d.client()
        #expect(try c.ok("submit spec=\(tinySpec(epochs: 1)) hold=true")["id"]?.stringValue == "r-0002")
        // Appears while the daemon runs, at the id it would use next.
        try FileManager.default.createDirectory(atPath: runs + "/r-0003", withIntermediateDirectories: true)
        try "also mine".write(toFile: runs + "/r-0003/keep.txt", atomically: false, encoding: .utf8)
        #expect(try c.ok("submit spec=\(tinySpec(epochs: 1)) hold=true")["id"]?.stringValue == "r-0004")
        #expect(snapshotFiles(runs + "/r-0001") == ["keep.txt": Data("mine".utf8)])
        #expect(snapshotFiles(runs + "/r-0003") == ["keep.txt": Data("also mine".utf8)])
        #expect(try c.ok("list")["count"]?.intValue == 2)
    }
}
