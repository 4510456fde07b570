// One handler per protocol verb behind an exhaustive switch. Handlers validate completely before
// changing anything, make every change durable in the ledger before answering OK, and return
// errors as replies: nothing a client sends can stop the daemon.
import Checkpointing
import Control
import Engine
import Foundation
import PrunedJSON
import RunLayout
import Training

extension Daemon {
    func handle(_ request: Request, peer: Peer) -> HandlerResult {
        do {
            if stoppingNow(), request.isMutating {
                throw ProtocolError(.shuttingDown, "the daemon is stopping (\(lock.withLock { stopping ?? "" })); try again after it restarts")
            }
            switch request {
            case .ping: return .reply(.ok(.object([("pong", .bool(true)), ("time", .number(now()))])))
            case .version: return .reply(.ok(versionInfo().json))
            case .help(let verb): return .reply(.ok(helpJSON(verb)))
            case .status: return .reply(.ok(status().json))
            case .quit: return .close(.ok(.object([("bye", .bool(true))])))
            case .submit(let edits): return .reply(try submit(edits, peer: peer))
            case .list(let filter): return .reply(try list(filter))
            case .show(let id): return .reply(.ok(try show(id).json))
            case .metrics(let id, let kind, let since): return .reply(.ok(try metrics(id, kind: kind, since: since).json))
            case .logs(let id, let tail): return .reply(.ok(try logs(id, tail: tail).json))
            case .pause(let id):
                try requireOwner(try existing(id), peer, "pause")
                if let r = try slurmStop(id, peer: peer, cancel: false) { return r }
                return try pause(id, peer: peer)
            case .cancel(let id):
                try requireOwner(try existing(id), peer, "cancel")
                if let r = try slurmStop(id, peer: peer, cancel: true) { return r }
                return try cancel(id, peer: peer)
            case .resume(let id):
                return .reply(try transition(id, peer: peer, verb: "resume", to: .queued, from: [.paused, .interrupted, .failed],
                                             already: [.queued, .running], hint: [.held: "use release"]))
            case .hold(let id):
                try requireOwner(try existing(id), peer, "hold")
                if let r = try slurmHoldRelease(id, peer: peer, hold: true) { return r }
                return .reply(try transition(id, peer: peer, verb: "hold", to: .held, from: [.queued, .interrupted], already: [.held],
                                             hint: [.running: "pause it instead", .paused: "it will not run until resumed anyway"]))
            case .release(let id):
                try requireOwner(try existing(id), peer, "release")
                if let r = try slurmHoldRelease(id, peer: peer, hold: false) { return r }
                return .reply(try transition(id, peer: peer, verb: "release", to: .queued, from: [.held], already: [.queued, .running], hint: [:]))
            case .priority(let id, let p):
                try requireOwner(try existing(id), peer, "priority")
                try refuseSlurmPriority(id)
                var e = RunEdits()
                e.priority = p
                return .reply(try set(id, e, peer: peer))
            case .set(let id, let edits): return .reply(try set(id, edits, peer: peer))
            case .fork(let id, let checkpoint, let edits): return try fork(id, checkpoint: checkpoint, edits, peer: peer)
            case .checkpoint(let id): return try checkpoint(id, peer: peer)
            case .subscribe(let since, let run, let group):
                return lock.withLock {
                    let s = ring.subscribe(since: since)
                    let reply = Reply.ok(.object([("subscribed", .bool(true)), ("boot_id", .string(bootID)), ("next_seq", .number(Double(ring.nextSeq))),
                                                  ("oldest_seq", .number(Double(ring.oldestSeq))), ("lost", .number(Double(s.lost))), ("reset", .bool(s.reset))]))
                    return .subscribe(reply, cursor: s.cursor, run: run, group: group)
                }
            case .unsubscribe: return .unsubscribe(.ok(.object([("subscribed", .bool(false))])))
            case .drain(let mode): return .reply(try drain(mode, peer: peer))
            }
        } catch let e as ProtocolError {
            return .reply(.error(e))
        } catch {
            logger.log(.error, "internal error handling \(request.verb.rawValue): \(error)")
            return .reply(.error(ProtocolError(.internal, "\(error)")))
        }
    }

    func stoppingNow() -> Bool { lock.withLock { stopping != nil } }

    func versionInfo() -> VersionInfo {
        VersionInfo(daemon: config.version, build: Provenance.buildID, bootID: bootID)
    }

    func helpJSON(_ verb: String?) -> JSON {
        if let verb, let v = Verb(rawValue: verb) {
            return .object([("command", .string(v.rawValue)), ("usage", .string(v.usage)), ("summary", .string(v.summary))])
        }
        return .object([("commands", .array(Verb.allCases.map { .object([("command", .string($0.rawValue)), ("usage", .string($0.usage)),
                                                                           ("summary", .string($0.summary))]) })),
                        ("errors", .object(ErrorCode.allCases.map { ($0.rawValue, .string($0.meaning)) }))])
    }

    func status() -> DaemonStatus {
        lock.withLock {
            let slurmRuns = runs.values.filter { $0.executor == .slurm }
            // Local runs first (their workers), then the Slurm runs whose tasks run.
            let running = workers.keys.sorted().compactMap { runs[$0]?.info.short } + runningSlurmRunsLocked().map(\.info.short)
            return DaemonStatus(
                daemon: config.version, bootID: bootID, uptime: (now() - startTime).rounded(),
                runs: Dictionary(grouping: runs.values, by: \.state).mapValues(\.count),
                // Only a daemon that has Slurm runs says how many of each state are Slurm's.
                slurmRuns: slurmRuns.isEmpty ? nil : Dictionary(grouping: slurmRuns, by: \.state).mapValues(\.count),
                running: running, slots: config.runs, threadsPerRun: config.threadsPerRun, draining: draining, stopping: stopping,
                status: statusLineLocked(), nextSeq: ring.nextSeq, stateDirectory: config.stateDirectory)
        }
    }

    // MARK: lookups and permissions

    func existing(_ id: RunID) throws -> RunRecord {
        guard let r = lock.withLock({ runs[id] }) else { throw ProtocolError(.notFound, "no run \(id)") }
        return r
    }

    func requireOwner(_ r: RunRecord, _ peer: Peer, _ verb: String) throws {
        guard peer.uid == 0 || peer.uid == r.owner || peer.uid == getuid() || peer.admin else {
            throw ProtocolError(.permissionDenied, "\(verb) \(r.id): the run belongs to \(r.ownerName); only its owner, root or the admin group may change it")
        }
    }

    // MARK: specs

    /// Builds (SpecBuilder) and validates the canonical spec JSON from a preset or inline spec
    /// plus overrides, with a dataset `peer` may use (PeerAccess).
    func buildSpec(base: JSON?, preset: String?, overrides: [Override], peer: Peer) throws -> (JSON, RunSpec) {
        var json: JSON
        do {
            json = try SpecBuilder.compose(base: base, preset: preset, overrides: overrides.map { ($0.path, $0.value) }).json
            // Relative dataset paths are the daemon's data root's.
            if let path = json["dataset"]?["path"]?.stringValue, !path.isEmpty, !path.hasPrefix("/") {
                json = try SpecBuilder.set(json, path: "dataset.path", to: .string(dataRoot + "/" + path))
            }
        } catch let e as SpecSourceError {
            throw ProtocolError(e)
        }
        let spec: RunSpec
        do {
            spec = try RunSpec(json: json)
            try spec.validateAgainstModel()
        } catch let e as SpecError {
            throw ProtocolError(.badSpec, e.description)
        }
        if !peer.admin && peer.uid != 0 && peer.uid != getuid() {
            // Not the daemon's own rights: only what this peer could read, or the data root.
            // Past this check the peer may know whether the path exists, so the next may say so.
            try PeerAccess.checkDataset(kind: spec.data.kind, path: spec.data.path, who: PeerAccess.identity(of: peer), dataRoot: dataRoot)
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: spec.data.path, isDirectory: &isDir), isDir.boolValue else {
            throw ProtocolError(.badSpec, "run spec field 'dataset.path': \(spec.data.path) is not a directory the daemon can see"
                                + (spec.data.kind == .cifar10 ? " (download CIFAR-10's binary version there first)" : ""))
        }
        return (spec.json, spec)
    }

    // MARK: submit, set, fork

    func submit(_ e: RunEdits, peer: Peer) throws -> Reply {
        if e.preset != nil && e.spec != nil { throw ProtocolError(.badArgument, "submit: give a preset or spec={...}, not both") }
        let (json, spec) = try buildSpec(base: e.spec, preset: e.preset, overrides: e.overrides, peer: peer)
        if e.dryRun {
            // Nothing is created: the canonical spec and what the run would do.
            let preview: SchedulePreview
            do { preview = try SchedulePreview(spec: spec) } catch let err as SpecError { throw ProtocolError(.badSpec, err.description) }
            return .ok(DryRunReply(spec: json, schedule: preview.json, scheduleText: preview.text()).json)
        }
        let source = JSON.object([("preset", e.preset.map { .string($0) } ?? .null),
                                  ("overrides", .object(e.overrides.map { ($0.path, $0.value) }))])
        return try create(json: json, spec: spec, source: source, edits: try resolveExecutor(e, peer: peer), peer: peer, forkOf: nil)
    }

    /// Creates a run. Its id and a fresh directory are reserved under the lock (mkdir is the
    /// reservation, so an existing directory is never reused or touched); its files are written
    /// outside the lock (spec.json, origin.json and, for a fork, the source checkpoint,
    /// hard-linked or else copied); then the record is committed. On any failure the new
    /// directory is removed and nothing is recorded.
    func create(json: JSON, spec: RunSpec, source: JSON, edits e: RunEdits, peer: Peer,
                forkOf: (RunID, String)?) throws -> Reply {
        let (id, order) = try lock.withLock { try reserveLocked() }
        let dir = runDirectory(id)
        var r = RunRecord(id: id, state: e.hold == true ? .held : .queued, owner: peer.uid, ownerName: peer.name, order: order,
                          spec: json, epochs: spec.epochs, created: now())
        r.group = e.group
        r.tags = e.tags ?? []
        r.priority = e.priority ?? 0
        r.source = source
        r.forkOf = forkOf?.0.description
        r.forkCheckpoint = forkOf?.1
        r.lastCheckpoint = forkOf?.1
        if e.executor == .slurm {
            r.executor = .slurm
            r.slurm = SlurmRun(options: e.slurm ?? SlurmOptions())
        }
        let fm = FileManager.default
        do {
            guard mkdir(dir.checkpoints, 0o755) == 0 else { throw FileError(path: dir.checkpoints, problem: String(cString: strerror(errno))) }
            try DurableFile.write(json.pretty + "\n", to: dir.spec)
            try DurableFile.write(r.originJSON.pretty + "\n", to: dir.origin)
            if let (source, file) = forkOf {
                try Daemon.linkOrCopy(runDirectory(source).checkpoint(file), to: dir.checkpoint(file))
            }
        } catch {
            try? fm.removeItem(atPath: dir.path)
            throw ProtocolError(.storage, "cannot create \(dir.path): \(error)")
        }
        return try lock.withLock {
            do { try commitLocked(r) } catch {
                try? fm.removeItem(atPath: dir.path)
                throw error
            }
            dispatchLocked()
            return .ok(SubmitReply(run: (runs[id] ?? r).info.short).json)
        }
    }

    /// The next id whose directory does not exist yet, with its directory created (lock held).
    func reserveLocked() throws -> (RunID, order: Int) {
        for _ in 0 ..< 1000 {
            let id = RunID(nextID)
            nextID += 1
            let path = runDirectory(id).path
            if mkdir(path, 0o755) == 0 {
                nextOrder += 1
                return (id, nextOrder - 1)
            }
            guard errno == EEXIST else {
                throw ProtocolError(.storage, "cannot create \(path): \(String(cString: strerror(errno)))")
            }
            logger.log(.warning, "\(path) exists although no run \(id) is recorded: that id is skipped and the directory left as it is")
        }
        throw ProtocolError(.storage, "no free run id: 1000 consecutive run directories already exist under \(config.runsDirectory)")
    }

    /// Checkpoint files never change once written, so a fork shares its source's file through a
    /// hard link; across filesystems (or where links are refused) it is copied durably.
    static func linkOrCopy(_ from: String, to: String) throws {
        if link(from, to) == 0 {
            DurableFile.syncDirectory((to as NSString).deletingLastPathComponent)
            return
        }
        let why = String(cString: strerror(errno))
        guard errno == EXDEV || errno == EPERM || errno == EMLINK || errno == ENOTSUP else { throw FileError(path: from, problem: "cannot link: \(why)") }
        try CheckpointStore.durableWrite(try CheckpointStore.readAll(from), to: to, crashHook: false)
    }

    func set(_ id: RunID, _ e: RunEdits, peer: Peer) throws -> Reply {
        let r0 = try existing(id)
        try requireOwner(r0, peer, "set")
        var r = r0
        if !e.overrides.isEmpty {
            guard (r.state == .queued || r.state == .held) && r.starts == 0 && r.forkOf == nil else {
                throw ProtocolError(.badState, "\(id) is \(r.state.rawValue)\(r.starts > 0 ? " and has started" : ""): its spec can no longer change; fork it instead")
            }
            let (json, _) = try buildSpec(base: r.spec, preset: nil, overrides: e.overrides, peer: peer)
            r.spec = json
            if let s = try? RunSpec(json: json) { r.epochs = s.epochs }
        }
        if let g = e.group { r.group = g.isEmpty ? nil : g }
        if let t = e.tags { r.tags = t }
        if let p = e.priority {
            try refuseSlurmPriority(id)
            guard !r.state.isTerminal else { throw ProtocolError(.badState, "\(id) is \(r.state.rawValue)") }
            r.priority = p
        }
        return try lock.withLock {
            guard let current = runs[id], current == r0 else { throw ProtocolError(.badState, "\(id) changed meanwhile; try again") }
            if r.spec != r0.spec {
                do { try DurableFile.write(r.spec.pretty + "\n", to: runDirectory(id).spec) } catch {
                    throw ProtocolError(.storage, "cannot write the new spec: \(error)")
                }
            }
            try commitLocked(r)
            dispatchLocked()
            return .ok(r.info.json)
        }
    }

    /// Forks answer later: reading and verifying a checkpoint (about 90 MB for VGG11) happens
    /// on a thread of its own, so neither the control loop nor the daemon's lock waits for it.
    func fork(_ id: RunID, checkpoint: String?, _ e: RunEdits, peer: Peer) throws -> HandlerResult {
        let src = try existing(id)
        let dir = runDirectory(id)
        let files = CheckpointStore(directory: dir.checkpoints).list()
        guard let entry = checkpoint.map({ name in files.first { $0.file == name } }) ?? files.last else {
            if let checkpoint {
                throw ProtocolError(.notFound, "\(id) has no checkpoint \(checkpoint); it has: \(files.map(\.file).joined(separator: ", "))")
            }
            throw ProtocolError(.notFound, "\(id) has no checkpoint to fork from yet")
        }
        let (json, spec) = try buildSpec(base: src.spec, preset: nil, overrides: e.overrides, peer: peer)
        var edits = try resolveExecutor(Daemon.forkExecutor(e, source: src), peer: peer)
        if edits.group == nil { edits.group = src.group }
        if edits.tags == nil { edits.tags = src.tags }
        let source = JSON.object([("fork_of", .string(id.description)), ("checkpoint", .string(entry.file)),
                                  ("overrides", .object(e.overrides.map { ($0.path, $0.value) }))])
        let token = lock.withLock { newTokenLocked() }
        let work = Thread { [self, edits] in
            let reply: Reply
            do {
                _ = try CheckpointFile.decode(CheckpointStore.readAll(dir.checkpoint(entry.file)))
                reply = try create(json: json, spec: spec, source: source, edits: edits, peer: peer, forkOf: (id, entry.file))
            } catch let error as ProtocolError {
                reply = .error(error)
            } catch {
                reply = .error(ProtocolError(.badState, "\(id)'s checkpoint \(entry.file) does not verify (\(error)); choose another with checkpoint="))
            }
            lock.withLock { resolveLocked(token, reply) }
        }
        work.name = "fork \(id)"
        work.start()
        return .deferred(token)
    }

    /// A fork runs where its source ran unless the request names an executor; a fork of a Slurm
    /// run has the source's Slurm options (not its batch: it is submitted alone) under the
    /// request's `slurm.*` options.
    static func forkExecutor(_ e: RunEdits, source src: RunRecord) -> RunEdits {
        var e = e
        if e.executor == nil { e.executor = src.executor }
        if e.executor == .slurm, src.executor == .slurm {
            var inherited = src.slurm?.options ?? SlurmOptions()
            inherited.batch = nil
            e.slurm = inherited.overlaid(with: e.slurm ?? SlurmOptions())
        }
        return e
    }

    // MARK: state changes

    /// A direct state change of a run that is not running.
    func transition(_ id: RunID, peer: Peer, verb: String, to: RunState, from: Set<RunState>, already: Set<RunState>,
                    hint: [RunState: String]) throws -> Reply {
        let r0 = try existing(id)
        try requireOwner(r0, peer, verb)
        return try lock.withLock {
            guard var r = runs[id] else { throw ProtocolError(.notFound, "no run \(id)") }
            if already.contains(r.state) { return .ok(withChanged(r, false)) }
            guard from.contains(r.state) else {
                throw ProtocolError(.badState, "cannot \(verb) \(id): it is \(r.state.rawValue)" + (hint[r.state].map { "; \($0)" } ?? ""))
            }
            r.state = to
            if to == .queued { r.reason = nil; r.finished = nil }
            try commitLocked(r)
            dispatchLocked()
            return .ok(withChanged(runs[id] ?? r, true))
        }
    }

    /// The full record with `changed` first: the reply of a request that changes a run's state.
    func withChanged(_ r: RunRecord, _ changed: Bool) -> JSON {
        var info = r.info
        info.changed = changed
        return info.json
    }

    func pause(_ id: RunID, peer: Peer) throws -> HandlerResult {
        let r0 = try existing(id)
        try requireOwner(r0, peer, "pause")
        return try lock.withLock {
            guard var r = runs[id] else { throw ProtocolError(.notFound, "no run \(id)") }
            switch r.state {
            case .paused: return .reply(.ok(withChanged(r, false)))
            case .running:
                guard let w = workers[id] else { throw ProtocolError(.internal, "\(id) is running without a worker") }
                if w.stop == nil {
                    r.pending = .pause
                    try commitLocked(r)
                    w.stop = .pause
                } else if w.stop != .pause {
                    throw ProtocolError(.badState, "\(id) is already stopping (\(r.pending?.rawValue ?? "shutdown"))")
                }
                let token = newTokenLocked()
                w.stopWaiters.append(token)
                return .deferred(token)
            default:
                throw ProtocolError(.badState, "cannot pause \(id): it is \(r.state.rawValue)" + (r.state == .queued ? "; use hold to keep it from starting" : ""))
            }
        }
    }

    func cancel(_ id: RunID, peer: Peer) throws -> HandlerResult {
        let r0 = try existing(id)
        try requireOwner(r0, peer, "cancel")
        return try lock.withLock {
            guard var r = runs[id] else { throw ProtocolError(.notFound, "no run \(id)") }
            switch r.state {
            case .cancelled: return .reply(.ok(withChanged(r, false)))
            case .completed: throw ProtocolError(.badState, "cannot cancel \(id): it has completed")
            case .running:
                guard let w = workers[id] else { throw ProtocolError(.internal, "\(id) is running without a worker") }
                if case .cancel = w.stop {} else {
                    r.pending = .cancel
                    try commitLocked(r)
                    w.stop = .cancel(peer.uid)
                }
                let token = newTokenLocked()
                w.stopWaiters.append(token)
                return .deferred(token)
            default:
                r.state = .cancelled
                r.cancelledBy = peer.uid
                r.finished = now()
                try commitLocked(r)
                return .reply(.ok(withChanged(r, true)))
            }
        }
    }

    func checkpoint(_ id: RunID, peer: Peer) throws -> HandlerResult {
        let r0 = try existing(id)
        try requireOwner(r0, peer, "checkpoint")
        return try lock.withLock {
            guard let w = workers[id] else {
                let state = runs[id]?.state.rawValue ?? "unknown"
                throw ProtocolError(.badState, "\(id) is \(state), not running; its last checkpoint is \(runs[id]?.lastCheckpoint ?? "none")")
            }
            let token = newTokenLocked()
            w.checkpointWaiters.append(token)
            return .deferred(token)
        }
    }

    func drain(_ mode: DrainMode, peer: Peer) throws -> Reply {
        guard peer.uid == 0 || peer.uid == getuid() || peer.admin else {
            throw ProtocolError(.permissionDenied, "drain stops the daemon for everyone: only root, the daemon's user or the admin group may")
        }
        return lock.withLock {
            switch mode {
            case .off:
                if draining != nil {
                    emitLocked("daemon", run: nil, fields: [("what", .string("drain withdrawn"))], message: "drain withdrawn: dispatching again")
                }
                draining = nil
                dispatchLocked()
            case .finish:
                draining = .finish
                emitLocked("daemon", run: nil, fields: [("what", .string("draining"))], message: "draining: no new runs; exiting once \(workers.count) running run(s) complete")
            case .now:
                draining = .now
                beginStopLocked("drain now")
            }
            statusDirty = true
            wake()
            return .ok(DrainReply(draining: draining, running: workers.count).json)
        }
    }

    // MARK: reads

    func list(_ f: ListFilter) throws -> Reply {
        var ownerUID: UInt32?
        if let o = f.owner {
            if let n = UInt32(o) { ownerUID = n } else if let pw = getpwnam(o) { ownerUID = pw.pointee.pw_uid } else {
                throw ProtocolError(.notFound, "no user '\(o.prefix(60))'")
            }
        }
        let rows = lock.withLock {
            runs.values.filter { r in
                (f.states.isEmpty || f.states.contains(r.state)) && (f.group == nil || r.group == f.group)
                    && (f.tag.map { r.tags.contains($0) } ?? true) && (ownerUID == nil || r.owner == ownerUID)
            }.sorted { $0.id < $1.id }.map(\.info.short)
        }
        return .ok(RunList(runs: rows).json)
    }

    func show(_ id: RunID) throws -> RunInfo {
        let r = try existing(id)
        let dir = runDirectory(id)
        var info = r.info
        info.shown = RunInfo.Shown(
            directory: dir.path, slurmStatus: r.executor == .slurm ? r.slurm.map { Daemon.slurmStatus(r, $0) } : nil,
            checkpoints: CheckpointStore(directory: dir.checkpoints).list().map(\.file),
            summary: (try? String(contentsOfFile: dir.summary, encoding: .utf8)).flatMap { try? JSON.parse($0) })
        return info
    }

    func logs(_ id: RunID, tail: Int) throws -> LogsReply {
        _ = try existing(id)
        let path = runDirectory(id).log
        var lines: [String] = []
        if let data = FileManager.default.contents(atPath: path) {
            // Only the end of a long log is read.
            let bytes = data.count > tail * 400 + 65536 ? data.suffix(tail * 400 + 65536) : data[...]
            let all = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
            lines = all.suffix(tail).map(String.init)
        }
        // A Slurm run's log is its task's output file.
        let slurmLines = slurmOutputLines(id)
        if !slurmLines.isEmpty { lines = Array((lines + slurmLines).suffix(tail)) }
        return LogsReply(run: id, lines: lines)
    }

    func metrics(_ id: RunID, kind: MetricsKind, since: Int) throws -> MetricsReply {
        _ = try existing(id)
        let path = runDirectory(id).metrics
        var rows: [JSON] = []
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                guard let j = try? JSON.parse(String(line)), let epoch = j["epoch"]?.intValue, epoch > since else { continue }
                switch kind {
                case .epochs: rows.append(j)
                case .prunes:
                    guard case .object(var pairs)? = j["prune_event"] else { continue }
                    pairs.insert(("epoch", .number(Double(epoch))), at: 0)
                    rows.append(.object(pairs))
                }
            }
        }
        return MetricsReply(run: id, kind: kind, rows: rows)
    }
}

extension ProtocolError {
    /// A spec's source or override problem as the protocol reports it.
    init(_ e: SpecSourceError) {
        switch e.kind {
        case .unknownPreset: self.init(.notFound, e.message)
        case .noSource: self.init(.badArgument, e.message)
        case .badOverride: self.init(.badSpec, e.message)
        }
    }
}
