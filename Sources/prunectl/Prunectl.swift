// prunectl: the researcher's command line. It speaks only the daemon's socket protocol (one
// subcommand per verb, plus submit/sweep expansion, watch, wait, metrics tables and reports).
// Every subcommand takes --socket and --json; errors print the daemon's code and exit non-zero.
import ArgumentParser
import Control
import ControlClient
import Foundation
import PrunedJSON

@main
struct Prunectl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prunectl",
        abstract: "Control the pruned training daemon: queue runs and sweeps, watch them, wait, and report results.",
        discussion: """
        The socket is --socket, else $PRUNED_SOCKET, else /run/pruned/control.sock (the system service) when it \
        exists, else $XDG_RUNTIME_DIR/pruned/control.sock (the user service), else /tmp/pruned-UID/control.sock.
        Exit status: 0 success; 1 the daemon answered with an error (its code is printed); 4 the daemon could not \
        be reached; 64 bad usage. `wait` has its own codes (see prunectl wait --help).
        """,
        version: ProtocolInfo.softwareVersion,
        subcommands: [Submit.self, Sweep.self, List.self, Status.self, Show.self, Pause.self, Resume.self, Cancel.self,
                      Hold.self, Release.self, Priority.self, SetCommand.self, Fork.self, CheckpointCommand.self, Metrics.self,
                      Logs.self, Watch.self, Wait.self, Report.self, Drain.self, Ping.self, Version.self, Raw.self])
}

/// Options every subcommand has.
struct Global: ParsableArguments {
    @Option(name: .long, help: "The daemon's socket (default: see prunectl --help).") var socket: String?
    @Flag(name: .long, help: "Print the daemon's JSON replies (one per line) instead of tables.") var json = false
    @Option(name: .long, help: "Seconds to wait for a reply (pause/cancel/checkpoint wait for a step boundary).") var timeout: Double = 600

    var socketPath: String { socket ?? SocketLocator.defaultPath() }

    func connect() throws -> ControlConnection {
        do { return try ControlConnection(path: socketPath, timeout: timeout) } catch let e as ClientError {
            throw Failure(e.description, code: 4)
        } catch let e as ProtocolError {
            throw Failure("\(e.code.rawValue) \(e.message)", code: 1)
        }
    }
}

/// An error that prunectl prints and exits with.
struct Failure: Error, CustomStringConvertible {
    var description: String
    var code: Int32
    init(_ d: String, code: Int32 = 1) { description = d; self.code = code }
}

/// Runs `body`, turning daemon errors and connection losses into a message and an exit code.
func guarded(_ body: () throws -> Void) throws {
    do { try body() } catch let e as ProtocolError {
        printErr("prunectl: \(e.code.rawValue) \(e.message)")
        throw ExitCode(1)
    } catch let e as Failure {
        printErr("prunectl: \(e.description)")
        throw ExitCode(e.code)
    } catch let e as ClientError {
        printErr("prunectl: \(e.description)")
        throw ExitCode(4)
    }
}

func printErr(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

func parse(_ line: String) throws -> Request {
    do { return try Request.parse(line) } catch let e as ProtocolError { throw ValidationError(e.message) }
}

/// Sends one request, prints the reply (the daemon's JSON with --json, else `human`'s text, which
/// decodes the payload into its type), returns the payload.
@discardableResult
func perform(_ g: Global, _ request: Request, human: (JSON) throws -> String? = { _ in nil }) throws -> JSON {
    let c = try g.connect()
    let j = try c.call(request)
    if g.json { print(j.rendered) } else if let text = try human(j) { print(text) } else { print(j.pretty) }
    return j
}

func runID(_ s: String) throws -> RunID {
    guard let id = RunID(s) else { throw ValidationError("'\(s)' is not a run id (r-0042 or 42)") }
    return id
}

/// The run ids named on the command line, or every run of --group (optionally in given states).
func selectRuns(_ g: Global, ids: [String], group: String?, states: [RunState]) throws -> [RunID] {
    var out = try ids.map(runID)
    if let group {
        var f = ListFilter()
        f.group = group
        f.states = states
        out += try RunList(json: g.connect().call(.list(f))).runs.map(\.id)
    }
    return out
}

// MARK: simple verbs

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that the daemon answers.")
    @OptionGroup var g: Global
    func run() throws { try guarded { try perform(g, .ping) { _ in "pong from \(g.socketPath)" } } }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Protocol and daemon versions.")
    @OptionGroup var g: Global
    func run() throws {
        try guarded {
            try perform(g, .version) { j in
                let v = try VersionInfo(json: j)
                return "daemon \(v.daemon) (build \(v.build)), protocol \(v.protocolVersion); prunectl \(ProtocolInfo.softwareVersion)"
            }
        }
    }
}

struct Raw: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send protocol lines as they are and print the reply lines (for debugging).")
    @OptionGroup var g: Global
    @Argument(help: "Request lines, e.g. 'show r-0001'.") var lines: [String]
    func run() throws {
        try guarded {
            let c = try g.connect()
            var failed = false
            for line in lines {
                try c.sendLine(line)
                let r = try c.readLine()
                print(r)
                if r.hasPrefix("ERR") { failed = true }
            }
            if failed { throw ExitCode(1) }
        }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One run: state, progress, spec, checkpoints, summary.")
    @OptionGroup var g: Global
    @Argument(help: "Run id.") var id: String
    func run() throws { try guarded { try perform(g, .show(try runID(id))) { Tables.showRun(try RunInfo(json: $0)) } } }
}

/// pause/resume/cancel/hold/release over ids or a whole group.
protocol RunVerb: ParsableCommand {
    var g: Global { get }
    var ids: [String] { get }
    var group: String? { get }
    static var sourceStates: [RunState] { get }
    static func request(_ id: RunID) -> Request
}

extension RunVerb {
    func run() throws {
        try guarded {
            let targets = try selectRuns(g, ids: ids, group: group, states: Self.sourceStates)
            if targets.isEmpty {
                if group != nil { printErr("prunectl: no run of group \(group ?? "") is \(Self.sourceStates.map(\.rawValue).joined(separator: " or "))"); return }
                throw ValidationError("name run ids or --group")
            }
            let c = try g.connect()
            var failures = 0
            for id in targets {
                do {
                    let j = try c.call(Self.request(id))
                    if g.json { print(j.rendered) } else {
                        let r = try RunInfo(json: j)
                        print("\(id) \(r.state.rawValue)\(r.changed == false ? " (unchanged)" : "")")
                    }
                } catch let e as ProtocolError {
                    printErr("prunectl: \(id): \(e.code.rawValue) \(e.message)")
                    failures += 1
                }
            }
            if failures > 0 { throw ExitCode(1) }
        }
    }
}

struct Pause: RunVerb {
    static let configuration = CommandConfiguration(abstract: "Checkpoint running runs and free them; durable across restarts.")
    @OptionGroup var g: Global
    @Argument(help: "Run ids.") var ids: [String] = []
    @Option(name: .long, help: "Every running run of this group.") var group: String?
    static let sourceStates: [RunState] = [.running]
    static func request(_ id: RunID) -> Request { .pause(id) }
}

struct Resume: RunVerb {
    static let configuration = CommandConfiguration(abstract: "Queue paused, interrupted or failed runs again (they continue from their checkpoint).")
    @OptionGroup var g: Global
    @Argument(help: "Run ids.") var ids: [String] = []
    @Option(name: .long, help: "Every paused or interrupted run of this group.") var group: String?
    static let sourceStates: [RunState] = [.paused, .interrupted]
    static func request(_ id: RunID) -> Request { .resume(id) }
}

struct Cancel: RunVerb {
    static let configuration = CommandConfiguration(abstract: "Cancel runs (running ones are checkpointed first).")
    @OptionGroup var g: Global
    @Argument(help: "Run ids.") var ids: [String] = []
    @Option(name: .long, help: "Every unfinished run of this group.") var group: String?
    static let sourceStates: [RunState] = [.queued, .held, .running, .paused, .interrupted]
    static func request(_ id: RunID) -> Request { .cancel(id) }
}

struct Hold: RunVerb {
    static let configuration = CommandConfiguration(abstract: "Keep queued runs from being dispatched.")
    @OptionGroup var g: Global
    @Argument(help: "Run ids.") var ids: [String] = []
    @Option(name: .long, help: "Every queued run of this group.") var group: String?
    static let sourceStates: [RunState] = [.queued]
    static func request(_ id: RunID) -> Request { .hold(id) }
}

struct Release: RunVerb {
    static let configuration = CommandConfiguration(abstract: "Let held runs be dispatched again.")
    @OptionGroup var g: Global
    @Argument(help: "Run ids.") var ids: [String] = []
    @Option(name: .long, help: "Every held run of this group.") var group: String?
    static let sourceStates: [RunState] = [.held]
    static func request(_ id: RunID) -> Request { .release(id) }
}

struct Priority: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Change a run's priority (higher first; ties in submission order).")
    @OptionGroup var g: Global
    @Argument(help: "Run id.") var id: String
    @Argument(help: "Priority, -1000…1000.") var priority: Int
    func run() throws {
        try guarded {
            try perform(g, .priority(try runID(id), priority)) { j in
                let r = try RunInfo(json: j)
                return "\(r.id) priority \(r.priority)"
            }
        }
    }
}

struct SetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "Edit a queued run that has not started: spec overrides, group, tags, priority.")
    @OptionGroup var g: Global
    @Argument(help: "Run id.") var id: String
    @Argument(help: "Spec overrides PATH=VALUE (e.g. epochs=30 optimizer.lr=0.01).") var overrides: [String] = []
    @Option(name: .long, help: "New group.") var group: String?
    @Option(name: .long, help: "New tags (replace the old ones; repeatable).") var tag: [String] = []
    @Option(name: .long, help: "New priority.") var priority: Int?
    @Flag(name: .long, help: "Remove the run from its group.") var noGroup = false
    @Flag(name: .long, help: "Remove all tags.") var noTags = false
    func run() throws {
        try guarded {
            var e = RunEdits()
            e.overrides = try overrides.map(parseOverride)
            e.group = noGroup ? "" : group
            e.tags = noTags ? [] : (tag.isEmpty ? nil : tag)
            e.priority = priority
            guard !e.isEmpty else { throw ValidationError("nothing to change") }
            try perform(g, .set(try runID(id), e)) { Tables.showRun(try RunInfo(json: $0)) }
        }
    }
}

struct Fork: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start a new run from a checkpoint of another run, with overrides (e.g. another pruning target).")
    @OptionGroup var g: Global
    @Argument(help: "Source run id.") var id: String
    @Argument(help: "Spec overrides PATH=VALUE.") var overrides: [String] = []
    @Option(name: .long, help: "Checkpoint file of the source run (default: its newest; see prunectl show).") var checkpoint: String?
    @Option(name: .long, help: "Group (default: the source's).") var group: String?
    @Option(name: .long, help: "Tags (default: the source's; repeatable).") var tag: [String] = []
    @Option(name: .long, help: "Priority.") var priority: Int?
    @Flag(name: .long, help: "Queue it held.") var hold = false
    /// Unless given, the fork runs where its source ran, with the source's Slurm options under these.
    @OptionGroup var executor: ExecutorOptions
    func run() throws {
        try guarded {
            var e = RunEdits()
            try executor.applySlurm(to: &e)
            e.overrides = try overrides.map(parseOverride)
            e.group = group
            e.tags = tag.isEmpty ? nil : tag
            e.priority = priority
            e.hold = hold ? true : nil
            try perform(g, .fork(try runID(id), checkpoint: checkpoint, e)) { j in
                let f = try SubmitReply(json: j)
                return "\(f.id) \(f.state.rawValue)"
            }
        }
    }
}

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "checkpoint", abstract: "Checkpoint a running run now (waits for its next step).")
    @OptionGroup var g: Global
    @Argument(help: "Run id.") var id: String
    func run() throws {
        try guarded {
            try perform(g, .checkpoint(try runID(id))) { j in
                let ck = try CheckpointReply(json: j)
                return "\(ck.run) \(ck.checkpoint)"
            }
        }
    }
}

struct Drain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop dispatching: finish (exit once running runs complete), now (checkpoint them and exit), off (withdraw).")
    @OptionGroup var g: Global
    @Argument(help: "finish, now or off.") var mode: String = "finish"
    func run() throws {
        guard let m = DrainMode(rawValue: mode) else { throw ValidationError("mode must be finish, now or off") }
        try guarded {
            try perform(g, .drain(m)) { j in
                let d = try DrainReply(json: j)
                return "draining: \(d.draining?.rawValue ?? "off"); \(d.running) running"
            }
        }
    }
}

/// `PATH=VALUE` from the command line, typed like the protocol types it.
func parseOverride(_ s: String) throws -> Override {
    guard let eq = s.firstIndex(of: "="), eq != s.startIndex else { throw ValidationError("'\(s)' is not PATH=VALUE") }
    let path = String(s[..<eq])
    let token = Token(key: path, value: String(s[s.index(after: eq)...]))
    do { return Override(path, try token.jsonValue()) } catch let e as ProtocolError { throw ValidationError(e.message) }
}
