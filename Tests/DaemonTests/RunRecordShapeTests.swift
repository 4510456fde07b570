// The daemon's replies decoded with the typed payloads of Control: a run record has one shape
// (list, submit's `run` and status's `running` are show's record in the short form), and
// decoding a reply loses nothing (encoding the decoded value gives the reply back).
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: haveFashionMNIST))
struct RunRecordShapeTests {
    @Test func everyReplyCarriesTheOneRunRecordShape() throws {
        // An hour between Slurm polls: the executor looks once at start and leaves the held Slurm
        // run below alone.
        let d = try TestDaemon { $0.slurmPollInterval = 3600 }
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        let submitted = try SubmitReply(json: c.ok("submit spec=" + tinySpec() + " group=shape tag=a hold=true"))
        #expect(submitted.state == .held && submitted.run.details == nil)
        var slurm = RunRecord(id: RunID(2), state: .held, owner: getuid(), ownerName: "me", order: 2,
                              spec: .object([("epochs", .number(4))]), epochs: 4, created: 0)
        slurm.executor = .slurm
        var job = SlurmRun(options: SlurmOptions())
        job.jobID = "12"
        job.arrayIndex = 1
        slurm.slurm = job
        try d.daemon.lock.withLock { try d.daemon.commitLocked(slurm) }

        let listed = try RunList(json: c.ok("list"))
        #expect(listed.runs.map(\.id) == [submitted.id, RunID(2)])
        #expect(listed.runs.first == submitted.run)
        #expect(listed.runs.last?.executor == .slurm && listed.runs.last?.slurm?.taskID == "12_1")
        for short in listed.runs {
            let reply = try c.ok("show \(short.id)")
            let shown = try RunInfo(json: reply)
            #expect(shown.json == reply, "decoding show's reply loses nothing")
            #expect(shown.details != nil && shown.shown != nil && short.details == nil && short.shown == nil)
            #expect(shown.short == short, "list's record is show's in the short form")
        }
        // The replies of state-changing requests: the full record with `changed`.
        let held = try RunInfo(json: c.ok("hold \(submitted.id)"))
        #expect(held.changed == false && held.details?.spec["epochs"]?.intValue == 2)
        let status = try DaemonStatus(json: c.ok("status"))
        #expect(status.runs[.held] == 2 && status.slurmRuns?[.held] == 1 && status.running.isEmpty)
        #expect(status.daemon == ProtocolInfo.softwareVersion && status.protocolVersion == ProtocolInfo.version)
    }
}
