// Forks do their slow work away from the control loop and the daemon's lock: the source
// checkpoint is verified on a thread of its own and shared through a hard link instead of
// copied (checkpoint files never change once written). A checkpoint that does not verify is
// refused without consuming a run id or leaving a directory behind; replies stay in order.
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import Testing
import TestSupport

@Suite struct ForkTests {
    @Test(.enabled(if: haveFashionMNIST)) func aForkLinksItsCheckpointAndRefusesADamagedOne() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        let a = try c.ok("submit spec=" + tinySpec(epochs: 1, seed: 3, everySteps: 100))["id"]?.stringValue ?? ""
        #expect(try waitFor(180) { try c.state(a) == "completed" })
        let files = try c.ok("show \(a)")["checkpoints"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard let last = files.last, let id = RunID(a) else {
            Issue.record("no checkpoint in \(files)")
            return
        }
        let source = d.daemon.runDirectory(id).checkpoint(last)

        // Pipelined: the fork's deferred reply comes before the ping's.
        try c.send("fork \(a) hold=true\nping")
        guard case .ok(let forked) = try c.reply() else { Issue.record("fork refused"); return }
        guard case .ok(let pong) = try c.reply(), pong["pong"] == .bool(true) else { Issue.record("ping out of order"); return }
        let fid = forked["id"]?.stringValue ?? ""
        guard let fidNumber = RunID(fid) else { Issue.record("no fork id in \(forked.rendered)"); return }
        var s1 = stat(), s2 = stat()
        #expect(stat(source, &s1) == 0 && stat(d.daemon.runDirectory(fidNumber).checkpoint(last), &s2) == 0)
        #expect(s1.st_ino == s2.st_ino && s2.st_nlink >= 2, "the fork shares the source's checkpoint file instead of copying it")
        #expect(try c.ok("show \(fid)")["last_checkpoint"]?.stringValue == last)

        // A damaged checkpoint (one flipped byte in the middle) is refused after verification.
        var bytes = [UInt8](FileManager.default.contents(atPath: source) ?? Data())
        bytes[bytes.count / 2] ^= 0x55
        let damaged = "ckpt-99999999-e00001-s000000.pck"
        #expect(FileManager.default.createFile(atPath: d.daemon.runDirectory(id).checkpoint(damaged), contents: Data(bytes)))
        let before = try c.ok("list")["count"]?.intValue
        let message = try c.err("fork \(a) checkpoint=\(damaged)", .badState)
        #expect(message.contains("does not verify"))
        #expect(try c.ok("list")["count"]?.intValue == before)
        // No id was consumed and no directory left behind: the next run is the next number.
        let next = try c.ok("submit spec=" + tinySpec(epochs: 1) + " hold=true")["id"]?.stringValue
        #expect(next == RunID(fidNumber.number + 1).description)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: d.daemon.config.runsDirectory)) ?? []
        #expect(entries.sorted() == [a, fid, next ?? ""].sorted())
    }
}
