// The daemon's state: runs (replayed from the ledger), the scheduler, the event ring and
// shutdown. All of it is guarded by one lock; the control loop (ControlServer) and the run
// workers (RunWorker) only meet here. `Daemon.run()` is the entry point `pruned daemon` calls.
import Checkpointing
import Control
import CSystemd
import Engine
import Foundation
import PrunedJSON
import RunLayout
import Training

public struct DaemonConfiguration: Sendable {
    public var stateDirectory: String
    /// Where to bind when systemd passes no socket.
    public var socketPath: String?
    /// A listening socket already open (systemd socket activation); wins over `socketPath`.
    public var listenFD: Int32?
    /// Concurrent runs and threads per run; runs × threads should not exceed the cores.
    public var runs = 1
    public var threadsPerRun = 2
    /// Runs interrupted by a stop or crash are queued again at start (else left interrupted).
    public var resumeOnStart = true
    /// Only members of this group (and root and the daemon's own user) may connect.
    public var allowedGroup: String?
    /// Members of this group may change anybody's runs.
    public var adminGroup: String?
    public var maxConnections = 128
    /// Connections one non-admin uid may hold at once (root, the daemon's user and admins are exempt).
    public var maxConnectionsPerUser = 32
    /// The last this-many of `maxConnections` are for root, the daemon's user and admins only.
    public var reservedConnections = 16
    /// Seconds a connection may stay silent (subscribers excepted) before it is closed.
    public var idleTimeout: Double = 900
    public var maxLineBytes = ProtocolInfo.defaultMaxLineBytes
    /// A client that lets this many reply/event bytes pile up unread is disconnected.
    public var outputLimitBytes = 8 << 20
    public var eventRingSize = 4096
    /// A running run that reports no step for this long withholds the watchdog ping.
    public var stallLimit: Double = 1800
    /// Relative dataset paths in specs resolve against this directory (default: the state dir).
    public var dataRoot: String?
    public var version = ProtocolInfo.softwareVersion
    /// Where runs execute unless a submission says otherwise, and the default Slurm options.
    public var executor: Executor = .local
    public var slurmDefaults = SlurmOptions()
    /// The pruned executable Slurm tasks run (PRUNED_BIN); default: this process's own binary.
    public var slurmPrunedBin = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    /// Seconds between two looks at the Slurm runs (squeue and their run directories).
    public var slurmPollInterval: Double = 2
    /// sbatch --signal=B:USR1@MARGIN: seconds before the time limit the task is told to checkpoint.
    public var slurmSignalMargin = 120
    /// Resubmissions of a task that vanished without finishing before its run fails.
    public var slurmRetries = 3

    public init(stateDirectory: String) { self.stateDirectory = stateDirectory }

    public var runsDirectory: String { stateDirectory + "/runs" }
}

/// Why a worker was asked to stop at its next step boundary.
enum StopReason: Equatable {
    case pause
    case cancel(UInt32)
    case shutdown(String)
}

/// A pause or cancel of a running run that is requested but not yet carried out: a run
/// record's `pending`, kept in the ledger so that it survives a crash ("pause" or "cancel" in
/// its JSON). A shutdown is never pending: the daemon settles it at its next start.
public enum PendingStop: String, Sendable {
    case pause, cancel
}

/// One connected client as the handlers see it.
public struct Peer: Sendable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    public var name: String
    public var admin: Bool
}

/// What a handler answers: a reply now, or later (the connection waits for it in order).
enum HandlerResult {
    case reply(Reply)
    case deferred(Int)
    case subscribe(Reply, cursor: UInt64, run: RunID?, group: String?)
    case unsubscribe(Reply)
    case close(Reply)
}

public final class Daemon: @unchecked Sendable {
    public let config: DaemonConfiguration
    public let logger: Logger
    let ledger: Ledger
    /// flock'ed fd of `state/lock`; released when `run()` returns or the object goes away.
    var stateLock: Int32
    let lock = NSLock()
    public let bootID: String
    let startTime = Date().timeIntervalSince1970
    let dataRoot: String

    // Guarded by `lock`.
    var runs: [RunID: RunRecord] = [:]
    var workers: [RunID: RunWorker] = [:]
    var nextID = 1
    var nextOrder = 1
    var ring: EventRing
    var completions: [(Int, Reply)] = []
    var nextToken = 1
    var draining: DrainMode?
    var stopping: String?
    var statusDirty = true

    /// The control loop's wake pipe (see `attachWakeup`); workers write a byte to wake it.
    var wakeWrite: Int32 = -1
    /// Only the control thread touches it, through `tick`.
    var lifecycle = LifecycleState()
    /// Submits and watches Slurm runs while `run()` serves (SlurmExecutor.swift).
    var slurmExecutor: SlurmExecutor?

    /// Replays the ledger and recovers runs that were running when the daemon last stopped.
    public init(configuration: DaemonConfiguration, logger: Logger = Logger()) throws {
        // glibc gives every thread that allocates its own heap arena and keeps freed pages in
        // it; run threads come and go, so a few shared arenas (and malloc_trim after each run,
        // in RunWorker) let an idle daemon return to about its fresh size.
        _ = mallopt(M_ARENA_MAX, Int32(clamping: configuration.runs + 1))
        config = configuration
        self.logger = logger
        ring = EventRing(capacity: configuration.eventRingSize)
        var bytes = [UInt8](repeating: 0, count: 6)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0 ... 255) }
        bootID = bytes.map { String(format: "%02x", $0) }.joined()
        dataRoot = configuration.dataRoot ?? configuration.stateDirectory
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: configuration.runsDirectory, withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o750])
        } catch {
            throw DaemonError("cannot create the state directory \(configuration.runsDirectory): \(error.localizedDescription)")
        }
        // One daemon per state directory: the lock is held for the life of the process.
        let lockPath = configuration.stateDirectory + "/lock"
        let lockFD = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard lockFD >= 0 else { throw DaemonError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            close(lockFD)
            throw DaemonError("another pruned daemon is using the state directory \(configuration.stateDirectory) (\(lockPath) is locked)")
        }
        stateLock = lockFD
        ledger = Ledger(path: configuration.stateDirectory + "/ledger.jsonl")
        let replay = try ledger.open()
        for n in replay.notes { logger.log(.error, n) }
        runs = replay.runs
        // An id is never reused: the next one is above every id in the ledger and under runs/.
        let onDisk = Daemon.directoryRunIDs(configuration.runsDirectory)
        nextID = max(runs.keys.map(\.number).max() ?? 0, onDisk.map(\.id.number).max() ?? 0) + 1
        nextOrder = (runs.values.map(\.order).max() ?? 0) + 1
        try recover(orphans: onDisk.filter { $0.canonical && runs[$0.id] == nil }.map(\.id),
                    compact: replay.uncheckedLines > 0 || !replay.notes.isEmpty)
    }

    deinit { releaseStateLock() }

    func releaseStateLock() {
        if stateLock >= 0 { close(stateLock) }
        stateLock = -1
    }

    func now() -> Double { Date().timeIntervalSince1970 }

    /// Settles runs that were running when the daemon stopped, rebuilds `orphans` (run
    /// directories the ledger does not know) from their own files, and compacts the ledger.
    func recover(orphans: [RunID], compact: Bool) throws {
        var changed: [RunRecord] = []
        for var r in runs.values.sorted(by: { $0.id < $1.id }) {
            // Slurm runs keep running without the daemon: the Slurm executor finds them again.
            if r.executor == .slurm { continue }
            let before = r
            if r.state == .running {
                switch r.pending {
                case .pause?: r.state = .paused
                case .cancel?: r.state = .cancelled; r.finished = now()
                case nil:
                    r.state = .interrupted
                    r.reason = "the daemon stopped while the run was training (crash, kill or power loss)"
                }
                r.pending = nil
            }
            if r.state == .interrupted && config.resumeOnStart {
                logger.log(.notice, "resuming \(r.id) from its newest checkpoint (\(r.reason ?? "interrupted"))", fields: [("RUN_ID", r.id.description), ("EVENT", "recover")])
                r.state = .queued
            }
            if r != before { changed.append(r) }
        }
        var rebuilt: [String] = []
        for id in orphans {
            let dir = runDirectory(id)
            do {
                let r = try RunRecord.recovered(id: id, directory: dir, order: nextOrder, owner: getuid(), ownerName: ControlServer.userName(getuid()))
                nextOrder += 1
                changed.append(r)
                rebuilt.append("\(id) (\(r.state.rawValue))")
            } catch {
                logger.log(.error, "\(dir.path) is not in the ledger and cannot be recovered (\(error)); it is left untouched and its id is never reused",
                           fields: [("RUN_ID", id.description), ("EVENT", "recover")])
            }
        }
        if !rebuilt.isEmpty {
            logger.log(.error, "THE LEDGER HAD NO RECORD OF \(rebuilt.count) RUN DIRECTOR\(rebuilt.count == 1 ? "Y" : "IES") (was ledger.jsonl deleted, truncated or altered?): "
                       + "recovered from their own files: \(rebuilt.joined(separator: ", ")). Interrupted ones wait for `resume`.",
                       fields: [("EVENT", "recover")])
        }
        for r in changed {
            try ledger.append(r, time: now())
            runs[r.id] = r
        }
        if compact || !rebuilt.isEmpty || ledger.lines > 2 * runs.count + 64 {
            try ledger.compact(Array(runs.values), time: now())
        }
        let counts = Dictionary(grouping: runs.values, by: \.state).mapValues(\.count)
        logger.log(.info, "recovered \(runs.count) runs from the ledger" + (runs.isEmpty ? "" : ": ")
                   + RunState.allCases.compactMap { s in counts[s].map { "\($0) \(s.rawValue)" } }.joined(separator: ", "))
    }

    public func runDirectory(_ id: RunID) -> RunDirectory { RunDirectory(config.runsDirectory + "/" + id.description) }

    // MARK: events

    /// Appends an event to the ring (lock held) and logs it.
    func emitLocked(_ type: String, run: RunID?, fields: [(String, JSON)], level: LogLevel = .info, message: String? = nil) {
        var pairs: [(String, JSON)] = [("time", .number(now())), ("type", .string(type))]
        if let run { pairs.append(("run", .string(run.description))) }
        ring.append(run: run, group: run.flatMap { runs[$0]?.group }, fields: pairs + fields)
        statusDirty = true
        if let message {
            var f: [(String, String)] = [("EVENT", type)]
            if let run { f.insert(("RUN_ID", run.description), at: 0) }
            if let e = fields.first(where: { $0.0 == "epoch" })?.1.intValue { f.append(("EPOCH", String(e))) }
            logger.log(level, message, fields: f)
        }
        wake()
    }

    func wake() {
        if wakeWrite >= 0 {
            var b: UInt8 = 1
            _ = Glibc.write(wakeWrite, &b, 1)
        }
    }

    /// Writes a changed record to the ledger, then to memory (lock held). Throws STORAGE.
    func commitLocked(_ r: RunRecord) throws {
        do { try ledger.append(r, time: now()) } catch {
            logger.log(.error, "ledger write failed: \(error)", fields: [("RUN_ID", r.id.description)])
            throw ProtocolError(.storage, "could not record the change durably (\(error)); nothing was changed")
        }
        let old = runs[r.id]
        runs[r.id] = r
        if old?.state != r.state {
            var fields: [(String, JSON)] = [("from", old.map { .string($0.state.rawValue) } ?? .null), ("to", .string(r.state.rawValue))]
            if let reason = r.reason, r.state == .failed || r.state == .interrupted { fields.append(("reason", .string(reason))) }
            emitLocked("state", run: r.id, fields: fields, level: r.state == .failed ? .error : .info,
                       message: "\(r.id) \(old?.state.rawValue ?? "new") → \(r.state.rawValue)" + (r.state == .failed ? ": \(r.reason ?? "")" : ""))
        }
    }

    /// Records a change that is not a reply to anyone (worker transitions); failures are logged.
    func commitQuietlyLocked(_ r: RunRecord) {
        do { try commitLocked(r) } catch { runs[r.id] = r }
    }

    func resolveLocked(_ token: Int, _ reply: Reply) {
        completions.append((token, reply))
        wake()
    }

    func newTokenLocked() -> Int {
        nextToken += 1
        return nextToken
    }

    // MARK: scheduling

    /// Starts queued runs while slots are free: highest priority first, then submission order.
    func dispatchLocked() {
        guard draining == nil, stopping == nil else { return }
        slurmExecutor?.wake()
        while workers.count < config.runs {
            let candidates = runs.values.filter { $0.state == .queued && $0.executor == .local }
            guard let next = candidates.min(by: { ($0.priority, -$0.order) > ($1.priority, -$1.order) }) else { return }
            // A start that cannot be recorded (disk full) is retried at the next change, not now.
            guard startLocked(next) else { return }
        }
    }

    /// Starts a run's worker; false when the start could not be recorded durably.
    @discardableResult
    func startLocked(_ record: RunRecord) -> Bool {
        var r = record
        r.state = .running
        r.started = now()
        r.starts += 1
        r.pending = nil
        r.reason = nil
        let spec: RunSpec
        do {
            spec = try RunSpec(json: r.spec)
        } catch {
            r.state = .failed
            r.reason = "the stored spec no longer parses: \(error)"
            r.finished = now()
            commitQuietlyLocked(r)
            return true
        }
        // The dataset again, with the owner's rights and groups as they are now: a directory that
        // passed at submit time may since have become (or been swapped for a symbolic link to)
        // something its owner cannot read. This narrows the window to the moments between this
        // check and the worker opening the files by path; it does not close it.
        if !PeerAccess.isExempt(uid: r.owner, adminGroup: config.adminGroup) {
            do {
                try PeerAccess.checkDataset(kind: spec.data.kind, path: spec.data.path, who: PeerAccess.identity(uid: r.owner), dataRoot: dataRoot)
            } catch {
                r.state = .failed
                r.reason = (error as? ProtocolError)?.message ?? "\(error)"
                r.finished = now()
                commitQuietlyLocked(r)
                return true
            }
        }
        do { try commitLocked(r) } catch {
            // Not durable: do not start (a crash would lose the fact it ran). Retried on the next change.
            return false
        }
        let dir = runDirectory(r.id)
        let store = CheckpointStore(directory: dir.checkpoints)
        if store.list().isEmpty {
            // Nothing to resume: a previous attempt's partial metrics must not block a fresh start.
            try? FileManager.default.removeItem(atPath: dir.metrics)
        }
        let worker = RunWorker(id: r.id, daemon: self, spec: spec, fork: r.forkOf != nil, directory: dir, threads: config.threadsPerRun)
        workers[r.id] = worker
        worker.start()
        return true
    }

    // MARK: worker callbacks (any thread)

    func workerStarted(_ id: RunID, trainer: Trainer, resumedFrom: String?) {
        lock.withLock {
            guard var r = runs[id] else { return }
            r.epochsDone = trainer.epochsCompleted
            r.step = trainer.stepInEpoch
            r.stepsPerEpoch = trainer.stepsPerEpoch
            r.epochs = trainer.spec.epochs
            runs[id] = r
            workers[id]?.heartbeat = Trainer.monotonicSeconds()
            var fields: [(String, JSON)] = [("epochs_done", .number(Double(r.epochsDone))), ("step", .number(Double(r.step)))]
            if let resumedFrom { fields.append(("checkpoint", .string(resumedFrom))) }
            emitLocked(resumedFrom == nil ? "started" : "resumed", run: id, fields: fields,
                       message: resumedFrom.map { "\(id) resumed from \($0) at epoch \(r.epochsDone + 1) step \(r.step)" } ?? "\(id) started")
        }
    }

    func workerStepped(_ id: RunID, trainer: Trainer) {
        let t = Trainer.monotonicSeconds()
        lock.withLock {
            guard var r = runs[id], let w = workers[id] else { return }
            if let last = w.lastStepTime, t > last {
                let ips = Double(trainer.spec.batchSize) / (t - last)
                r.imagesPerSecond = r.imagesPerSecond.map { 0.9 * $0 + 0.1 * ips } ?? ips
            }
            w.lastStepTime = t
            w.heartbeat = t
            r.epochsDone = trainer.epochsCompleted
            r.step = trainer.stepInEpoch
            runs[id] = r
            statusDirty = true
        }
    }

    func workerEpoch(_ id: RunID, record e: EpochRecord) {
        lock.withLock {
            guard var r = runs[id] else { return }
            r.epochsDone = e.epoch
            r.step = 0
            r.lastTestAcc = e.post.top1
            r.bestTestAcc = max(r.bestTestAcc ?? -1, e.post.top1)
            workers[id]?.heartbeat = Trainer.monotonicSeconds()
            workers[id]?.lastStepTime = nil
            var fields: [(String, JSON)] = [
                ("epoch", .number(Double(e.epoch))), ("epochs", .number(Double(r.epochs))),
                ("train_loss", .number(e.train.meanLoss)), ("train_acc", .number(e.train.top1)),
                ("test_loss", .number(e.post.meanLoss)), ("test_acc", .number(e.post.top1)),
                ("lr", .number(e.lr)), ("seconds", .number(e.seconds)), ("images_per_second", .number(e.trainImagesPerSecond)),
            ]
            if e.isPruningEpoch { fields.append(("instability", e.instability.map { .number($0) } ?? .null)) }
            emitLocked("epoch", run: id, fields: fields,
                       message: String(format: "%@ epoch %d/%d test acc %.2f%% train acc %.2f%%", id.description, e.epoch, r.epochs, e.post.top1, e.train.top1))
            if let event = MetricsFormat.pruneEvent(e), let events = e.pruning {
                r.lastInstability = e.instability
                emitLocked("prune", run: id, fields: Daemon.pruneEventFields(epoch: e.epoch, event),
                           message: String(format: "%@ pruned at epoch %d: %@; test acc %.2f%% → %.2f%%", id.description, e.epoch,
                                           events.map { "\($0.layer) \($0.k)" }.joined(separator: ", "), e.pre.top1, e.post.top1))
            }
            commitQuietlyLocked(r)
        }
    }

    /// The fields of a `prune` event, from the epoch's `prune_event` (MetricsFormat.pruneEvent):
    /// a local run's record's, or the one in a Slurm run's metrics.jsonl row.
    static func pruneEventFields(epoch: Int, _ event: JSON) -> [(String, JSON)] {
        [("epoch", .number(Double(epoch))), ("t_pre", event["t_pre"] ?? .null), ("t_post", event["t_post"] ?? .null),
         ("instability", event["instability"] ?? .null), ("instability_points", event["instability_points"] ?? .null),
         ("layers", event["layers"] ?? .array([]))]
    }

    func workerCheckpointed(_ id: RunID, file: String?, error: String?) {
        lock.withLock {
            guard var r = runs[id] else { return }
            let waiters = workers[id]?.checkpointInFlight ?? []
            workers[id]?.checkpointInFlight = []
            if let file {
                r.lastCheckpoint = file
                runs[id] = r
                emitLocked("checkpoint", run: id, fields: [("file", .string(file)), ("epochs_done", .number(Double(r.epochsDone))),
                                                           ("step", .number(Double(r.step)))], level: .debug,
                           message: waiters.isEmpty ? nil : "\(id) checkpoint \(file) (requested)")
                for t in waiters { resolveLocked(t, .ok(CheckpointReply(run: id, checkpoint: file).json)) }
            } else {
                let message = error ?? "unknown error"
                emitLocked("error", run: id, fields: [("message", .string("checkpoint failed: " + message))], level: .error,
                           message: "\(id) checkpoint failed (the previous one is intact): \(message)")
                for t in waiters { resolveLocked(t, .error(ProtocolError(.storage, "checkpoint failed (the previous one is intact): \(message)"))) }
            }
        }
    }

    func workerLog(_ id: RunID, _ line: String) {
        logger.log(.info, "\(id) \(line)", fields: [("RUN_ID", id.description), ("EVENT", "log")])
    }

    enum Outcome {
        case finished(RunSummary)
        case failed(String)
    }

    func workerFinished(_ id: RunID, _ outcome: Outcome) {
        lock.withLock {
            guard let w = workers.removeValue(forKey: id), var r = runs[id] else { return }
            switch (outcome, w.stop) {
            case (.finished(let s), _) where !s.interrupted:
                r.state = .completed
                r.epochsDone = s.records.count
            case (_, .cancel(let uid)?):
                r.state = .cancelled
                r.cancelledBy = uid
            case (.failed(let reason), _):
                r.state = .failed
                r.reason = reason
            case (_, .pause?):
                r.state = .paused
            case (_, .shutdown(let why)?):
                r.state = .interrupted
                r.reason = why
            case (.finished, nil):
                r.state = .interrupted
                r.reason = "stopped without a request"
            }
            r.pending = nil
            if r.state.isTerminal { r.finished = now() }
            commitQuietlyLocked(r)
            let reply: Reply = .ok(withChanged(r, true))
            for t in w.stopWaiters { resolveLocked(t, reply) }
            for t in w.checkpointWaiters + w.checkpointInFlight {
                resolveLocked(t, .error(ProtocolError(.badState, "\(id) stopped (\(r.state.rawValue)) before the checkpoint was taken"
                                                      + (r.lastCheckpoint.map { "; its last checkpoint is \($0)" } ?? ""))))
            }
            dispatchLocked()
            wake()
        }
    }

    // MARK: status

    /// The one-line STATUS= text for systemd and `status`.
    func statusLineLocked() -> String {
        let counts = Dictionary(grouping: runs.values, by: \.state).mapValues(\.count)
        // Slurm runs count with the others; "(N on Slurm)" says how many of a state are Slurm's.
        let slurmCounts = Dictionary(grouping: runs.values.filter { $0.executor == .slurm }, by: \.state).mapValues(\.count)
        var parts = [RunState.running, .queued, .held, .paused, .interrupted, .failed].compactMap { s in
            counts[s].map { "\($0) \(s.rawValue)" + (slurmCounts[s].map { " (\($0) on Slurm)" } ?? "") }
        }
        if parts.isEmpty { parts = ["idle"] }
        var line = parts.joined(separator: ", ")
        for id in workers.keys.sorted() {
            guard let r = runs[id] else { continue }
            if r.stepsPerEpoch == 0 { line += "; \(id) loading"; continue }
            line += String(format: "; %@ epoch %d/%d step %d/%d", id.description, min(r.epochsDone + 1, r.epochs), r.epochs, r.step, r.stepsPerEpoch)
            if let ips = r.imagesPerSecond { line += String(format: " (%.0f img/s)", ips) }
        }
        for r in runningSlurmRunsLocked() {
            line += String(format: "; %@ epoch %d/%d", r.id.description, min(r.epochsDone + 1, r.epochs), r.epochs)
            if r.stepsPerEpoch > 0 { line += String(format: " step %d/%d", r.step, r.stepsPerEpoch) }
            line += " in Slurm task \(r.slurm?.taskID ?? "?")" + (r.slurm?.node.map { " on \($0)" } ?? "")
        }
        if let d = draining { line += "; draining (\(d.rawValue))" }
        if stopping != nil { line += "; stopping" }
        return line
    }

    /// Slurm runs whose task runs now, in id order (lock held).
    func runningSlurmRunsLocked() -> [RunRecord] {
        runs.values.filter { $0.executor == .slurm && $0.state == .running }.sorted { $0.id < $1.id }
    }

    /// Whether every running run stepped recently (the watchdog is fed only then).
    func workersAliveLocked() -> Bool {
        let t = Trainer.monotonicSeconds()
        return workers.values.allSatisfy { t - $0.heartbeat < config.stallLimit }
    }

    // MARK: lifecycle

    /// Asks every running run to checkpoint at its next step and stop (SIGTERM, `drain now`).
    func beginStopLocked(_ why: String) {
        guard stopping == nil else { return }
        stopping = why
        logger.log(.notice, "stopping (\(why)): checkpointing \(workers.count) running run(s)")
        emitLocked("daemon", run: nil, fields: [("what", .string("stopping")), ("reason", .string(why))])
        for w in workers.values where w.stop == nil { w.stop = .shutdown(why) }
        wake()
    }

    /// Runs the daemon until it is stopped: binds or adopts the socket, sends READY=1, serves.
    public func run() throws {
        guard stateLock >= 0 else { throw DaemonError("this daemon has already run; create a new one") }
        let server: ControlServer
        do { server = try ControlServer(daemon: self) } catch {
            releaseStateLock()
            throw error
        }
        attachWakeup(server.wakeWrite)
        let slurm = SlurmExecutor(daemon: self)
        lock.withLock { slurmExecutor = slurm }
        slurm.start()
        lock.withLock { dispatchLocked() }
        let statusLine = lock.withLock { statusLineLocked() }
        Notify.send("READY=1\nSTATUS=" + statusLine)
        logger.log(.notice, "ready on \(server.describeSocket) (protocol \(ProtocolInfo.version), daemon \(config.version), \(config.runs) run(s) × \(config.threadsPerRun) thread(s))")
        defer { slurm.stop() }
        try server.loop()
        server.shutdown()
        attachWakeup(-1)
        logger.log(.notice, "stopped")
        releaseStateLock()
    }

    /// Thread-safe stop request (signal handlers use the server's pipe instead).
    public func requestStop(_ why: String = "stop requested") {
        lock.withLock { beginStopLocked(why) }
    }

    /// For tests and benchmarks: a snapshot of one run.
    public func record(_ id: RunID) -> RunRecord? { lock.withLock { runs[id] } }
}

extension NSLock {
    @inline(__always) func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
