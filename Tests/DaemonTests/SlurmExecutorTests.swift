// The Slurm executor's pure parts: the slurm.* protocol options, the ledger record of a Slurm
// run, the sbatch command line and the parsing of sbatch/squeue output (captured from the local
// Slurm 22.05 cluster of ../shared/tools/slurm-local). The daemon against real Slurm is tested by
// tests/slurm/daemon-test.sh.
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import Testing

@Suite struct SlurmExecutorTests {
    /// `squeue -h -r -t all --me -o '%i|%T|%N|%r'` right after `scontrol requeue 2_1`, with a
    /// plain (non-array) job 1 listed too.
    static let squeueCapture = """
    1|COMPLETED|localhost|None
    2_0|COMPLETED|localhost|None
    2_2|COMPLETED|localhost|None
    2_3|COMPLETED|localhost|None
    2_1|PENDING||BeginTime

    """

    @Test func squeueOutputIsParsedPerArrayTask() {
        let tasks = SlurmCommands.parseSqueue(Self.squeueCapture)
        #expect(tasks.count == 4)
        #expect(tasks.last == SlurmCommands.Task(jobID: "2", index: 1, state: "PENDING", node: "", reason: "BeginTime"))
        #expect(tasks.first == SlurmCommands.Task(jobID: "2", index: 0, state: "COMPLETED", node: "localhost", reason: "None"))
        #expect(SlurmCommands.parseSqueue("garbage\n2_x|RUNNING|n|None\n_1|RUNNING|n|None\n").isEmpty)
    }

    @Test func sbatchParsableOutput() {
        #expect(SlurmCommands.parseSbatch("6\n") == "6")
        #expect(SlurmCommands.parseSbatch("1234;cluster\n") == "1234")
        #expect(SlurmCommands.parseSbatch("") == nil)
        #expect(SlurmCommands.parseSbatch("Submitted batch job 6\n") == nil)
    }

    @Test func unreachableControllerIsTold() {
        let down = SlurmCommands.Result(status: 1, stdout: "", stderr: "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n", timedOut: false)
        let refused = SlurmCommands.Result(status: 1, stdout: "", stderr: "sbatch: error: invalid partition specified: nosuch\n", timedOut: false)
        #expect(SlurmCommands.isUnreachable(down))
        #expect(!SlurmCommands.isUnreachable(refused))
        #expect(refused.message == "sbatch: error: invalid partition specified: nosuch")
    }

    @Test func submitWithSlurmOptionsRoundTrips() throws {
        let line = "submit F2_VGG_4 epochs=3 executor=slurm slurm.partition=main slurm.time=1-02:00:00 slurm.cpus_per_task=2 slurm.mem=4G "
            + "slurm.max_concurrent=3 slurm.account=lab_1 slurm.sbatch_arg=--qos=low slurm.sbatch_arg=--constraint=avx2 slurm.batch=prunectl-0a1b"
        let r = try Request.parse(line)
        guard case .submit(let e) = r else { Issue.record("not a submit"); return }
        #expect(e.executor == .slurm)
        #expect(e.slurm?.partition == "main")
        #expect(e.slurm?.time == "1-02:00:00")
        #expect(e.slurm?.cpusPerTask == 2)
        #expect(e.slurm?.maxConcurrent == 3)
        #expect(e.slurm?.sbatchArgs == ["--qos=low", "--constraint=avx2"])
        #expect(e.overrides == [Override("epochs", .number(3))])
        #expect(try Request.parse(r.rendered) == r)
        // slurm.* alone means executor=slurm.
        guard case .submit(let e2) = try Request.parse("submit P slurm.partition=main") else { Issue.record("not a submit"); return }
        #expect(e2.executor == .slurm)
    }

    @Test(arguments: [
        ("submit P slurm.partition=a;b", "slurm.partition"),
        ("submit P slurm.partition=\"a b\"", "slurm.partition"),
        ("submit P slurm.time=1:2:3:4", "slurm.time"),
        ("submit P slurm.time=abc", "slurm.time"),
        ("submit P slurm.mem=0", "slurm.mem"),
        ("submit P slurm.mem=4X", "slurm.mem"),
        ("submit P slurm.cpus_per_task=0", "slurm.cpus_per_task"),
        ("submit P slurm.max_concurrent=-1", "slurm.max_concurrent"),
        ("submit P slurm.sbatch_arg=qos=low", "slurm.sbatch_arg"),
        ("submit P slurm.sbatch_arg=--array=0-9", "--array"),
        ("submit P slurm.sbatch_arg=--output=/etc/x", "--output"),
        ("submit P slurm.sbatch_arg=\"--comment=a b\"", "slurm.sbatch_arg"),
        ("submit P slurm.bogus=1", "unknown Slurm option"),
        ("submit P slurm.partition=a slurm.partition=b", "given twice"),
        ("submit P executor=local slurm.partition=main", "executor=slurm"),
        ("submit P executor=cloud", "executor must be local or slurm"),
        ("set r-1 slurm.partition=main", "not allowed here"),
    ])
    func badSlurmArgumentsAreRefusedNamingTheField(line: String, named: String) {
        do {
            _ = try Request.parse(line)
            Issue.record("accepted: \(line)")
        } catch let e as ProtocolError {
            #expect(e.code == .badArgument)
            #expect(e.message.contains(named), "\(e.message)")
        } catch { Issue.record("\(error)") }
    }

    @Test func tooManySbatchArgsAreRefused() {
        let line = "submit P " + (0 ... SlurmOptions.maxSbatchArgs).map { "slurm.sbatch_arg=--x\($0)" }.joined(separator: " ")
        #expect(throws: ProtocolError.self) { try Request.parse(line) }
    }

    func record() -> RunRecord {
        RunRecord(id: RunID(7), state: .queued, owner: 1000, ownerName: "alice", order: 7,
                  spec: .object([("name", .string("x")), ("epochs", .number(3))]), epochs: 3, created: 1)
    }

    @Test func localRecordsHaveNoExecutorFields() throws {
        let r = record()
        #expect(r.json["executor"] == nil)
        #expect(r.json["slurm"] == nil)
        #expect(try RunRecord(json: r.json) == r)
    }

    @Test func slurmRecordRoundTripsThroughTheLedgerLine() throws {
        var r = record()
        r.executor = .slurm
        var o = SlurmOptions()
        try o.set("partition", "main")
        try o.set("sbatch_arg", "--qos=low")
        var s = SlurmRun(options: o)
        s.jobID = "42"
        s.arrayIndex = 3
        s.active = true
        s.restarts = 2
        s.node = "n1"
        r.slurm = s
        let line = Ledger.line(r, time: 5)
        let (back, checked) = try Ledger.parse(line.dropLast())
        #expect(checked)
        #expect(back == r)
        #expect(back.slurm?.taskID == "42_3")
        #expect(r.json["slurm"]?["restarts"]?.intValue == 2)
    }

    @Test func damagedSlurmOptionsInTheLedgerAreAnError() {
        var j = record().json
        guard case .object(var pairs) = j else { return }
        pairs.append(("executor", .string("slurm")))
        pairs.append(("slurm", .object([("options", .object([("partition", .string("a;rm -rf"))]))])))
        j = .object(pairs)
        #expect(throws: DaemonError.self) { try RunRecord(json: j) }
    }

    @Test func sbatchCommandLine() throws {
        var o = SlurmOptions()
        try o.set("partition", "main")
        try o.set("time", "10")
        try o.set("max_concurrent", "2")
        try o.set("sbatch_arg", "--qos=low")
        let argv = SlurmExecutor.sbatchArguments(options: o, count: 4, signalMargin: 120, jobName: "pruned-r-0001", outputDirectory: "/s/slurm/b",
                                                 script: "/s/slurm/pruned-array.sbatch", runsFile: "/s/slurm/b/runs.txt", defaultCPUs: 2)
        #expect(argv == ["sbatch", "--array=0-3%2", "--requeue", "--open-mode=append", "--signal=B:USR1@120", "--parsable",
                         "--job-name=pruned-r-0001", "--output=/s/slurm/b/slurm-%A_%a.out", "--cpus-per-task=2", "--partition=main",
                         "--time=10", "--qos=low", "/s/slurm/pruned-array.sbatch", "/s/slurm/b/runs.txt"])
    }

    @Test func commandsRunWithATimeoutAndWithoutAShell() throws {
        let r = try SlurmCommands.run(["/bin/echo", "a;b", "$HOME"], timeout: 5)
        #expect(r.status == 0)
        #expect(r.stdout == "a;b $HOME\n")
        let slow = try SlurmCommands.run(["/bin/sleep", "5"], timeout: 0.3)
        #expect(slow.timedOut)
        #expect(throws: DaemonError.self) { try SlurmCommands.run(["no-such-command-pruned"], timeout: 1) }
    }
}
