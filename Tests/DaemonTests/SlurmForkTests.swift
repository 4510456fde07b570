// A fork runs where its source ran: a fork of a Slurm run is a Slurm run with the source's
// Slurm options (not its batch) under the request's own; `executor=local` (or another
// `slurm.*` value) overrides that. Both the rule and the protocol that carries the overrides.
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import Testing

@Suite struct SlurmForkTests {
    private func source(_ executor: Executor) throws -> RunRecord {
        var r = RunRecord(id: RunID(1), state: .completed, owner: getuid(), ownerName: "me", order: 1, spec: .object([]), epochs: 2, created: 0)
        r.executor = executor
        if executor == .slurm {
            var o = SlurmOptions()
            try o.set("partition", "main")
            try o.set("time", "30")
            try o.set("cpus_per_task", "2")
            try o.set("batch", "prunectl-0a0b0c0d")
            r.slurm = SlurmRun(options: o)
        }
        return r
    }

    @Test func aForkTakesItsSourcesExecutorAndSlurmOptions() throws {
        let slurm = try source(.slurm)
        // Nothing said: a Slurm fork with the source's options, submitted alone (no batch).
        let plain = Daemon.forkExecutor(RunEdits(), source: slurm)
        #expect(plain.executor == .slurm)
        #expect(plain.slurm?.partition == "main" && plain.slurm?.time == "30" && plain.slurm?.cpusPerTask == 2 && plain.slurm?.batch == nil)
        // An option of the request wins over the source's; the others stay the source's.
        guard case .fork(_, _, let e) = try Request.parse("fork r-0001 slurm.time=5 slurm.mem=2G") else {
            Issue.record("not a fork")
            return
        }
        let over = Daemon.forkExecutor(e, source: slurm)
        #expect(over.executor == .slurm && over.slurm?.time == "5" && over.slurm?.mem == "2G" && over.slurm?.partition == "main")
        // executor=local: a local fork without Slurm options.
        guard case .fork(_, _, let l) = try Request.parse("fork r-0001 executor=local") else {
            Issue.record("not a fork")
            return
        }
        let local = Daemon.forkExecutor(l, source: slurm)
        #expect(local.executor == .local)
        // A local source forks locally even when the daemon's default is Slurm; executor=slurm moves it.
        #expect(Daemon.forkExecutor(RunEdits(), source: try source(.local)).executor == .local)
        guard case .fork(_, _, let s) = try Request.parse("fork r-0001 executor=slurm slurm.partition=urgent") else {
            Issue.record("not a fork")
            return
        }
        let moved = Daemon.forkExecutor(s, source: try source(.local))
        #expect(moved.executor == .slurm && moved.slurm?.partition == "urgent")
    }

    @Test func forkRequestsCarryExecutorAndSlurmOptions() throws {
        guard case .fork(let id, let ck, let e) = try Request.parse("fork r-0002 checkpoint=c.pck executor=slurm slurm.partition=p hold=true") else {
            Issue.record("not a fork")
            return
        }
        #expect(id == RunID(2) && ck == "c.pck" && e.executor == .slurm && e.slurm?.partition == "p" && e.hold == true)
        #expect(throws: ProtocolError.self) { try Request.parse("fork r-0002 executor=local slurm.time=5") }
        #expect(throws: ProtocolError.self) { try Request.parse("fork r-0002 executor=cloud") }
    }
}
