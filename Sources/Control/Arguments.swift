// Reading a request's arguments once the lexer has split them: run ids, group and tag names,
// priorities, executor and Slurm options, spec edits and override paths. `Request.parse`
// consumes them through `Arguments`; whatever is left over is an error.
import PrunedJSON

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
        if let g = take("group") { e.group = verb == .set && g.value.isEmpty ? "" : try RunLabel.validate(g.value, field: "group") }
        while let t = take("tag") {
            if verb == .set && t.value.isEmpty {
                guard e.tags == nil else { throw ProtocolError(.badArgument, "set: an empty tag= clears the tags and goes alone") }
                e.tags = []
                continue
            }
            if e.tags == [] && verb == .set { throw ProtocolError(.badArgument, "set: an empty tag= clears the tags and goes alone") }
            let more = try t.value.split(separator: ",", omittingEmptySubsequences: false).map { try RunLabel.validate(String($0), field: "tag") }
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
