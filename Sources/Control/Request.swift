// The control protocol's requests as typed values, with the small argument types of `list`,
// `drain` and `metrics`: `Request.parse(line)` validates a line completely (so a rejected
// request never has an effect) and `rendered` writes it back; the CLI builds requests with the
// same types. Verbs and their usage live in `Verb`, the argument rules in `Arguments`.
import PrunedJSON

/// What `list` selects by; the filters combine with "and".
public struct ListFilter: Equatable, Sendable {
    public var states: [RunState] = []
    public var group: String?
    public var tag: String?
    /// A uid or a user name.
    public var owner: String?
    public init() {}
}

public enum DrainMode: String, Equatable, Sendable, CaseIterable {
    /// Dispatch nothing new; exit once the running runs have completed.
    case finish
    /// Checkpoint the running runs at their next step, record them as interrupted, exit.
    case now
    /// Withdraw a pending drain.
    case off
}

public enum MetricsKind: String, Equatable, Sendable, CaseIterable { case epochs, prunes }

public enum Request: Equatable, Sendable {
    case ping
    case version
    case help(String?)
    case status
    case submit(RunEdits)
    case list(ListFilter)
    case show(RunID)
    case pause(RunID)
    case resume(RunID)
    case cancel(RunID)
    case hold(RunID)
    case release(RunID)
    case priority(RunID, Int)
    case set(RunID, RunEdits)
    /// Fork from a checkpoint file of the run (nil: its newest).
    case fork(RunID, checkpoint: String?, RunEdits)
    case metrics(RunID, kind: MetricsKind, since: Int)
    case checkpoint(RunID)
    /// The last `tail` lines of the run's log.
    case logs(RunID, tail: Int)
    case subscribe(since: UInt64?, run: RunID?, group: String?)
    case unsubscribe
    case drain(DrainMode)
    case quit

    public var verb: Verb {
        switch self {
        case .ping: return .ping
        case .version: return .version
        case .help: return .help
        case .status: return .status
        case .submit: return .submit
        case .list: return .list
        case .show: return .show
        case .pause: return .pause
        case .resume: return .resume
        case .cancel: return .cancel
        case .hold: return .hold
        case .release: return .release
        case .priority: return .priority
        case .set: return .set
        case .fork: return .fork
        case .metrics: return .metrics
        case .checkpoint: return .checkpoint
        case .logs: return .logs
        case .subscribe: return .subscribe
        case .unsubscribe: return .unsubscribe
        case .drain: return .drain
        case .quit: return .quit
        }
    }

    /// Whether the request changes stored state (and so needs the right to change the run).
    public var isMutating: Bool {
        switch self {
        case .ping, .version, .help, .status, .list, .show, .metrics, .logs, .subscribe, .unsubscribe, .quit: return false
        default: return true
        }
    }
}

extension Request {
    /// Parses one request line (no terminator). Every argument is checked before returning.
    public static func parse(_ line: String) throws -> Request {
        if let bad = line.unicodeScalars.first(where: { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7f }) {
            throw ProtocolError(.badEncoding, "control character U+\(String(bad.value, radix: 16, uppercase: true)) in the request")
        }
        let (word, args) = try Lexer.tokenize(line)
        guard let verb = Verb(rawValue: word) else {
            throw ProtocolError(.unknownCommand, "unknown command '\(word.prefix(40))'; `help` lists the commands")
        }
        var a = Arguments(verb: verb, tokens: args)
        let request: Request
        switch verb {
        case .ping: request = .ping
        case .version: request = .version
        case .status: request = .status
        case .unsubscribe: request = .unsubscribe
        case .quit: request = .quit
        case .help:
            let name = a.optionalPositional()
            if let name, Verb(rawValue: name.lowercased()) == nil {
                throw ProtocolError(.badArgument, "help: no command '\(name.prefix(40))'")
            }
            request = .help(name?.lowercased())
        case .show: request = .show(try a.runID())
        case .pause: request = .pause(try a.runID())
        case .resume: request = .resume(try a.runID())
        case .cancel: request = .cancel(try a.runID())
        case .hold: request = .hold(try a.runID())
        case .release: request = .release(try a.runID())
        case .checkpoint: request = .checkpoint(try a.runID())
        case .logs:
            let id = try a.runID()
            var tail = 100
            if let t = a.take("tail") {
                guard let n = Int(t.value), (1 ... 10_000).contains(n) else { throw ProtocolError(.badArgument, "logs: tail must be in 1…10000") }
                tail = n
            }
            request = .logs(id, tail: tail)
        case .priority:
            let id = try a.runID()
            guard let p = a.optionalPositional() else { throw ProtocolError(.badArgument, "priority: missing the priority N") }
            request = .priority(id, try Arguments.priorityValue(p))
        case .submit:
            var edits = RunEdits()
            edits.preset = a.optionalPositional()
            if let d = a.take("dry_run") {
                guard d.value == "true" || d.value == "false" else { throw ProtocolError(.badArgument, "submit: dry_run must be true or false") }
                edits.dryRun = d.value == "true"
            }
            try a.readExecutor(into: &edits)
            try a.readEdits(into: &edits, allowSpec: true, allowHold: true)
            guard edits.preset != nil || edits.spec != nil else {
                throw ProtocolError(.badArgument, "submit: name a preset (see `pruned presets`) or give spec={...}")
            }
            request = .submit(edits)
        case .set:
            let id = try a.runID()
            var edits = RunEdits()
            try a.readEdits(into: &edits, allowSpec: false, allowHold: false)
            guard !edits.isEmpty else { throw ProtocolError(.badArgument, "set: nothing to change") }
            request = .set(id, edits)
        case .fork:
            let id = try a.runID()
            let checkpoint = a.take("checkpoint")?.value
            if let checkpoint, checkpoint.isEmpty || checkpoint.contains("/") {
                throw ProtocolError(.badArgument, "fork: checkpoint must be a file name from `show` (no '/')")
            }
            var edits = RunEdits()
            try a.readExecutor(into: &edits)
            try a.readEdits(into: &edits, allowSpec: false, allowHold: true)
            request = .fork(id, checkpoint: checkpoint, edits)
        case .list:
            var f = ListFilter()
            if let s = a.take("state") {
                f.states = try s.value.split(separator: ",").map { part in
                    guard let st = RunState(rawValue: String(part)) else {
                        throw ProtocolError(.badArgument, "list: state '\(part.prefix(40))' is not one of \(RunState.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    return st
                }
            }
            f.group = try a.take("group").map { try RunLabel.validate($0.value, field: "group") }
            f.tag = try a.take("tag").map { try RunLabel.validate($0.value, field: "tag") }
            f.owner = a.take("owner")?.value
            request = .list(f)
        case .metrics:
            let id = try a.runID()
            var kind = MetricsKind.epochs
            if let k = a.take("kind") {
                guard let v = MetricsKind(rawValue: k.value) else { throw ProtocolError(.badArgument, "metrics: kind must be epochs or prunes") }
                kind = v
            }
            var since = 0
            if let s = a.take("since") {
                guard let n = Int(s.value), n >= 0 else { throw ProtocolError(.badArgument, "metrics: since must be an epoch number ≥ 0") }
                since = n
            }
            request = .metrics(id, kind: kind, since: since)
        case .subscribe:
            var since: UInt64?
            if let s = a.take("since") {
                guard let n = UInt64(s.value) else { throw ProtocolError(.badArgument, "subscribe: since must be a sequence number ≥ 0") }
                since = n
            }
            var run: RunID?
            if let r = a.take("run") {
                guard let id = RunID(r.value) else { throw ProtocolError(.badArgument, "subscribe: '\(r.value.prefix(40))' is not a run id (r-0042)") }
                run = id
            }
            let group = try a.take("group").map { try RunLabel.validate($0.value, field: "group") }
            request = .subscribe(since: since, run: run, group: group)
        case .drain:
            var mode = DrainMode.finish
            if let m = a.optionalPositional() {
                guard let v = DrainMode(rawValue: m) else { throw ProtocolError(.badArgument, "drain: mode must be finish, now or off") }
                mode = v
            }
            request = .drain(mode)
        }
        try a.finish()
        return request
    }

    /// The request as a line (no terminator) that `parse` reads back to an equal request.
    public var rendered: String {
        var parts = [verb.rawValue]
        func edits(_ e: RunEdits) {
            if let spec = e.spec { parts.append("spec=" + Lexer.renderJSON(spec)) }
            for o in e.overrides { parts.append(o.path + "=" + Lexer.renderValue(o.value)) }
            if let g = e.group { parts.append("group=" + Lexer.quoteIfNeeded(g)) }
            if let t = e.tags { parts.append("tag=" + Lexer.quoteIfNeeded(t.joined(separator: ","))) }
            if let p = e.priority { parts.append("priority=\(p)") }
            if let h = e.hold { parts.append("hold=\(h)") }
            if let x = e.executor { parts.append("executor=" + x.rawValue) }
            if let o = e.slurm { parts += o.arguments }
            if e.dryRun { parts.append("dry_run=true") }
        }
        switch self {
        case .ping, .version, .status, .unsubscribe, .quit: break
        case .help(let v): if let v { parts.append(v) }
        case .show(let id), .pause(let id), .resume(let id), .cancel(let id), .hold(let id), .release(let id), .checkpoint(let id):
            parts.append(id.description)
        case .priority(let id, let p): parts += [id.description, String(p)]
        case .submit(let e):
            if let p = e.preset { parts.append(Lexer.quoteIfNeeded(p)) }
            edits(e)
        case .set(let id, let e):
            parts.append(id.description)
            edits(e)
        case .fork(let id, let ck, let e):
            parts.append(id.description)
            if let ck { parts.append("checkpoint=" + Lexer.quoteIfNeeded(ck)) }
            edits(e)
        case .list(let f):
            if !f.states.isEmpty { parts.append("state=" + f.states.map(\.rawValue).joined(separator: ",")) }
            if let g = f.group { parts.append("group=" + Lexer.quoteIfNeeded(g)) }
            if let t = f.tag { parts.append("tag=" + Lexer.quoteIfNeeded(t)) }
            if let o = f.owner { parts.append("owner=" + Lexer.quoteIfNeeded(o)) }
        case .logs(let id, let tail):
            parts.append(id.description)
            if tail != 100 { parts.append("tail=\(tail)") }
        case .metrics(let id, let kind, let since):
            parts.append(id.description)
            if kind != .epochs { parts.append("kind=" + kind.rawValue) }
            if since != 0 { parts.append("since=\(since)") }
        case .subscribe(let since, let run, let group):
            if let since { parts.append("since=\(since)") }
            if let run { parts.append("run=\(run)") }
            if let group { parts.append("group=" + Lexer.quoteIfNeeded(group)) }
        case .drain(let m): if m != .finish { parts.append(m.rawValue) }
        }
        return parts.joined(separator: " ")
    }
}
