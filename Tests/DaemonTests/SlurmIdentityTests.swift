// The daemon submits Slurm jobs only as its own user: a peer of another uid is refused a Slurm
// submission (explicit executor=slurm, or the daemon's default executor) with the documented
// message, over the real socket of a real in-process daemon, the client running as uid 65534.
import Control
@testable import Daemon
import Foundation
import Testing
import TestSupport

@Suite(.serialized)
struct SlurmIdentityTests {
    private let refusal = "ERR PERMISSION_DENIED the daemon submits Slurm jobs as its own user (\(ControlServer.userName(getuid()))); "
        + "run a user-mode daemon (`pruned daemon` as yourself on the login node) to submit Slurm runs as nobody"

    @Test(.enabled(if: canActAsOtherUsers && haveFashionMNIST && getuid() != 65534))
    func anotherUidIsRefusedASlurmSubmission() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        #expect(chmod(d.socketPath, 0o666) == 0)
        let spec = "submit spec=" + tinySpec(epochs: 1) + " hold=true"
        #expect(try requestAsNobody(d.socketPath, spec + " executor=slurm") == refusal)
        #expect(try requestAsNobody(d.socketPath, spec + " slurm.partition=main") == refusal)
        #expect(try d.client().ok("list")["count"]?.intValue == 0, "a refused submission recorded a run")
        // The same peer may still run locally.
        let local = try requestAsNobody(d.socketPath, spec + " executor=local")
        #expect(local.hasPrefix("OK ") && local.contains("\"state\":\"held\""), "\(local)")
        #expect(try d.client().ok("show r-0001")["executor"] == nil, "a local run has no executor field")
    }

    @Test(.enabled(if: canActAsOtherUsers && haveFashionMNIST && getuid() != 65534))
    func theDaemonsDefaultExecutorSlurmIsRefusedToo() throws {
        let d = try TestDaemon { $0.executor = .slurm }
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        #expect(chmod(d.socketPath, 0o666) == 0)
        #expect(try requestAsNobody(d.socketPath, "submit spec=" + tinySpec(epochs: 1) + " hold=true") == refusal)
        #expect(try d.client().ok("list")["count"]?.intValue == 0)
    }
}
