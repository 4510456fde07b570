// Runs that cannot honestly complete are recorded failed with a reason that says why: a run whose
// loss becomes NaN, and a run whose final checkpoint cannot be written (which `resume` then
// completes once the directory is writable again).
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import Testing
import TestSupport

@Suite(.serialized, .enabled(if: haveFashionMNIST))
struct RunFailureTests {
    /// SGD at lr 5 with momentum on tiny Conv4: the loss is NaN within the first epoch.
    @Test func divergedRunIsFailedWithItsReason() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        let spec = tinySpec(epochs: 3, extra: #","optimizer":{"kind":"sgd","lr":5,"momentum":0.9}"#)
        let id = try c.ok("submit spec=" + spec)["id"]?.stringValue ?? ""
        #expect(waitFor(120) { (try? c.state(id)) == "failed" })
        let shown = try c.ok("show \(id)")
        let reason = shown["reason"]?.stringValue ?? ""
        #expect(reason.hasPrefix("diverged at epoch 1, step ") && reason.hasSuffix(" of 16: loss is NaN"), "\(reason)")
        #expect(shown["summary"] == nil || shown["summary"] == .null)
        let dir = try #require(RunID(id).map { d.daemon.runDirectory($0).path })
        #expect(!FileManager.default.fileExists(atPath: dir + "/summary.json"))
        let log = (try? String(contentsOfFile: dir + "/run.log", encoding: .utf8)) ?? ""
        #expect(log.contains("failed: diverged at epoch 1"), "\(log.suffix(400))")
        #expect(!log.contains("acc 100.00%"))
    }

    /// The run's checkpoints directory is a plain file from the start: every checkpoint fails,
    /// the final one after its retries, so the run ends failed (not completed) with the reason.
    /// With the directory restored, `resume` completes it with a final checkpoint.
    @Test func unwritableFinalCheckpointFailsTheRunAndResumeCompletesIt() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        let id = try c.ok("submit spec=" + tinySpec(epochs: 1) + " hold=true")["id"]?.stringValue ?? ""
        let dir = try #require(RunID(id).map { d.daemon.runDirectory($0).path })
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: dir + "/checkpoints")
        #expect(FileManager.default.createFile(atPath: dir + "/checkpoints", contents: Data("not a directory".utf8)))
        #expect(try c.ok("release \(id)")["changed"] == .bool(true))
        #expect(waitFor(120) { (try? c.state(id)) == "failed" })
        let reason = try c.ok("show \(id)")["reason"]?.stringValue ?? ""
        #expect(reason.hasPrefix("the final checkpoint could not be written: ")
                && reason.hasSuffix("; the run is not complete — `resume` it once the disk has space"), "\(reason)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/summary.json"))
        // Writable again: resume runs it to completion, with its final checkpoint.
        try FileManager.default.removeItem(atPath: dir + "/checkpoints")
        try FileManager.default.createDirectory(atPath: dir + "/checkpoints", withIntermediateDirectories: false)
        #expect(try c.ok("resume \(id)")["changed"] == .bool(true))
        #expect(waitFor(120) { (try? c.state(id)) == "completed" })
        let shown = try c.ok("show \(id)")
        #expect(shown["reason"] == nil || shown["reason"] == .null)
        #expect(shown["last_checkpoint"]?.stringValue?.contains("e00001-s000000") == true, "\(shown["last_checkpoint"] ?? .null)")
        #expect(FileManager.default.fileExists(atPath: dir + "/summary.json"))
    }
}
