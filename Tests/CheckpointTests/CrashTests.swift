// The real `pruned` binary on real Fashion-MNIST: a run killed by the writer's crash hook
// between fsync and rename, by `kill -9` at an arbitrary moment and stopped by SIGTERM, then
// resumed, ends bit-identical to an uninterrupted run. Needs `.build/debug/pruned` (swift build).
import Checkpointing
import Foundation
import PrunedJSON
import Testing
import TestSupport

@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: prunedBinary) && FileManager.default.fileExists(atPath: fashionMNIST)))
struct CrashTests {
    let spec = #"""
    {"model": "vgg11_bn", "width": 0.125, "dataset": {"kind": "fashion_mnist", "path": "/usr/share/datasets/fashion-mnist",
     "train_limit": 256, "test_limit": 128}, "epochs": 4, "batch_size": 64, "seed": 11,
     "pruning": {"score": "l2", "target": "smallest", "period": 2, "layers": [{"name": "features.conv5", "fraction": 0.5, "start": 1, "end": 3}]},
     "checkpoint": {"every_steps": 2, "keep_last": 2, "level": 1}}
    """#

    /// Runs the binary; `killAfter` sends SIGKILL after that many seconds. Returns (status, signalled).
    func pruned(_ dir: String, specPath: String, env: [String: String] = [:], killAfter: Double? = nil) throws -> (Int32, Bool) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: prunedBinary)
        p.arguments = ["run", "--spec", specPath, "--out", dir, "--threads", "2"]
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        if let killAfter {
            usleep(UInt32(killAfter * 1e6))
            kill(p.processIdentifier, SIGKILL)
        }
        p.waitUntilExit()
        return (p.terminationStatus, p.terminationReason == .uncaughtSignal)
    }

    /// Runs `pruned` with `args`; returns (exit status, stdout).
    func tool(_ args: [String]) throws -> (Int32, String) {
        let r = try runTool(prunedBinary, args)
        return (r.status, r.out)
    }

    @Test func killedAndCrashedRunsResumeBitIdentically() throws {
        let a = makeTempDir("bin-ref"), b = makeTempDir("bin-crash")
        defer { try? FileManager.default.removeItem(atPath: a); try? FileManager.default.removeItem(atPath: b) }
        let specPath = a + "-spec.json"
        try spec.write(toFile: specPath, atomically: true, encoding: .utf8)
        defer { unlink(specPath) }
        #expect(try pruned(a, specPath: specPath) == (0, false))
        // Dies between fsync and rename of its 3rd checkpoint: a .tmp is left, the 2nd is newest.
        #expect(try pruned(b, specPath: specPath, env: ["PRUNED_TEST_CRASH_AFTER_FSYNC": "3"]) == (137, false))
        let store = CheckpointStore(directory: b + "/checkpoints")
        #expect(store.list().count == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: b + "/checkpoints").contains { $0.hasSuffix(".tmp") })
        // Resumes, then dies again mid-write of its 4th checkpoint.
        #expect(try pruned(b, specPath: specPath, env: ["PRUNED_TEST_CRASH_AFTER_FSYNC": "4"]) == (137, false))
        // SIGTERM (sent by the process to itself after step 11, a test hook): finishes the step,
        // checkpoints at that step boundary, exits 0.
        #expect(try pruned(b, specPath: specPath, env: ["PRUNED_TEST_SIGTERM_AT_STEP": "11"]) == (0, false))
        #expect(!FileManager.default.fileExists(atPath: b + "/summary.json"))
        #expect(store.latestPointer()?.contains("-e00002-s000003") == true, "\(store.latestPointer() ?? "none")")
        // kill -9 at an arbitrary moment (data loading, a step or a write: any is fine).
        _ = try pruned(b, specPath: specPath, killAfter: 1.0)
        // (If the run finished within that second, a further run is refused as finished.)
        if !FileManager.default.fileExists(atPath: b + "/summary.json") {
            #expect(try pruned(b, specPath: specPath) == (0, false))
        } else {
            #expect(try pruned(b, specPath: specPath) == (1, false))
        }
        #expect(FileManager.default.fileExists(atPath: b + "/summary.json"))
        #expect(try metricsLines(a) == metricsLines(b))
        #expect(try metricsLines(b).count == 4)
        let sa = try finalState(a), sb = try finalState(b)
        #expect(sa.entries == sb.entries)
        #expect(sa.payload == sb.payload, "final weights, masks and optimizer state are bit-identical")
        // The tools: inspect and verify pass on good files and flag a damaged one.
        let newest = try #require(store.latestPointer())
        let (rc, text) = try tool(["ckpt", "inspect", store.path(newest)])
        #expect(rc == 0 && text.contains("(ok)") && text.contains("features.conv5.weight") && text.contains("4 epochs done"))
        #expect(try tool(["ckpt", "verify", b]).0 == 0)
        var bytes = try CheckpointStore.readAll(store.path(newest))
        bytes[bytes.count / 2] ^= 1
        try CheckpointStore.durableWrite(bytes, to: store.path(newest), crashHook: false)
        let (vrc, vtext) = try tool(["ckpt", "verify", b])
        #expect(vrc == 1 && vtext.contains("BAD  \(newest)") && vtext.contains("CRC32"))
        #expect(try tool(["ckpt", "inspect", store.path(newest)]).0 == 1)
        #expect(FileManager.default.fileExists(atPath: store.path(newest)), "verify is read-only")
    }
}
