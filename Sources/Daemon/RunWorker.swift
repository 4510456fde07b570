// One running run: a dedicated thread that executes the run exactly as `pruned run` does
// (ForegroundRun), polling its stop and checkpoint requests between training steps only, and
// reporting progress, epochs and checkpoints back to the Daemon.
import Control
import Engine
import Foundation
import RunLayout
import Training
import CSystemd

final class RunWorker {
    let id: RunID
    unowned let daemon: Daemon
    let spec: RunSpec
    let fork: Bool
    let directory: RunDirectory
    let threads: Int
    // Guarded by daemon.lock.
    var stop: StopReason?
    /// Replies owed once the run has stopped (pause, cancel).
    var stopWaiters: [Int] = []
    /// `checkpoint` requests not yet picked up / being written.
    var checkpointWaiters: [Int] = []
    var checkpointInFlight: [Int] = []
    var heartbeat = Trainer.monotonicSeconds()
    var lastStepTime: Double?
    private var thread: Thread?

    init(id: RunID, daemon: Daemon, spec: RunSpec, fork: Bool, directory: RunDirectory, threads: Int) {
        self.id = id
        self.daemon = daemon
        self.spec = spec
        self.fork = fork
        self.directory = directory
        self.threads = threads
    }

    func start() {
        let t = Thread { [self] in self.main() }
        t.name = "run \(id)"
        t.stackSize = 16 << 20
        thread = t
        t.start()
    }

    private func main() {
        let daemon = self.daemon
        let id = self.id
        var options = RunOptions(fork: fork)
        options.stopHint = ""
        options.stopRequested = { daemon.stopRequested(id) }
        options.checkpointRequested = { daemon.takeCheckpointRequest(id) }
        options.afterStep = { t in daemon.workerStepped(id, trainer: t) }
        options.onStart = { t, resumed in daemon.workerStarted(id, trainer: t, resumedFrom: resumed) }
        options.onEpoch = { r in daemon.workerEpoch(id, record: r) }
        options.onCheckpoint = { file, error in daemon.workerCheckpointed(id, file: file, error: error) }
        let logPath = directory.log
        let outcome: Daemon.Outcome
        do {
            try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
            let summary = try ForegroundRun.execute(spec: spec, outDir: directory.path, threads: threads, options: options) { line in
                RunWorker.appendLog(logPath, line)
                daemon.workerLog(id, line)
            }
            outcome = .finished(summary)
        } catch {
            let reason: String
            switch error {
            case let e as SpecError: reason = "run spec: \(e)"
            case let e as DatasetError: reason = "dataset: \(e)"
            default: reason = "\(error)"
            }
            RunWorker.appendLog(logPath, "failed: \(reason)")
            outcome = .failed(reason)
        }
        daemon.workerFinished(id, outcome)
        // The run's model, activations and dataset are freed by now, but glibc keeps freed heap
        // pages in its arenas (one per thread that allocated): hand them back to the system so
        // that an idle daemon returns to about its fresh size.
        malloc_trim(0)
    }

    /// Appends a time-stamped line to the run's log file (best effort).
    static func appendLog(_ path: String, _ line: String) {
        let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(secondsFromGMT: 0) ?? .current, formatOptions: [.withInternetDateTime])
        let bytes = Array((stamp + " " + line + "\n").utf8)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
