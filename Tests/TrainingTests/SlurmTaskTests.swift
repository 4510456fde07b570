// The Slurm array task script without Slurm: the committed examples/slurm/pruned-array.sbatch is
// the generated text; bash accepts it; every bad input fails at once naming the node and the path;
// finished and cancelled runs are no-ops; and, with the real pruned binary on the real
// Fashion-MNIST, USR1 and TERM reach pruned through the script's wait loop (pruned checkpoints
// and stops, a second signal is harmless) and the next start resumes and finishes the run.
// tests/slurm/ runs it on a real cluster.
import Foundation
import Testing
import TestSupport
import Training

/// The script run by bash with `environment` (added to a minimal one) in `cwd`, its output in a
/// file. Spawned with posix_spawn and an empty signal mask: Slurm starts batch scripts with signals
/// unblocked, while a test thread may block some (and a child inherits its mask; bash then never
/// sees USR1 or TERM).
private final class ScriptRun {
    let pid: pid_t
    let outPath: String
    private var status: Int32?

    init(_ args: [String], environment: [String: String], cwd: String) throws {
        let scriptPath = cwd + "/task.sbatch"
        try SlurmTask.script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        outPath = cwd + "/task-\(UInt32.random(in: 0 ... .max)).out"
        // SLURM_CONF=/dev/null: scontrol fails at once (a missing file makes it retry for 60 s).
        let env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": cwd, "SLURM_CONF": "/dev/null"].merging(environment) { $1 }
        let argv = ["/bin/bash", "-c", #"cd "$0" && exec /bin/bash "$@""#, cwd, scriptPath] + args
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t(), defaults = sigset_t()
        sigemptyset(&empty)
        sigemptyset(&defaults)
        for sig in [SIGTERM, SIGUSR1, SIGINT, SIGCHLD] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cArgs + cEnv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, "/bin/bash", &actions, &attr, cArgs, cEnv)
        guard rc == 0 else { throw SpawnError(message: "posix_spawn /bin/bash: \(String(cString: strerror(rc)))") }
        pid = child
    }

    var output: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }

    var isRunning: Bool {
        guard status == nil else { return false }
        var st: Int32 = 0
        if waitpid(pid, &st, WNOHANG) == pid { status = st; return false }
        return true
    }

    func finish() -> (status: Int32, output: String) {
        if status == nil {
            var st: Int32 = 0
            while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
            status = st
        }
        let st = status ?? 0
        // Exit status when it exited, 128 + signal when a signal ended it.
        return ((st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f), output)
    }
}

private struct SpawnError: Error { let message: String }

private func hostname() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    gethostname(&buffer, 255)
    return String(cString: buffer)
}

@Suite struct SlurmTaskScriptTests {
    @Test func theCommittedScriptIsTheGeneratedOne() throws {
        let committed = try String(contentsOfFile: packageRoot + "/examples/slurm/pruned-array.sbatch", encoding: .utf8)
        #expect(committed == SlurmTask.script, "regenerate it: pruned slurm-script > examples/slurm/pruned-array.sbatch")
        #expect(FileManager.default.isExecutableFile(atPath: packageRoot + "/examples/slurm/pruned-array.sbatch"))
    }

    @Test func bashParsesItAndItRequeuesOnlyItsOwnTask() throws {
        let dir = makeTempDir("syntax")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SlurmTask.script.write(toFile: dir + "/s.sh", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-n", dir + "/s.sh"]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        // The bare job id of an array task would requeue the whole array.
        let code = SlurmTask.script.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
        let requeues = code.joined(separator: "\n").components(separatedBy: "scontrol requeue ").dropFirst()
        #expect(!requeues.isEmpty && requeues.allSatisfy { $0.hasPrefix("\"$target\"") || $0.hasPrefix("$target") })
        #expect(!code.contains { $0.contains("SLURM_JOB_ID") })
        #expect(code.contains(#"target="${SLURM_ARRAY_JOB_ID:-}_${SLURM_ARRAY_TASK_ID}""#))
        #expect(SlurmTask.script.contains("#!/bin/bash\n") && SlurmTask.script.hasPrefix("#!/bin/bash"))
        #expect(SlurmTask.script.contains("DIR/" + SlurmTask.cancelMarker))
    }

    /// (runs file lines, task id, extra environment, expected status, texts the output must contain)
    @Test func badInputsFailAtOnceAndFinishedOrCancelledRunsAreNoOps() throws {
        let dir = makeTempDir("inputs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        for d in ["done", "cancelled", "nospec", "plain"] { try fm.createDirectory(atPath: dir + "/" + d, withIntermediateDirectories: true) }
        for d in ["done", "cancelled", "plain"] { try "{}".write(toFile: "\(dir)/\(d)/spec.json", atomically: true, encoding: .utf8) }
        try "{}".write(toFile: dir + "/done/summary.json", atomically: true, encoding: .utf8)
        try "".write(toFile: dir + "/cancelled/" + SlurmTask.cancelMarker, atomically: true, encoding: .utf8)
        let lines = [dir + "/missing-run", dir + "/done", "done/spec.json", "  cancelled \r", dir + "/nospec", "", dir + "/plain"]
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/runs.txt", atomically: true, encoding: .utf8)
        let node = hostname()
        let bin = ["PRUNED_BIN": dir + "/no-such-pruned"]
        let cases: [([String], [String: String], Int32, [String])] = [
            (["runs.txt"], ["SLURM_ARRAY_TASK_ID": "0"], 1, ["error: run directory \(dir)/missing-run is not visible on node \(node)"]),
            (["runs.txt"], ["SLURM_ARRAY_TASK_ID": "1"].merging(bin) { $1 }, 0, ["\(dir)/done already finished (summary.json exists): nothing to do"]),
            (["runs.txt"], ["SLURM_ARRAY_TASK_ID": "2"].merging(bin) { $1 }, 0, ["\(dir)/done already finished"]),   // relative, DIR/spec.json
            (["runs.txt"], ["SLURM_ARRAY_TASK_ID": "3"].merging(bin) { $1 }, 0, ["\(dir)/cancelled/slurm-cancel exists (cancelled on purpose): not running"]),
            (["runs.txt"], ["SLURM_ARRAY_TASK_ID": "4"], 1, ["error: \(dir)/nospec/spec.json is not visible on node \(node)"]),
            (["runs.txt"], ["SLURM_ARRAY_TASK_ID": "5"], 1, ["error: line 5 (counted from 0) of runs.txt is missing or empty"]),
            (["runs.txt"], ["SLURM_ARRAY_TASK_ID": "9"], 1, ["error: line 9 (counted from 0) of runs.txt is missing or empty"]),
            (["runs.txt"], ["SLURM_ARRAY_TASK_ID": "6"].merging(bin) { $1 }, 1, ["error: pruned executable '\(dir)/no-such-pruned' not found on node \(node)"]),
            (["runs.txt"], [:], 1, ["error: SLURM_ARRAY_TASK_ID is '': submit with sbatch --array"]),
            (["runs.txt"], ["SLURM_ARRAY_TASK_ID": "1x"], 1, ["error: SLURM_ARRAY_TASK_ID is '1x'"]),
            (["nowhere.txt"], ["SLURM_ARRAY_TASK_ID": "0"], 1, ["error: runs file nowhere.txt is not readable on node \(node)"]),
            ([], ["SLURM_ARRAY_TASK_ID": "0"], 1, ["error: usage: sbatch --array"]),
            (["runs.txt"], ["SLURM_ARRAY_TASK_ID": "0", "SLURMD_NODENAME": "n042"], 1, ["on node \(node) (Slurm node n042)"]),
        ]
        for (args, env, status, texts) in cases {
            let r = try ScriptRun(args, environment: env, cwd: dir).finish()
            #expect(r.status == status, "\(args) \(env): \(r.output)")
            for t in texts { #expect(r.output.contains(t), "\(args) \(env): \(r.output)") }
            #expect(!r.output.contains("running "), "\(r.output)")
        }
    }
}

@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: prunedBinary) && FileManager.default.fileExists(atPath: fashionMNIST)))
struct SlurmTaskSignalTests {
    /// Waits until progress.json says the run has trained at least one step.
    fileprivate func waitForTraining(_ dir: String, process: ScriptRun) throws {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && process.isRunning {
            if let text = try? String(contentsOfFile: dir + "/progress.json", encoding: .utf8),
               text.contains(#""state": "running""#), !text.contains(#""step": 0,"#) || !text.contains(#""epochs_done": 0,"#) {
                return
            }
            usleep(50_000)
        }
        Issue.record("the run did not start training within 120 s")
    }

    @Test func signalsReachPrunedThroughTheWaitLoopAndTheNextStartResumes() throws {
        let dir = makeTempDir("signals")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = dir + "/run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let spec = #"""
        {"name": "slurm-signal-test", "model": "conv4", "width": 0.25, "epochs": 2, "batch_size": 64, "seed": 2,
         "dataset": {"kind": "fashion_mnist", "path": "\#(fashionMNIST)", "train_limit": 4096, "test_limit": 256}}
        """#
        try spec.write(toFile: run + "/spec.json", atomically: true, encoding: .utf8)
        try (run + "\n").write(toFile: dir + "/runs.txt", atomically: true, encoding: .utf8)
        let env = ["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "77", "SLURM_JOB_ID": "78", "PRUNED_BIN": prunedBinary]

        // USR1 (time limit near), then TERM (as Slurm sends at the limit): one stop, one checkpoint.
        let first = try ScriptRun([dir + "/runs.txt"], environment: env, cwd: dir)
        try waitForTraining(run, process: first)
        kill(first.pid, SIGUSR1)
        usleep(20_000)
        kill(first.pid, SIGTERM)
        let r1 = first.finish()
        // No Slurm here: the requeue fails, so the task says so and exits 1.
        #expect(r1.status == 1, "\(r1.output)")
        for text in ["SIGUSR1 received: asking pruned to checkpoint and stop", "SIGTERM received again: already stopping",
                     "checkpoint written", "stopped on SIGUSR1 (pruned exit status 0); scontrol requeue 77_0 failed: ",
                     "the run stays unfinished until its task is submitted again"] {
            #expect(r1.output.contains(text), "\(text): \(r1.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: run + "/summary.json"))
        let progress = try String(contentsOfFile: run + "/progress.json", encoding: .utf8)
        #expect(progress.contains(#""state": "stopped""#) && progress.contains(#""array_job_id": 77"#), "\(progress)")

        // The restarted task resumes from that checkpoint and finishes; then it is a no-op.
        let r2 = try ScriptRun([dir + "/runs.txt"], environment: env.merging(["SLURM_RESTART_COUNT": "1"]) { $1 }, cwd: dir).finish()
        #expect(r2.status == 0, "\(r2.output)")
        #expect(r2.output.contains("(restart 1): running \(run)") && r2.output.contains("resuming from ckpt-")
                && r2.output.contains("\(run) finished"), "\(r2.output)")
        #expect(FileManager.default.fileExists(atPath: run + "/summary.json"))
        let done = try String(contentsOfFile: run + "/progress.json", encoding: .utf8)
        #expect(done.contains(#""state": "finished""#) && done.contains(#""restart_count": 1"#), "\(done)")
        let r3 = try ScriptRun([dir + "/runs.txt"], environment: env, cwd: dir).finish()
        #expect(r3.status == 0 && r3.output.contains("nothing to do"), "\(r3.output)")

        // Cancelled on purpose: a stop is not requeued.
        let other = dir + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try spec.write(toFile: other + "/spec.json", atomically: true, encoding: .utf8)
        try (other + "\n").write(toFile: dir + "/other.txt", atomically: true, encoding: .utf8)
        let cancelled = try ScriptRun([dir + "/other.txt"], environment: env, cwd: dir)
        try waitForTraining(other, process: cancelled)
        try "".write(toFile: other + "/" + SlurmTask.cancelMarker, atomically: true, encoding: .utf8)
        kill(cancelled.pid, SIGTERM)
        let r4 = cancelled.finish()
        #expect(r4.status == 0 && r4.output.contains("slurm-cancel exists: cancelled on purpose, not requeued")
                && !r4.output.contains("scontrol"), "\(r4.output)")
    }
}
