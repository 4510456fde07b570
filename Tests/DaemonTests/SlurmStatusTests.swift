// Slurm runs in the daemon's overview: `status` (its counts, its `running` list and the one-line
// STATUS= text systemd shows) counts them, and `prunectl show` prints their Slurm fields. Local
// runs' output stays as it was (the golden transcripts check that too).
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import Testing
import TestSupport

/// A Slurm run record as the executor leaves it while its task runs.
private func slurmRecord(_ n: Int, state: RunState, active: Bool = true) -> RunRecord {
    var r = RunRecord(id: RunID(n), state: state, owner: getuid(), ownerName: "me", order: n, spec: .object([]), epochs: 4, created: 0)
    r.executor = .slurm
    var s = SlurmRun(options: SlurmOptions())
    s.jobID = "12"
    s.arrayIndex = n - 1
    s.node = state == .running ? "node7" : nil
    s.state = state == .running ? "RUNNING" : "PENDING"
    s.active = active
    s.restarts = 2
    s.submitAttempts = 1
    r.slurm = s
    r.epochsDone = 1
    r.step = 3
    r.stepsPerEpoch = 10
    return r
}

@Suite(.serialized)
struct SlurmStatusTests {
    @Test func statusCountsSlurmRuns() throws {
        let dir = makeTempDir("slurm-status")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try Daemon(configuration: DaemonConfiguration(stateDirectory: dir + "/state"), logger: Logger(journal: false, capture: true, echo: false))
        let local = RunRecord(id: RunID(1), state: .queued, owner: getuid(), ownerName: "me", order: 1, spec: .object([]), epochs: 4, created: 0)
        d.lock.withLock { d.runs[local.id] = local }
        // Local runs only: the line and the JSON as before.
        #expect(d.lock.withLock { d.statusLineLocked() } == "1 queued")
        #expect(d.status().slurmRuns == nil)
        #expect(d.status().json["slurm_runs"] == nil)
        d.lock.withLock {
            for r in [slurmRecord(2, state: .running), slurmRecord(3, state: .queued)] { d.runs[r.id] = r }
        }
        #expect(d.lock.withLock { d.statusLineLocked() }
            == "1 running (1 on Slurm), 2 queued (1 on Slurm); r-0002 epoch 2/4 step 3/10 in Slurm task 12_1 on node7")
        let j = d.status().json
        #expect(j["runs"]?["running"]?.intValue == 1 && j["runs"]?["queued"]?.intValue == 2)
        #expect(j["slurm_runs"]?["running"]?.intValue == 1 && j["slurm_runs"]?["queued"]?.intValue == 1 && j["slurm_runs"]?["completed"]?.intValue == 0)
        // What a client decodes: the same counts, and the running Slurm run in the short form.
        let st = try DaemonStatus(json: j)
        #expect(st.runs[.running] == 1 && st.runs[.queued] == 2 && st.slurmRuns?[.queued] == 1 && st.slurmRuns?[.completed] == 0)
        #expect(st.running.map(\.id) == [RunID(2)] && st.running.first?.slurm?.taskID == "12_1" && st.running.first?.details == nil)
        #expect(st.status.hasPrefix("1 running (1 on Slurm)"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: prunectlBinary)))
    func prunectlShowPrintsTheSlurmFields() throws {
        // An hour between polls: the executor looks once at start (no Slurm runs yet) and then
        // leaves the record below alone.
        let d = try TestDaemon { $0.slurmPollInterval = 3600 }
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        try d.daemon.lock.withLock {
            try d.daemon.commitLocked(slurmRecord(1, state: .running, active: false))
            try d.daemon.commitLocked(RunRecord(id: RunID(2), state: .held, owner: getuid(), ownerName: "me", order: 2, spec: .object([]),
                                                epochs: 4, created: 0))
        }
        let slurm = try prunectl(d.socketPath, ["show", "r-0001"])
        #expect(slurm.status == 0, "\(slurm.err)")
        #expect(slurm.lines.contains("  Slurm job 12, array index 0, node node7, state RUNNING, restarts 2, submissions 1"), "\(slurm.out)")
        #expect(slurm.lines.contains { $0.hasPrefix("  Slurm: ") }, "\(slurm.out)")
        let local = try prunectl(d.socketPath, ["show", "r-0002"])
        #expect(local.status == 0 && !local.out.contains("Slurm"), "\(local.out)")
    }
}
