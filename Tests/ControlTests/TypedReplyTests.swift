// The typed OK payloads: each encodes to the layout docs/PROTOCOL.md describes and decodes back
// to an equal value; a run record has one shape (the short form is the full record with fields
// left out, in the same order); malformed payloads are INTERNAL errors naming the field.
import Control
import PrunedJSON
import Testing

func sampleRun(full: Bool, slurm: Bool = false) throws -> RunInfo {
    var run = RunInfo(id: RunID(7), state: .running, ownerName: "alice", group: "g", tags: ["a", "seed:1"], priority: 3,
                      name: "n", model: "conv4", reason: nil,
                      progress: RunProgress(epochsDone: 1, epochs: 4, step: 5, stepsPerEpoch: 16, imagesPerSecond: 812.5),
                      lastTestAcc: 71.25, bestTestAcc: 72.5)
    if slurm {
        var options = SlurmOptions()
        try options.set("partition", "main")
        var s = SlurmRun(options: options)
        s.jobID = "12"
        s.arrayIndex = 3
        s.state = "RUNNING"
        run.slurm = s
    }
    if full {
        run.details = RunInfo.Details(owner: 1000, order: 7, created: 1.5, started: 2.5, starts: 1, lastCheckpoint: "ckpt-1.pck",
                                      lastInstability: 0.25, source: .object([("preset", .null)]), spec: .object([("epochs", .number(4))]))
    }
    return run
}

func keys(_ j: JSON) -> [String] {
    guard case .object(let pairs) = j else { return [] }
    return pairs.map(\.0)
}

@Suite struct TypedReplyTests {
    @Test func theShortFormIsWrittenAsDocumented() throws {
        let line = try sampleRun(full: false).json.rendered
        #expect(line == #"{"id":"r-0007","state":"running","owner_name":"alice","group":"g","tags":["a","seed:1"],"priority":3,"#
            + #""name":"n","model":"conv4","reason":null,"progress":{"epochs_done":1,"epochs":4,"step":5,"steps_per_epoch":16,"#
            + #""images_per_second":812.5},"last_test_acc":71.25,"best_test_acc":72.5}"#)
    }

    @Test(arguments: [false, true])
    func runRecordsRoundTripAndHaveOneShape(slurm: Bool) throws {
        var full = try sampleRun(full: true, slurm: slurm)
        full.shown = RunInfo.Shown(directory: "/state/runs/r-0007", slurmStatus: slurm ? "running in Slurm task 12_3" : nil,
                                   checkpoints: ["ckpt-1.pck"], summary: .object([("best_test_acc", .number(72.5))]))
        full.changed = true
        #expect(try RunInfo(json: full.json) == full)
        #expect(try RunInfo(json: full.short.json) == full.short)
        #expect(try full.short == (sampleRun(full: false, slurm: slurm)))
        // The short form's keys are the full record's, in the same order, and mean the same.
        let long = keys(full.json), short = keys(full.short.json)
        #expect(short.allSatisfy(long.contains))
        #expect(long.filter(short.contains) == short)
        for k in short { #expect(full.json[k] == full.short.json[k], "\(k)") }
        #expect(full.short.json["progress"]?["epochs_done"]?.intValue == 1 && full.short.json["epochs_done"] == nil)
        #expect(long.first == "changed" && (full.json["executor"] != nil) == slurm && (full.short.json["slurm"] != nil) == slurm)
        #expect(full.executor == (slurm ? .slurm : .local))
    }

    @Test func malformedRunRecordsNameTheField() throws {
        let good = try sampleRun(full: false).json
        func without(_ key: String) -> JSON {
            guard case .object(let pairs) = good else { return good }
            return .object(pairs.filter { $0.0 != key })
        }
        func replacing(_ key: String, _ value: JSON) -> JSON {
            guard case .object(let pairs) = good else { return good }
            return .object(pairs.map { $0.0 == key ? (key, value) : $0 })
        }
        for (json, field) in [(without("id"), "id"), (replacing("state", .string("sleeping")), "state"),
                              (replacing("progress", .number(3)), "run progress"), (replacing("tags", .array([.number(1)])), "tags"),
                              (replacing("priority", .string("high")), "priority"), (.array([]), "object")] {
            let error = #expect(throws: ProtocolError.self) { try RunInfo(json: json) }
            #expect(error?.code == .internal && error?.message.contains(field) == true, "\(error?.message ?? "")")
        }
        // Keys a later daemon may add are ignored.
        guard case .object(let pairs) = good else { return }
        #expect(try RunInfo(json: .object(pairs + [("future", .bool(true))])) == (sampleRun(full: false)))
    }

    @Test func statusRoundTrips() throws {
        let status = DaemonStatus(daemon: ProtocolInfo.softwareVersion, bootID: "b00t", uptime: 12, runs: [.running: 1, .held: 2],
                                  slurmRuns: [.running: 1], running: [try sampleRun(full: false, slurm: true)], slots: 1,
                                  threadsPerRun: 2, draining: .finish, stopping: nil, status: "1 running", nextSeq: 9,
                                  stateDirectory: "/state")
        let j = status.json
        #expect(keys(j) == ["daemon", "protocol", "boot_id", "uptime", "runs", "slurm_runs", "running", "slots", "threads_per_run",
                            "draining", "stopping", "status", "next_seq", "state_directory"])
        #expect(keys(j["runs"] ?? .null) == RunState.allCases.map(\.rawValue) && j["runs"]?["queued"]?.intValue == 0)
        var back = try DaemonStatus(json: j)
        // Every state is on the wire, so the decoded counts name the empty states too.
        #expect(back.runs[.queued] == 0 && back.runs[.held] == 2)
        back.runs = back.runs.filter { $0.value > 0 }
        back.slurmRuns = back.slurmRuns?.filter { $0.value > 0 }
        #expect(back == status)
        var local = status
        local.slurmRuns = nil
        #expect(try local.json["slurm_runs"] == nil && (DaemonStatus(json: local.json)).slurmRuns == nil)
    }

    @Test func payloadsRoundTrip() throws {
        let run = try sampleRun(full: false)
        let version = VersionInfo(daemon: "0.1.0", build: "pruned-0.1.0+1-2", bootID: "b")
        #expect(version.json.rendered == #"{"protocol":1,"daemon":"0.1.0","build":"pruned-0.1.0+1-2","boot_id":"b"}"#)
        #expect(try VersionInfo(json: version.json) == version)
        let list = RunList(runs: [run, run])
        #expect(try list.json["count"]?.intValue == 2 && (RunList(json: list.json)) == list)
        #expect(throws: ProtocolError.self) { try RunList(json: .object([("runs", .array([run.json])), ("count", .number(2))])) }
        let submitted = SubmitReply(run: run)
        #expect(try keys(submitted.json) == ["id", "state", "run"] && (SubmitReply(json: submitted.json)) == submitted)
        let dry = DryRunReply(spec: .object([("epochs", .number(2))]), schedule: .object([]), scheduleText: "epoch 1\n")
        #expect(try keys(dry.json) == ["dry_run", "spec", "schedule", "schedule_text"] && (DryRunReply(json: dry.json)) == dry)
        let ck = CheckpointReply(run: RunID(3), checkpoint: "ckpt-00000001-e00000-s000001.pck")
        #expect(ck.json.rendered == #"{"run":"r-0003","checkpoint":"ckpt-00000001-e00000-s000001.pck"}"#)
        #expect(try CheckpointReply(json: ck.json) == ck)
        for drain in [DrainReply(draining: nil, running: 0), DrainReply(draining: .now, running: 2)] {
            #expect(try DrainReply(json: drain.json) == drain)
        }
        #expect(DrainReply(draining: nil, running: 1).json.rendered == #"{"draining":null,"running":1}"#)
        let metrics = MetricsReply(run: RunID(1), kind: .prunes, rows: [.object([("epoch", .number(2))])])
        #expect(try keys(metrics.json) == ["run", "kind", "rows"] && (MetricsReply(json: metrics.json)) == metrics)
        let logs = LogsReply(run: RunID(1), lines: ["a", "b \"c\""])
        #expect(logs.json.rendered == #"{"run":"r-0001","lines":["a","b \"c\""]}"#)
        #expect(try LogsReply(json: logs.json) == logs)
    }

    @Test func runLabelIsTheNameRule() throws {
        #expect(try RunLabel.validate("g:1@x+y._-", field: "group") == "g:1@x+y._-")
        for bad in ["", "two words", "é", String(repeating: "a", count: RunLabel.maxLength + 1), "a,b"] {
            #expect(throws: ProtocolError.self) { try RunLabel.validate(bad, field: "tag") }
        }
        #expect(RunLabel.sanitized("pruning.target:largest é/x") == "pruning.target:largest___x")
        #expect(RunLabel.sanitized(String(repeating: "x", count: 100)).count == RunLabel.maxLength)
        #expect(try RunLabel.validate(RunLabel.sanitized("a b/c"), field: "tag") == "a_b_c")
    }
}
