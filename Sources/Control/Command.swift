// The control protocol's requests as typed values: `Request.parse(line)` validates a line
// completely (so a rejected request never has an effect) and `render` writes it back; the CLI
// builds requests with the same types. Verbs and their usage live in `Verb`.
import PrunedJSON

/// A run's lifecycle state.
public enum RunState: String, CaseIterable, Sendable, Codable {
    case queued, held, running, paused, interrupted, completed, failed, cancelled

    /// No further transitions happen by themselves.
    public var isTerminal: Bool { self == .completed || self == .failed || self == .cancelled }
}

/// A run id: `r-0042` (a bare `42` is accepted in requests).
public struct RunID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let number: Int
    public init(_ number: Int) { self.number = number }

    public init?(_ text: String) {
        var t = Substring(text)
        if t.hasPrefix("r-") { t = t.dropFirst(2) }
        guard !t.isEmpty, t.count <= 12, t.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(t), n > 0 else { return nil }
        number = n
    }

    public var description: String {
        let digits = String(number)
        return "r-" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    public static func < (a: RunID, b: RunID) -> Bool { a.number < b.number }
}

/// A change to one field of a run spec, by dotted path (`optimizer.lr`, `dataset.path`).
public struct Override: Equatable, Sendable {
    public var path: String
    public var value: JSON
    public init(_ path: String, _ value: JSON) { self.path = path; self.value = value }
}

/// What `submit`, `set` and `fork` carry besides the run id.
public struct RunEdits: Equatable, Sendable {
    public var preset: String?
    /// A complete spec given inline (`spec={...}`).
    public var spec: JSON?
    public var overrides: [Override] = []
    public var group: String?
    /// nil: unchanged (set) / none (submit).
    public var tags: [String]?
    public var priority: Int?
    public var hold: Bool?
    /// Where the run executes (submit and fork only); nil: the daemon's default.
    public var executor: Executor?
    /// sbatch options (`slurm.KEY=VALUE`); nil when none were given.
    public var slurm: SlurmOptions?
    /// `submit dry_run=true`: validate and answer with the canonical spec and its schedule,
    /// creating no run.
    public var dryRun = false
    public init() {}

    public var isEmpty: Bool { self == RunEdits() }
}

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

/// The protocol's verbs, with their usage lines (for `help` and the docs).
public enum Verb: String, CaseIterable, Sendable {
    case ping, version, help, status, submit, list, show, pause, resume, cancel, hold, release, priority, set, fork,
         metrics, checkpoint, logs, subscribe, unsubscribe, drain, quit

    public var usage: String {
        switch self {
        case .ping: return "ping"
        case .version: return "version"
        case .help: return "help [COMMAND]"
        case .status: return "status"
        case .submit: return "submit [PRESET] [spec={JSON}] [PATH=VALUE...] [group=G] [tag=T[,T...]] [priority=N] [hold=true] [executor=local|slurm] [slurm.KEY=VALUE...] [dry_run=true]"
        case .list: return "list [state=S[,S...]] [group=G] [tag=T] [owner=UID|NAME]"
        case .show: return "show ID"
        case .pause: return "pause ID"
        case .resume: return "resume ID"
        case .cancel: return "cancel ID"
        case .hold: return "hold ID"
        case .release: return "release ID"
        case .priority: return "priority ID N"
        case .set: return "set ID [PATH=VALUE...] [group=G] [tag=T[,T...]] [priority=N]  (group= and tag= with no value clear them)"
        case .fork: return "fork ID [checkpoint=FILE] [PATH=VALUE...] [group=G] [tag=T[,T...]] [priority=N] [hold=true] [executor=local|slurm] [slurm.KEY=VALUE...]"
        case .metrics: return "metrics ID [kind=epochs|prunes] [since=EPOCH]"
        case .checkpoint: return "checkpoint ID"
        case .logs: return "logs ID [tail=N]"
        case .subscribe: return "subscribe [since=SEQ] [run=ID] [group=G]"
        case .unsubscribe: return "unsubscribe"
        case .drain: return "drain [finish|now|off]"
        case .quit: return "quit"
        }
    }

    public var summary: String {
        switch self {
        case .ping: return "check that the daemon answers"
        case .version: return "protocol and daemon versions"
        case .help: return "list the commands, or show one command's usage"
        case .status: return "daemon overview: runs per state, running runs, draining"
        case .submit: return "queue a new run from a preset and/or an inline spec, with spec overrides by dotted path"
        case .list: return "list runs, optionally filtered"
        case .show: return "one run: spec, state, progress, last checkpoint, metrics summary"
        case .pause: return "checkpoint a running run at its next step and free it; answers once paused"
        case .resume: return "queue a paused, interrupted or failed run again; it continues from its newest checkpoint"
        case .cancel: return "cancel a run (a running run is checkpointed first)"
        case .hold: return "keep a queued run from being dispatched"
        case .release: return "let a held run be dispatched again"
        case .priority: return "change a run's priority (higher runs first; ties in submission order)"
        case .set: return "edit a queued or held run that has not started: spec overrides, group, tags, priority"
        case .fork: return "new run starting from a checkpoint of another run, with overrides"
        case .metrics: return "per-epoch rows, or the pruning events with their instability"
        case .checkpoint: return "write a checkpoint of a running run now; answers with its file"
        case .logs: return "the last N lines (default 100, at most 10000) of the run's log"
        case .subscribe: return "receive events (EVENT lines) on this connection, replaying from a sequence number"
        case .unsubscribe: return "stop receiving events"
        case .drain: return "stop dispatching; finish: exit once running runs complete; now: checkpoint them and exit; off: withdraw"
        case .quit: return "close this connection"
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
            f.group = try a.take("group").map { try Arguments.name($0.value, field: "group") }
            f.tag = try a.take("tag").map { try Arguments.name($0.value, field: "tag") }
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
            let group = try a.take("group").map { try Arguments.name($0.value, field: "group") }
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

/// Consumes a request's arguments; `finish` rejects anything left over.
struct Arguments {
    let verb: Verb
    var tokens: [Token]

    init(verb: Verb, tokens: [Token]) {
        self.verb = verb
        self.tokens = tokens
    }

    mutating func optionalPositional() -> String? {
        guard let i = tokens.firstIndex(where: { $0.key == nil }) else { return nil }
        return tokens.remove(at: i).value
    }

    mutating func runID() throws -> RunID {
        guard let v = optionalPositional() else { throw ProtocolError(.badArgument, "\(verb.rawValue): missing the run id (usage: \(verb.usage))") }
        guard let id = RunID(v) else { throw ProtocolError(.badArgument, "\(verb.rawValue): '\(v.prefix(40))' is not a run id (r-0042)") }
        return id
    }

    mutating func take(_ key: String) -> Token? {
        guard let i = tokens.firstIndex(where: { $0.key == key }) else { return nil }
        return tokens.remove(at: i)
    }

    static func priorityValue(_ s: String) throws -> Int {
        guard let p = Int(s), (-1000 ... 1000).contains(p) else { throw ProtocolError(.badArgument, "priority must be an integer in -1000…1000") }
        return p
    }

    static func name(_ s: String, field: String) throws -> String {
        guard !s.isEmpty, s.count <= 64,
              s.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "._-+:@".unicodeScalars.contains($0) })
        else { throw ProtocolError(.badArgument, "\(field) '\(s.prefix(40))' must be 1–64 characters of letters, digits and ._-+:@") }
        return s
    }

    /// `executor=local|slurm` and the `slurm.KEY=VALUE` options (submit and fork).
    mutating func readExecutor(into e: inout RunEdits) throws {
        if let x = take("executor") {
            guard let v = Executor(rawValue: x.value) else { throw ProtocolError(.badArgument, "\(verb.rawValue): executor must be local or slurm") }
            e.executor = v
        }
        var options = SlurmOptions()
        var any = false
        var seen: Set<String> = []
        while let i = tokens.firstIndex(where: { $0.key?.hasPrefix("slurm.") == true }) {
            let t = tokens.remove(at: i)
            let key = String((t.key ?? "").dropFirst("slurm.".count))
            if key != "sbatch_arg", seen.contains(key) { throw ProtocolError(.badArgument, "\(verb.rawValue): slurm.\(key) given twice") }
            seen.insert(key)
            try options.set(key, t.value)
            any = true
        }
        if any {
            guard e.executor != .local else {
                throw ProtocolError(.badArgument, "\(verb.rawValue): slurm.* options apply to executor=slurm, not executor=local")
            }
            e.slurm = options
            if e.executor == nil { e.executor = .slurm }
        }
        if tokens.contains(where: { $0.key == "executor" }) { throw ProtocolError(.badArgument, "\(verb.rawValue): executor given twice") }
    }

    mutating func readEdits(into e: inout RunEdits, allowSpec: Bool, allowHold: Bool) throws {
        if allowSpec, let s = take("spec") {
            let v = try s.jsonValue()
            guard case .object = v else { throw ProtocolError(.badArgument, "spec must be a JSON object") }
            e.spec = v
        }
        // `set` may clear: an empty group or tag list removes it.
        if let g = take("group") { e.group = verb == .set && g.value.isEmpty ? "" : try Arguments.name(g.value, field: "group") }
        while let t = take("tag") {
            if verb == .set && t.value.isEmpty {
                guard e.tags == nil else { throw ProtocolError(.badArgument, "set: an empty tag= clears the tags and goes alone") }
                e.tags = []
                continue
            }
            if e.tags == [] && verb == .set { throw ProtocolError(.badArgument, "set: an empty tag= clears the tags and goes alone") }
            let more = try t.value.split(separator: ",", omittingEmptySubsequences: false).map { try Arguments.name(String($0), field: "tag") }
            e.tags = (e.tags ?? []) + more
            if let n = e.tags?.count, n > ProtocolInfo.maxTags {
                throw ProtocolError(.badArgument, "\(verb.rawValue): \(n) tags; at most \(ProtocolInfo.maxTags) per run")
            }
        }
        if let p = take("priority") { e.priority = try Arguments.priorityValue(p.value) }
        if allowHold, let h = take("hold") {
            guard h.value == "true" || h.value == "false" else { throw ProtocolError(.badArgument, "hold must be true or false") }
            e.hold = h.value == "true"
        }
        var rest: [Token] = []
        for t in tokens {
            guard let key = t.key else { rest.append(t); continue }
            if ["spec", "group", "tag", "priority", "hold", "checkpoint", "executor", "dry_run"].contains(key) || key.hasPrefix("slurm.") {
                throw ProtocolError(.badArgument, "\(verb.rawValue): \(key) given twice or not allowed here")
            }
            try checkOverridePath(key)
            guard e.overrides.count < ProtocolInfo.maxOverrides else {
                throw ProtocolError(.badArgument, "\(verb.rawValue): more than \(ProtocolInfo.maxOverrides) spec overrides; at most \(ProtocolInfo.maxOverrides) per request")
            }
            if e.overrides.contains(where: { $0.path == key }) { throw ProtocolError(.badArgument, "\(verb.rawValue): \(key) given twice") }
            let value = try t.jsonValue()
            let depth = value.depth
            guard depth <= ProtocolInfo.maxOverrideValueDepth else {
                throw ProtocolError(.badArgument, "\(verb.rawValue): the value of \(key) nests \(depth) levels deep; at most \(ProtocolInfo.maxOverrideValueDepth)")
            }
            e.overrides.append(Override(key, value))
        }
        tokens = rest
    }

    /// An override path: dot-separated non-empty segments, at most `maxOverrideSegments` of
    /// them and `maxOverridePathBytes` bytes (applying a path costs work per segment).
    func checkOverridePath(_ key: String) throws {
        let shown = key.utf8.count > 40 ? key.prefix(40) + "…" : Substring(key)
        let segments = key.utf8.reduce(1) { $1 == UInt8(ascii: ".") ? $0 + 1 : $0 }
        guard segments <= ProtocolInfo.maxOverrideSegments else {
            throw ProtocolError(.badArgument, "\(verb.rawValue): override path '\(shown)' has \(segments) segments; at most \(ProtocolInfo.maxOverrideSegments)")
        }
        guard key.utf8.count <= ProtocolInfo.maxOverridePathBytes else {
            throw ProtocolError(.badArgument, "\(verb.rawValue): override path '\(shown)' is \(key.utf8.count) bytes long; at most \(ProtocolInfo.maxOverridePathBytes)")
        }
        guard !key.hasPrefix("."), !key.hasSuffix("."), !key.contains("..") else {
            throw ProtocolError(.badArgument, "\(verb.rawValue): '\(key.prefix(60))' is not a spec path")
        }
    }

    func finish() throws {
        guard let t = tokens.first else { return }
        let text = (t.key.map { "\($0)=" } ?? "") + t.value
        throw ProtocolError(.badArgument, "\(verb.rawValue): unexpected argument '\(text.prefix(60))' (usage: \(verb.usage))")
    }
}
