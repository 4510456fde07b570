// The Slurm executor: runs whose executor is `slurm` execute as tasks of `sbatch --array` jobs
// running `pruned run` on the compute nodes (SlurmTask.script). One thread of its own submits,
// polls and controls them: every Slurm command runs there, off the daemon's lock and off the
// control thread. The daemon's lock is taken only to read and record runs.
//
// States: a Slurm run is `queued` until its task starts (with `slurm.active` while it is pending in
// Slurm), `running` while squeue says RUNNING, and back to `queued` when Slurm requeues it
// (preemption, time limit). Whether it finished is decided from DIR/summary.json only.
// A task that ended without summary.json is: failed when DIR/progress.json says failed; paused or
// cancelled when that was asked for (DIR/slurm-cancel + scancel); otherwise it vanished and is
// resubmitted from its checkpoint up to `slurmRetries` times, then the run fails with the reason.
// The daemon stopping does not touch Slurm jobs; at start the poller finds them again.
import Checkpointing
import Control
import Foundation
import PrunedJSON
import RunLayout
import Training

final class SlurmExecutor: @unchecked Sendable {
    unowned let daemon: Daemon
    private let wakeup = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    enum Action {
        case scancel(RunID, task: String)
        case hold(RunID, task: String, token: Int?)
        case release(RunID, task: String, token: Int)
    }

    // Guarded by daemon.lock.
    var actions: [Action] = []
    var stopped = false
    /// pause/cancel requests waiting for their task to end.
    var stopWaiters: [RunID: [Int]] = [:]
    /// Consecutive polls that found a run's task ended (two are needed: requeues pass through
    /// states that look final for a moment).
    var endedPolls: [RunID: Int] = [:]
    var backoffUntil = 0.0
    var backoff = 0.0

    init(daemon: Daemon) { self.daemon = daemon }

    func start() {
        let t = Thread { [self] in loop() }
        t.name = "slurm executor"
        t.start()
    }

    func wake() { wakeup.signal() }

    /// Stops the thread (Slurm jobs are left alone); waits for a command in flight.
    func stop() {
        daemon.lock.withLock { stopped = true }
        wakeup.signal()
        _ = finished.wait(timeout: .now() + 90)
    }

    private func loop() {
        defer { finished.signal() }
        while !daemon.lock.withLock({ stopped }) {
            performActions()
            findLostSubmissions()
            submitQueued()
            poll()
            _ = wakeup.wait(timeout: .now() + daemon.config.slurmPollInterval)
        }
    }

    // MARK: actions (scancel, hold, release)

    private func performActions() {
        let todo: [Action] = daemon.lock.withLock { defer { actions = [] }; return actions }
        for a in todo {
            switch a {
            case .scancel(let id, let task):
                let r = try? SlurmCommands.run(["scancel", task], timeout: 30)
                if let r, r.status != 0 {
                    daemon.logger.log(.warning, "\(id) scancel \(task) failed: \(r.message)", fields: [("RUN_ID", id.description)])
                }
                wake()
            case .hold(let id, let task, let token):
                let r = Result { try SlurmCommands.run(["scontrol", "uhold", task], timeout: 30) }
                daemon.lock.withLock {
                    guard var rec = daemon.runs[id] else { return }
                    switch r {
                    case .success(let out) where out.status == 0:
                        if rec.state == .queued { rec.state = .held; daemon.commitQuietlyLocked(rec) }
                        if let token { daemon.resolveLocked(token, .ok(daemon.withChanged(rec, true))) }
                    case .success(let out):
                        if let token { daemon.resolveLocked(token, .error(ProtocolError(.badState, "scontrol uhold \(task) failed: \(out.message)"))) }
                    case .failure(let e):
                        if let token { daemon.resolveLocked(token, .error(ProtocolError(.badState, "scontrol uhold \(task) failed: \(e)"))) }
                    }
                }
            case .release(let id, let task, let token):
                let r = Result { try SlurmCommands.run(["scontrol", "release", task], timeout: 30) }
                daemon.lock.withLock {
                    guard var rec = daemon.runs[id] else { return }
                    switch r {
                    case .success(let out) where out.status == 0:
                        if rec.state == .held { rec.state = .queued; daemon.commitQuietlyLocked(rec) }
                        daemon.resolveLocked(token, .ok(daemon.withChanged(rec, true)))
                    case .success(let out):
                        daemon.resolveLocked(token, .error(ProtocolError(.badState, "scontrol release \(task) failed: \(out.message)")))
                    case .failure(let e):
                        daemon.resolveLocked(token, .error(ProtocolError(.badState, "scontrol release \(task) failed: \(e)")))
                    }
                }
            }
        }
    }

    // MARK: submitting

    struct GroupKey: Hashable {
        var options: SlurmOptions
        var owner: UInt32
        /// A run submitted before (resumed, or resubmitted after vanishing) goes alone.
        var alone: RunID?
    }

    private func submitQueued() {
        let settle = 1.0
        let groups: [[RunRecord]] = daemon.lock.withLock {
            let t = daemon.now()
            guard daemon.draining == nil, daemon.stopping == nil, t >= backoffUntil else { return [] }
            let queued = daemon.runs.values.filter { $0.executor == .slurm && $0.state == .queued && $0.slurm?.active != true
                && $0.slurm?.submission == nil }
            let byKey = Dictionary(grouping: queued) { r in
                GroupKey(options: r.slurm?.options ?? SlurmOptions(), owner: r.owner,
                         alone: (r.slurm?.submitAttempts ?? 0) > 0 ? r.id : nil)
            }
            // Runs of one sweep arrive one request at a time: wait until a group has settled.
            return byKey.values.filter { g in g.allSatisfy { t - $0.created >= settle } }
                .map { $0.sorted { ($0.priority, -$0.order) > ($1.priority, -$1.order) } }
                .sorted { ($0.first?.order ?? 0) < ($1.first?.order ?? 0) }
        }
        for g in groups { submit(g) }
    }

    /// The sbatch command line for `count` tasks (pure; unit-tested).
    static func sbatchArguments(options o: SlurmOptions, count: Int, signalMargin: Int, jobName: String, outputDirectory: String,
                                script: String, runsFile: String, defaultCPUs: Int) -> [String] {
        var argv = ["sbatch", "--array=0-\(max(count - 1, 0))" + (o.maxConcurrent.map { "%\($0)" } ?? ""), "--requeue", "--open-mode=append",
                    "--signal=B:USR1@\(signalMargin)", "--parsable", "--job-name=\(jobName)",
                    "--output=\(outputDirectory)/slurm-%A_%a.out", "--cpus-per-task=\(o.cpusPerTask ?? defaultCPUs)"]
        if let v = o.partition { argv.append("--partition=\(v)") }
        if let v = o.time { argv.append("--time=\(v)") }
        if let v = o.mem { argv.append("--mem=\(v)") }
        if let v = o.account { argv.append("--account=\(v)") }
        argv += o.sbatchArgs
        argv += [script, runsFile]
        return argv
    }

    /// Seconds sbatch (and the squeue looking for a lost submission) may take.
    static let sbatchTimeout = 60.0

    /// This state directory's id in job names (STATE/slurm/state-id, created once): tells this
    /// daemon's jobs from those of another daemon of the same user.
    private lazy var stateID: String = {
        let path = daemon.config.stateDirectory + "/slurm/state-id"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !id.isEmpty, id.count <= 16, id.allSatisfy({ $0.isASCII && ($0.isNumber || ("a" ... "f").contains($0)) }) { return id }
        }
        let id = (0 ..< 4).map { _ in String(format: "%02x", UInt8.random(in: 0 ... 255)) }.joined()
        try? FileManager.default.createDirectory(atPath: daemon.config.stateDirectory + "/slurm", withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o755])
        do { try DurableFile.write(id + "\n", to: path) } catch {
            daemon.logger.log(.warning, "cannot write \(path) (\(error)); job names use \(id) until the daemon restarts")
        }
        return id
    }()

    private func submit(_ snapshot: [RunRecord]) {
        let config = daemon.config
        let fm = FileManager.default
        let slurmDir = config.stateDirectory + "/slurm"
        let script = slurmDir + "/pruned-array.sbatch"
        let stateID = self.stateID
        // Record the submission durably before sbatch runs: a daemon killed while sbatch is in
        // flight then looks for the job at its next start instead of submitting it again.
        let prepared: (group: [RunRecord], name: String, batchDir: String)? = daemon.lock.withLock {
            let current = snapshot.compactMap { daemon.runs[$0.id] }
                .filter { $0.state == .queued && $0.slurm?.active != true && $0.slurm?.submission == nil }
            guard let first = current.first else { return nil }
            let name = "pruned-\(stateID)-\(first.id)-\((first.slurm?.submitAttempts ?? 0) + 1)"
            let batchDir = slurmDir + "/" + name
            let since = daemon.now()
            var recorded: [RunRecord] = []
            for (i, r0) in current.enumerated() {
                var r = r0
                var s = r.slurm ?? SlurmRun(options: SlurmOptions())
                s.submission = SlurmRun.Submission(jobName: name, directory: batchDir, since: since)
                s.arrayIndex = i
                r.slurm = s
                do { try daemon.commitLocked(r) } catch {
                    // Not durable: submit none of them (a crash could submit them twice); retried at the next poll.
                    for var back in recorded {
                        back.slurm?.submission = nil
                        daemon.commitQuietlyLocked(back)
                    }
                    return nil
                }
                recorded.append(r)
            }
            return (recorded, name, batchDir)
        }
        guard let (group, name, batchDir) = prepared, let first = group.first else { return }
        let runsFile = batchDir + "/runs.txt"
        var outcome: Swift.Result<SlurmCommands.Result, Error>
        do {
            try fm.createDirectory(atPath: batchDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            if (try? String(contentsOfFile: script, encoding: .utf8)) != SlurmTask.script {
                try DurableFile.write(SlurmTask.script, to: script)
                chmod(script, 0o755)
            }
            for r in group {
                let dir = daemon.runDirectory(r.id)
                try? fm.removeItem(atPath: dir.slurmCancel)
                try? fm.removeItem(atPath: dir.progress)
                if CheckpointStore(directory: dir.checkpoints).list().isEmpty {
                    // Nothing to resume: a previous attempt's partial metrics must not block a fresh start.
                    try? fm.removeItem(atPath: dir.metrics)
                }
            }
            try DurableFile.write(group.map { daemon.runDirectory($0.id).path }.joined(separator: "\n") + "\n", to: runsFile)
            let argv = SlurmExecutor.sbatchArguments(options: first.slurm?.options ?? SlurmOptions(), count: group.count,
                                                     signalMargin: config.slurmSignalMargin, jobName: name,
                                                     outputDirectory: batchDir, script: script, runsFile: runsFile,
                                                     defaultCPUs: config.threadsPerRun)
            outcome = .success(try SlurmCommands.run(argv, environment: ["PRUNED_BIN": config.slurmPrunedBin], timeout: SlurmExecutor.sbatchTimeout))
        } catch {
            outcome = .failure(error)
        }
        daemon.lock.withLock {
            let t = daemon.now()
            var unreachable: String?
            var refused: String?
            var jobID: String?
            var lost = false
            switch outcome {
            case .success(let res) where res.status == 0:
                jobID = SlurmCommands.parseSbatch(res.stdout)
                if jobID == nil { refused = "sbatch printed no job id: \(res.stdout.prefix(200))" }
            case .success(let res) where res.timedOut:
                // sbatch may have submitted the job before it stopped answering.
                lost = true
                unreachable = "sbatch did not answer within \(Int(SlurmExecutor.sbatchTimeout)) s"
            case .success(let res) where SlurmCommands.isUnreachable(res):
                unreachable = res.message
            case .success(let res):
                refused = res.message.isEmpty ? "sbatch exited with status \(res.status)" : res.message
            case .failure(let e):
                refused = "\(e)"
            }
            if unreachable != nil { backOffLocked(t) } else { backoff = 0 }
            if let jobID {
                attachLocked(group.map(\.id), jobID: jobID, batchDir: batchDir)
                return
            }
            for r0 in group {
                guard var r = daemon.runs[r0.id], var s = r.slurm, s.submission?.jobName == name else { continue }
                if let unreachable {
                    if lost {
                        s.note = "slurmctld unreachable (\(unreachable)); job \(name) is looked for in \(Int(backoff)) s before the run is submitted again"
                    } else {
                        s.submission = nil
                        s.note = "slurmctld unreachable (\(unreachable)); sbatch is tried again in \(Int(backoff)) s"
                    }
                } else {
                    s.submission = nil
                    if let refused, r.state == .queued {
                        r.state = .failed
                        r.reason = "sbatch refused the job: \(refused)"
                        r.finished = t
                    }
                }
                r.slurm = s
                daemon.commitQuietlyLocked(r)
            }
        }
    }

    private func backOffLocked(_ t: Double) {
        backoff = min(max(backoff * 2, 5), 300)
        backoffUntil = t + backoff
    }

    /// Records that the runs `ids` (each at the array index recorded with its submission) are
    /// tasks of job `jobID`, and carries out what was asked meanwhile (lock held).
    private func attachLocked(_ ids: [RunID], jobID: String, batchDir: String, found: [Int: SlurmCommands.Task] = [:]) {
        for id in ids {
            guard var r = daemon.runs[id] else { continue }
            var s = r.slurm ?? SlurmRun(options: SlurmOptions())
            let i = s.arrayIndex ?? 0
            s.jobID = jobID
            s.arrayIndex = i
            s.active = true
            s.state = found[i]?.state ?? "PENDING"
            s.node = nil
            s.slurmReason = nil
            s.note = nil
            s.submission = nil
            s.submitAttempts += 1
            s.output = batchDir + "/slurm-\(jobID)_\(i).out"
            r.slurm = s
            daemon.emitLocked("slurm", run: r.id, fields: [("what", .string("submitted")), ("job_id", .string(jobID)),
                                                           ("array_index", .number(Double(i)))],
                              message: "\(r.id) submitted to Slurm as \(jobID)_\(i)")
            // Changed meanwhile (the handlers do not wait for sbatch): carry it out in Slurm.
            if r.state == .cancelled || r.pending == .cancel {
                FileManager.default.createFile(atPath: daemon.runDirectory(r.id).slurmCancel, contents: nil)
                actions.append(.scancel(r.id, task: "\(jobID)_\(i)"))
            } else if r.state == .held {
                actions.append(.hold(r.id, task: "\(jobID)_\(i)", token: nil))
            }
            daemon.commitQuietlyLocked(r)
        }
        wake()
    }

    /// Runs whose sbatch answer was never recorded (the daemon died during sbatch, or sbatch
    /// timed out): looks for their job by name and re-attaches to it; when there is none (and
    /// no sbatch of the submission can still be running), the runs are submitted again.
    private func findLostSubmissions() {
        let lost: [String: [RunRecord]] = daemon.lock.withLock {
            guard daemon.stopping == nil, daemon.now() >= backoffUntil else { return [:] }
            let runs = daemon.runs.values.filter { $0.executor == .slurm && $0.slurm?.active != true && $0.slurm?.submission != nil }
            return Dictionary(grouping: runs) { $0.slurm?.submission?.jobName ?? "" }
        }
        for (name, group) in lost.sorted(by: { $0.key < $1.key }) {
            guard let submission = group.first?.slurm?.submission else { continue }
            let res = Result { try SlurmCommands.run(["squeue", "-h", "-r", "-t", "all", "--me", "--name=\(name)", "-o", "%i|%T|%N|%r"],
                                                     timeout: 30) }
            daemon.lock.withLock {
                let t = daemon.now()
                let ids = group.map(\.id)
                func note(_ text: String) {
                    for id in ids where daemon.runs[id]?.slurm?.submission?.jobName == name { daemon.runs[id]?.slurm?.note = text }
                    daemon.statusDirty = true
                }
                switch res {
                case .success(let out) where out.status == 0:
                    let tasks = SlurmCommands.parseSqueue(out.stdout)
                    if let jobID = tasks.first?.jobID {
                        daemon.logger.log(.notice, "found job \(jobID) (\(name)) whose submission was not recorded: re-attaching \(ids.map(\.description).joined(separator: ", "))")
                        let found = Dictionary(tasks.filter { $0.jobID == jobID }.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
                        attachLocked(ids.filter { daemon.runs[$0]?.slurm?.submission?.jobName == name }, jobID: jobID,
                                     batchDir: submission.directory, found: found)
                    } else if t - submission.since < SlurmExecutor.sbatchTimeout + 30 {
                        // An sbatch of this submission may still be running (orphaned by a crash): wait it out.
                        note("looking for job \(name) (its sbatch answer was not recorded) before submitting again")
                    } else {
                        daemon.logger.log(.notice, "no job \(name) in Slurm: submitting \(ids.map(\.description).joined(separator: ", ")) again")
                        for id in ids {
                            guard var r = daemon.runs[id], r.slurm?.submission?.jobName == name else { continue }
                            r.slurm?.submission = nil
                            r.slurm?.note = nil
                            daemon.commitQuietlyLocked(r)
                        }
                        wake()
                    }
                case .success(let out):
                    if SlurmCommands.isUnreachable(out) { backOffLocked(t) }
                    note("slurmctld unreachable (\(out.timedOut ? "squeue did not answer" : out.message)); job \(name) is looked for again in \(Int(backoff)) s")
                case .failure(let e):
                    note("cannot look for job \(name): \(e)")
                }
            }
        }
    }

    // MARK: watching

    struct Observation {
        var summary: Bool
        var progress: JSON?
        var rows: [JSON]
        var outputTail: [String]
    }

    private func poll() {
        let watched: [RunRecord] = daemon.lock.withLock {
            daemon.runs.values.filter { $0.executor == .slurm && $0.slurm?.active == true }
        }
        guard !watched.isEmpty else { return }
        let squeue = Result { try SlurmCommands.run(["squeue", "-h", "-r", "-t", "all", "--me", "-o", "%i|%T|%N|%r"], timeout: 30) }
        var tasks: [String: SlurmCommands.Task]?
        var squeueProblem: String?
        switch squeue {
        case .success(let r) where r.status == 0:
            tasks = Dictionary(SlurmCommands.parseSqueue(r.stdout).map { ("\($0.jobID)_\($0.index)", $0) }, uniquingKeysWith: { a, _ in a })
        case .success(let r): squeueProblem = r.message
        case .failure(let e): squeueProblem = "\(e)"
        }
        var seen: [RunID: Observation] = [:]
        for r in watched {
            let dir = daemon.runDirectory(r.id)
            let fm = FileManager.default
            let progress = (try? String(contentsOfFile: dir.progress, encoding: .utf8)).flatMap { try? JSON.parse($0) }
            var rows: [JSON] = []
            if let text = try? String(contentsOfFile: dir.metrics, encoding: .utf8) {
                for line in text.split(separator: "\n") {
                    if let j = try? JSON.parse(String(line)), let e = j["epoch"]?.intValue, e > r.epochsDone { rows.append(j) }
                }
            }
            var tail: [String] = []
            if let out = r.slurm?.output, let data = fm.contents(atPath: out) {
                tail = String(decoding: data.suffix(4096), as: UTF8.self).split(separator: "\n").suffix(3).map(String.init)
            }
            seen[r.id] = Observation(summary: fm.fileExists(atPath: dir.summary), progress: progress, rows: rows, outputTail: tail)
        }
        daemon.lock.withLock {
            for r0 in watched {
                guard let obs = seen[r0.id], var r = daemon.runs[r0.id], var s = r.slurm, s.active else { continue }
                apply(&r, &s, obs, tasks: tasks, squeueProblem: squeueProblem)
            }
        }
    }

    /// Records one observation of a watched run (lock held).
    private func apply(_ r: inout RunRecord, _ s: inout SlurmRun, _ obs: Observation, tasks: [String: SlurmCommands.Task]?, squeueProblem: String?) {
        let before = r
        let id = r.id
        emitEpochs(&r, obs.rows)
        if let p = obs.progress {
            if let n = p["slurm"]?["restart_count"]?.intValue { s.restarts = max(s.restarts, n) }
            if p["state"]?.stringValue == "running" {
                if let v = p["epochs_done"]?.intValue { r.epochsDone = max(r.epochsDone, v) }
                if let v = p["step"]?.intValue { r.step = v }
                if let v = p["steps_per_epoch"]?.intValue { r.stepsPerEpoch = v }
                if let v = p["images_per_second"]?.doubleValue { r.imagesPerSecond = v }
            }
            if let c = p["checkpoint"]?.stringValue { r.lastCheckpoint = c }
        }
        let task = s.taskID.flatMap { tasks?[$0] }
        let ended = tasks != nil && (task == nil || SlurmCommands.endedStates.contains(task?.state ?? ""))
        if obs.summary {
            r.state = .completed
            r.epochsDone = r.epochs
            r.step = 0
            r.finished = daemon.now()
            r.pending = nil
            r.reason = nil
            s.active = false
            s.state = task?.state ?? "COMPLETED"
        } else if let task, !ended {
            endedPolls[id] = nil
            s.node = task.node.isEmpty ? s.node : task.node
            s.slurmReason = task.state == "PENDING" ? task.reason : nil
            if task.state == "RUNNING" && r.state == .queued {
                r.state = .running
                r.started = daemon.now()
                r.starts += 1
                r.reason = nil
                let resumed = r.lastCheckpoint != nil || r.epochsDone > 0
                var fields: [(String, JSON)] = [("epochs_done", .number(Double(r.epochsDone))), ("step", .number(Double(r.step))),
                                                ("slurm_task", .string(s.taskID ?? "")), ("node", .string(task.node))]
                if resumed, let c = r.lastCheckpoint { fields.append(("checkpoint", .string(c))) }
                daemon.emitLocked(resumed ? "resumed" : "started", run: id, fields: fields,
                                  message: "\(id) \(resumed ? "resumed" : "started") in Slurm task \(s.taskID ?? "") on \(task.node)")
            } else if task.state == "PENDING" && r.state == .running {
                // Requeued by Slurm or by the task itself (preemption, time limit).
                r.state = .queued
                if s.state == "RUNNING" { s.restarts += 1 }
            }
            s.state = task.state
        } else if ended {
            endedPolls[id, default: 0] += 1
            if endedPolls[id, default: 0] >= 2 {
                endedPolls[id] = nil
                s.active = false
                s.state = task?.state ?? "ENDED"
                let where_ = "Slurm task \(s.taskID ?? "?")" + (s.node.map { " on \($0)" } ?? "")
                let tail = obs.outputTail.isEmpty ? "" : "; task output: " + obs.outputTail.joined(separator: " | ")
                if obs.progress?["state"]?.stringValue == "failed" {
                    r.state = .failed
                    r.reason = "pruned run failed in \(where_): \(obs.progress?["reason"]?.stringValue ?? "no reason given")"
                    r.finished = daemon.now()
                } else if r.pending == .pause {
                    r.state = .paused
                } else if r.pending == .cancel || r.state == .cancelled {
                    r.state = .cancelled
                    r.finished = r.finished ?? daemon.now()
                } else if s.resubmits < daemon.config.slurmRetries {
                    s.resubmits += 1
                    r.state = .queued
                    r.reason = "\(where_) ended (\(s.state ?? "gone")) without finishing; resubmitted from its checkpoint (\(s.resubmits) of \(daemon.config.slurmRetries))\(tail)"
                    daemon.logger.log(.warning, "\(id): \(r.reason ?? "")", fields: [("RUN_ID", id.description)])
                } else {
                    r.state = .failed
                    r.reason = "\(where_) ended (\(s.state ?? "gone")) without finishing, after \(s.resubmits) resubmissions\(tail)"
                    r.finished = daemon.now()
                }
                r.pending = nil
            }
        } else if let squeueProblem {
            s.note = "squeue failed (\(squeueProblem)); retrying"
        }
        if tasks != nil, squeueProblem == nil, s.note?.hasPrefix("squeue failed") == true { s.note = nil }
        r.slurm = s
        if r.state != before.state || r.slurm?.active != before.slurm?.active || r.slurm?.restarts != before.slurm?.restarts
            || r.slurm?.node != before.slurm?.node || r.slurm?.state != before.slurm?.state {
            daemon.commitQuietlyLocked(r)
        } else {
            daemon.runs[id] = r
            daemon.statusDirty = true
        }
        if !s.active {
            let reply: Reply = .ok(daemon.withChanged(r, true))
            for t in stopWaiters.removeValue(forKey: id) ?? [] { daemon.resolveLocked(t, reply) }
        }
    }

    /// The `epoch` and `prune` events of new metrics.jsonl rows, as local runs emit them.
    private func emitEpochs(_ r: inout RunRecord, _ rows: [JSON]) {
        for row in rows.sorted(by: { ($0["epoch"]?.intValue ?? 0) < ($1["epoch"]?.intValue ?? 0) }) {
            guard let epoch = row["epoch"]?.intValue, epoch > r.epochsDone else { continue }
            func n(_ k: String) -> JSON { row[k].flatMap { $0.doubleValue.map { JSON.number($0) } } ?? .null }
            r.epochsDone = epoch
            r.step = 0
            if let acc = row["test_acc"]?.doubleValue {
                r.lastTestAcc = acc
                r.bestTestAcc = max(r.bestTestAcc ?? -1, acc)
            }
            var fields: [(String, JSON)] = [
                ("epoch", .number(Double(epoch))), ("epochs", .number(Double(r.epochs))),
                ("train_loss", n("train_loss")), ("train_acc", n("train_acc")), ("test_loss", n("test_loss")), ("test_acc", n("test_acc")),
                ("lr", n("lr")), ("seconds", n("seconds")), ("images_per_second", n("train_images_per_second")),
            ]
            let prune = row["prune_event"]
            if let prune { fields.append(("instability", prune["instability"] ?? .null)) }
            daemon.emitLocked("epoch", run: r.id, fields: fields,
                              message: String(format: "%@ epoch %d/%d test acc %.2f%% (Slurm)", r.id.description, epoch, r.epochs,
                                              row["test_acc"]?.doubleValue ?? 0))
            if let prune {
                r.lastInstability = prune["instability"]?.doubleValue
                daemon.emitLocked("prune", run: r.id, fields: Daemon.pruneEventFields(epoch: epoch, prune))
            }
        }
    }
}

// MARK: handler hooks

extension Daemon {
    /// The executor and Slurm options a new run gets: the request's, over the daemon's defaults.
    /// Refuses Slurm when the daemon cannot submit for this peer.
    func resolveExecutor(_ e: RunEdits, peer: Peer) throws -> RunEdits {
        var e = e
        let executor = e.executor ?? config.executor
        e.executor = executor
        guard executor == .slurm else { e.slurm = nil; return e }
        guard peer.uid == getuid() else {
            let me = ControlServer.userName(getuid())
            throw ProtocolError(.permissionDenied, "the daemon submits Slurm jobs as its own user (\(me)); run a user-mode daemon "
                                + "(`pruned daemon` as yourself on the login node) to submit Slurm runs as \(peer.name)")
        }
        guard SlurmCommands.which("sbatch") != nil else {
            throw ProtocolError(.badState, "cannot submit to Slurm: sbatch is not on the daemon's PATH ("
                                + (ProcessInfo.processInfo.environment["PATH"] ?? "unset") + "); install Slurm's client commands or use executor=local")
        }
        var o = config.slurmDefaults.overlaid(with: e.slurm ?? SlurmOptions())
        if o.cpusPerTask == nil { o.cpusPerTask = config.threadsPerRun }
        e.slurm = o
        return e
    }

    /// pause and cancel of a Slurm run whose task is in Slurm: write DIR/slurm-cancel, scancel the
    /// task, answer once it has ended. nil when the run is not in Slurm (the local rules apply).
    func slurmStop(_ id: RunID, peer: Peer, cancel: Bool) throws -> HandlerResult? {
        guard let ex = slurmExecutor else { return nil }
        return try lock.withLock {
            guard var r = runs[id], r.executor == .slurm, var s = r.slurm, s.active, let task = s.taskID else { return nil }
            if let p = r.pending, p != (cancel ? .cancel : .pause) {
                throw ProtocolError(.badState, "\(id) is already stopping (\(p.rawValue))")
            }
            if r.pending == nil {
                do {
                    try DurableFile.write("", to: runDirectory(id).slurmCancel)
                } catch {
                    throw ProtocolError(.storage, "cannot write \(runDirectory(id).slurmCancel): \(error)")
                }
                r.pending = cancel ? .cancel : .pause
                if cancel { r.cancelledBy = peer.uid }
                s.note = nil
                r.slurm = s
                try commitLocked(r)
                ex.actions.append(.scancel(id, task: task))
                ex.wake()
            }
            let token = newTokenLocked()
            ex.stopWaiters[id, default: []].append(token)
            return .deferred(token)
        }
    }

    /// hold/release of a Slurm run pending in Slurm: `scontrol hold/release JOB_INDEX`.
    func slurmHoldRelease(_ id: RunID, peer: Peer, hold: Bool) throws -> HandlerResult? {
        guard let ex = slurmExecutor else { return nil }
        return lock.withLock {
            guard let r = runs[id], r.executor == .slurm, let s = r.slurm, s.active, let task = s.taskID,
                  r.state == (hold ? .queued : .held) else { return nil }
            let token = newTokenLocked()
            ex.actions.append(hold ? .hold(id, task: task, token: token) : .release(id, task: task, token: token))
            ex.wake()
            return .deferred(token)
        }
    }

    /// A Slurm run already submitted keeps its place in Slurm's queue: its priority is Slurm's.
    func refuseSlurmPriority(_ id: RunID) throws {
        guard let r = lock.withLock({ runs[id] }), r.executor == .slurm, let s = r.slurm, s.active else { return }
        throw ProtocolError(.badState, "\(id) is already submitted to Slurm as task \(s.taskID ?? "?"); its order there is Slurm's "
                            + "(e.g. `scontrol update JobId=\(s.taskID ?? "J_I") Nice=N`); the daemon's priority orders runs before submission only")
    }

    /// Where a Slurm run stands, in words, for `show`.
    static func slurmStatus(_ r: RunRecord, _ s: SlurmRun) -> String {
        let task = s.taskID ?? "?"
        if !s.active {
            if let sub = s.submission {
                return "being submitted to Slurm as job \(sub.jobName)" + (s.note.map { ": \($0)" } ?? "")
            }
            if r.state.isTerminal || r.state == .paused { return "not in Slurm (its last task was \(task))" }
            return "not submitted to Slurm yet" + (s.note.map { ": \($0)" } ?? "")
        }
        switch s.state {
        case "RUNNING": return "running in Slurm as task \(task)" + (s.node.map { " on \($0)" } ?? "")
        case "PENDING": return "pending in Slurm as task \(task)" + (s.slurmReason.map { " (\($0))" } ?? "")
        default: return "in Slurm as task \(task) (\(s.state ?? "state unknown"))"
        }
    }

    /// The end of a Slurm run's task output (its `pruned run` log and the task script's lines).
    func slurmOutputLines(_ id: RunID) -> [String] {
        guard let r = lock.withLock({ runs[id] }), r.executor == .slurm, let out = r.slurm?.output,
              let data = FileManager.default.contents(atPath: out) else { return [] }
        return String(decoding: data.suffix(1 << 20), as: UTF8.self).split(separator: "\n").map(String.init)
    }
}
