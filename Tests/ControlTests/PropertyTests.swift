// Randomised (but seeded, so reproducible) properties of the request parser:
//  • arbitrary bytes never crash it: it returns or throws ProtocolError;
//  • lines built from protocol-looking fragments: whatever it accepts renders back to itself;
//  • random well-formed requests survive render∘parse;
//  • a hand-picked list of awkward requests survives render∘parse.
@testable import Control
import PrunedJSON
import Testing

@Suite struct PropertyTests {
    @Test func randomBytesNeverCrashTheParser() {
        var rng = SeededGenerator(seed: 0x5EED_0001)
        var accepted = 0, rejected = 0
        for n in 0 ..< 2000 {
            let length = Int.random(in: 0 ... 96, using: &rng)
            var bytes = (0 ..< length).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            // a third of the inputs start with a real verb so the argument parsers see junk too
            if n % 3 == 0, let verb = Verb.allCases.randomElement(using: &rng) { bytes = Array((verb.rawValue + " ").utf8) + bytes }
            // and some are printable ASCII only, which gets past the control-character check
            if n % 5 == 0 { bytes = bytes.map { 0x20 + $0 % 0x5F } }
            let line = String(decoding: bytes, as: UTF8.self)
            do {
                let r = try Request.parse(line)
                accepted += 1
                #expect(try Request.parse(r.rendered) == r, "\(String(reflecting: line))")
            } catch is ProtocolError {
                rejected += 1
            } catch {
                Issue.record("non-ProtocolError \(error) for \(bytes)")
            }
        }
        #expect(accepted + rejected == 2000)
    }

    static let fragments: [String] = [
        "42", "r-0042", "0", "r-", "-1", "999999999999", "9999999999999", "conv4", "F2_VGG_4",
        "epochs=", "name=", "dataset.path=", "optimizer.lr=", "a.b=", "a..b=", "group=", "tag=", "priority=", "hold=",
        "spec=", "checkpoint=", "state=", "kind=", "since=", "run=", "owner=", "mode=",
        "3", "-5", "0.1", "1e-3", "1e999", "true", "false", "null", "/x/y", "/a=b", "a=b", "=",
        #""3""#, #""true""#, #""a b""#, #""x\ny\tz""#, #""q\"q""#, #""back\\slash""#, #""""#, #""a=b""#, #""k=v""#,
        #""{x}""#, #""[""#, #""r-0042""#,
        "[1, 2]", "[]", "{}", #"{"a": "}"}"#, #"{"model": "conv4", "epochs": 3}"#, #"["x]", {"y": [1]}]"#,
        "running", "running,paused", "bogus", "prunes", "epochs", "now", "off", "finish", "g1", "a,b", "1000", "1001",
        "help", "submit", "é", "😀", "{", "]", "\"", "\\", "x\"y",
    ]

    /// Lines made of protocol fragments reach far deeper into the argument checks than random
    /// bytes; every line the parser accepts must render to a line that gives the same request.
    @Test func acceptedFragmentLinesRenderBackToThemselves() {
        var rng = SeededGenerator(seed: 0x5EED_0002)
        let verbs = Verb.allCases.map(\.rawValue) + ["PING", "Submit", "bogus"]
        var accepted = 0
        for _ in 0 ..< 20_000 {
            var line = verbs.randomElement(using: &rng)!
            for _ in 0 ..< Int.random(in: 0 ... 5, using: &rng) {
                line += [" ", " ", " ", "\t", "  "].randomElement(using: &rng)!
                var frag = Self.fragments.randomElement(using: &rng)!
                if frag.hasSuffix("="), Bool.random(using: &rng) { frag += Self.fragments.randomElement(using: &rng)! }
                line += frag
            }
            let r: Request
            do {
                r = try Request.parse(line)
            } catch let e as ProtocolError {
                if e.code != .badArgument && e.code != .unknownCommand { Issue.record("\(String(reflecting: line)) gave \(e)") }
                continue
            } catch {
                Issue.record("non-ProtocolError \(error) for \(String(reflecting: line))")
                continue
            }
            accepted += 1
            do {
                #expect(try Request.parse(r.rendered) == r, "\(String(reflecting: line)) rendered as \(String(reflecting: r.rendered))")
            } catch {
                Issue.record("\(String(reflecting: line)) rendered as \(String(reflecting: r.rendered)) is rejected: \(error)")
            }
        }
        #expect(accepted > 1000, "the generator should produce plenty of valid lines (got \(accepted))")
    }

    /// Random well-formed requests of every verb: render∘parse is the identity.
    @Test func randomRequestsRoundTrip() throws {
        var g = RequestGenerator(seed: 0x5EED_0003)
        var seen = Set<Verb>()
        for _ in 0 ..< 3000 {
            let r = g.request()
            seen.insert(r.verb)
            let line = r.rendered
            do {
                #expect(try Request.parse(line) == r, "\(String(reflecting: line))")
            } catch {
                Issue.record("\(r) rendered as \(String(reflecting: line)) is rejected: \(error)")
            }
        }
        #expect(seen == Set(Verb.allCases))
    }

    static let awkward: [Request] = [
        .ping, .version, .status, .unsubscribe, .quit, .help(nil), .help("fork"),
        .submit(edits(preset: "conv4")),
        .submit(edits(preset: "my preset with spaces")),
        .submit(edits(preset: "")),
        .submit(edits(preset: "3")),
        .submit(edits(preset: "true")),
        .submit(edits(preset: "null")),
        .submit(edits(preset: "-1e5")),
        .submit(edits(preset: "{not json")),
        .submit(edits(preset: "[x]")),
        .submit(edits(preset: #"quote " and \ backslash"#)),
        .submit(edits(preset: "line\nbreak\tand tab")),
        .submit(edits(preset: "r-0042")),
        .submit(edits(preset: "key=value")),
        .submit(edits(preset: "spec={}")),
        .submit(edits(preset: "hold=true")),
        .submit(edits(preset: "é😀")),
        .submit(edits(spec: conv4Spec)),
        .submit(edits(spec: obj(("a", .string("}]{[\"\\")), ("b", .array([.string("x] y"), obj(("c", .null))])),
                                ("ctl", .string("\n\r\t\u{0}\u{1F}\u{7F}")), ("n", .number(-0.25)), ("big", .number(1e300))))),
        .submit(edits(preset: "conv4", [
            ("name", .string("3")), ("epochs", .number(3)), ("dataset.path", .string("/x/y")), ("augment", .bool(true)),
            ("a", .string("true")), ("b", .string("null")), ("c", .string("false")), ("d", .null), ("e", .bool(false)),
            ("f", .string("")), ("g", .string("with space")), ("h", .string("q\"uote")), ("i", .string("back\\slash")),
            ("j", .string("new\nline")), ("k", .string("tab\there")), ("l", .string("1e5")), ("m", .string("-")),
            ("n", .string("{")), ("o", .string("[]")), ("p", .string("a=b")), ("q", .number(0.1)), ("r", .number(-1e-9)),
            ("s", .array([.string("x y"), .string("]")])), ("t", obj(("u", .string("{ }")))), ("v", .string(".5")),
            ("w", .number(1.2345678901234568e17)), ("x", .string("r-0042")), ("y", .string("é😀")),
        ], group: "g-1", tags: ["a", "b.c", "d:e"], priority: -1000, hold: false)),
        .submit(edits(preset: "p", tags: ["only"], priority: 1000, hold: true)),
        .list(filter()),
        .list(filter(states: RunState.allCases, group: "g", tag: "t", owner: "Jane Doe")),
        .list(filter(owner: "")),
        .list(filter(owner: "1000")),
        .list(filter(owner: "a=b")),
        .list(filter(states: [.failed, .failed])),
        .show(id(1)), .pause(id(42)), .resume(id(12345)), .cancel(id(999_999_999_999)), .hold(id(7)), .release(id(8)),
        .checkpoint(id(9)),
        .logs(id(9), tail: 10_000),
        .priority(id(1), -1000), .priority(id(1), 0), .priority(id(1), 1000),
        .set(id(5), edits(group: "g")),
        .set(id(5), edits([("optimizer.lr", .number(0.01)), ("note", .string("a \"b\" c"))], tags: ["x"], priority: 2)),
        .fork(id(3), checkpoint: nil, edits()),
        .fork(id(3), checkpoint: "epoch-0003.pck", edits(hold: true)),
        .fork(id(3), checkpoint: "with space.pck", edits([("seed", .number(1))], group: "g", tags: ["t1", "t2"], priority: 9)),
        .fork(id(3), checkpoint: "3", edits()),
        .fork(id(3), checkpoint: "a=b", edits()),
        .metrics(id(4), kind: .epochs, since: 0), .metrics(id(4), kind: .prunes, since: 0), .metrics(id(4), kind: .prunes, since: 17),
        .subscribe(since: nil, run: nil, group: nil), .subscribe(since: 0, run: nil, group: nil),
        .subscribe(since: UInt64.max, run: id(42), group: "grp@host"),
        .drain(.finish), .drain(.now), .drain(.off),
    ]

    @Test(arguments: awkward)
    func renderThenParseIsIdentity(_ r: Request) throws {
        let line = r.rendered
        #expect(try Request.parse(line) == r, "\(String(reflecting: line))")
        #expect(!line.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F })
        #expect(!line.hasPrefix(" ") && !line.hasSuffix(" "))
    }

    /// Maximum-length and pathological lines are refused quickly, without deep recursion.
    @Test func hugeLinesAreRefusedNotCrashed() throws {
        let n = ProtocolInfo.defaultMaxLineBytes
        let lines: [String] = [
            "submit p x=" + String(repeating: "[", count: n / 2) + String(repeating: "]", count: n / 2),
            "submit spec=" + String(repeating: #"{"a":"#, count: n / 5) + "1" + String(repeating: "}", count: n / 5),
            "submit p x=" + String(repeating: "[", count: n),
            "submit p x=\"" + String(repeating: "\\", count: n / 2 - 1),
            "show " + String(repeating: "9", count: n),
            "priority 1 " + String(repeating: "1", count: n),
            String(repeating: "z", count: n),
            "list " + String(repeating: "tag=a ", count: n / 6),
        ]
        for line in lines {
            let code = parseErrorCode(line)
            #expect(code == .badArgument || code == .unknownCommand, "\(line.prefix(40))… gave \(String(describing: code))")
        }
        // and a long but valid line still parses
        let many = "submit p " + (1 ..< ProtocolInfo.maxOverrides).map { "k\($0)=\($0)" }.joined(separator: " ")
            + " name=\"" + String(repeating: "x", count: n / 2) + "\""
        guard case .submit(let e) = try Request.parse(many) else { Issue.record("not a submit"); return }
        #expect(e.overrides.count == ProtocolInfo.maxOverrides && e.overrides.last?.path == "name")
    }

    @Test func awkwardListCoversEveryVerb() {
        #expect(Set(Self.awkward.map(\.verb)) == Set(Verb.allCases))
    }

    @Test func canonicalRenderings() {
        #expect(Request.show(id(42)).rendered == "show r-0042")
        #expect(Request.drain(.finish).rendered == "drain")
        #expect(Request.drain(.now).rendered == "drain now")
        #expect(Request.metrics(id(1), kind: .epochs, since: 0).rendered == "metrics r-0001")
        #expect(Request.help("submit").rendered == "help submit")
        #expect(Request.subscribe(since: 3, run: id(2), group: "g").rendered == "subscribe since=3 run=r-0002 group=g")
        #expect(Request.submit(edits(preset: "conv4", [("epochs", .number(3)), ("name", .string("3")), ("dataset.path", .string("/x/y")),
                                                       ("augment", .bool(true))])).rendered
            == #"submit conv4 epochs=3 name="3" dataset.path=/x/y augment=true"#)
        #expect(Request.list(filter(states: [.running, .paused])).rendered == "list state=running,paused")
        #expect(Request.fork(id(3), checkpoint: "a b", edits(hold: true)).rendered == #"fork r-0003 checkpoint="a b" hold=true"#)
    }

    /// The quoting grammar has escapes only for \" \\ \n \t. A string holding another control
    /// character cannot be written as a request; the rendering must then be refused as a whole
    /// (BAD_ENCODING), never read back as a different request.
    @Test func unrepresentableControlCharactersAreRefusedNotMisread() {
        // (no "\r" here: the server strips a line's CR before parse, see the brief for Request.parse)
        for ctl in ["\u{0}", "\u{1}", "\u{1B}", "\u{7F}"] {
            let rs: [Request] = [
                .submit(edits(preset: "p" + ctl)),
                .submit(edits(preset: "p", [("note", .string("a" + ctl + "b"))])),
                .list(filter(owner: "o" + ctl)),
                .fork(id(1), checkpoint: "c" + ctl, edits()),
            ]
            for r in rs { #expect(parseErrorCode(r.rendered) == .badEncoding, "\(String(reflecting: r.rendered))") }
        }
    }
}

/// Generates random well-formed requests (fields within what `parse` accepts).
struct RequestGenerator {
    var rng: SeededGenerator
    init(seed: UInt64) { rng = SeededGenerator(seed: seed) }

    /// Characters the quoting grammar can carry (no control characters besides \n and \t).
    static let textAlphabet: [String] = ["a", "Z", "0", "9", " ", "\"", "\\", "\n", "\t", "=", "{", "}", "[", "]", ",",
                                         ".", "-", "+", "/", "e", "t", "r", "u", "n", "l", "é", "😀", "r-"]
    static let specials: [String] = ["", "3", "-1", "1e5", "0.5", "true", "false", "null", "r-0042", "42", "[]", "{}", "a=b", "x"]
    static let nameAlphabet = Array("abcXYZ019" + RunLabel.punctuation)
    static let paths = ["epochs", "name", "dataset.path", "optimizer.lr", "a-b.c_d", "x", "X9", "_u", "lr_milestones", "e.f.g"]
    static let numbers: [Double] = [0, 1, 3, -7, 0.1, -0.25, 1e-7, 1e300, -2.5e-300, 1.2345678901234568e17, 1e15, 4_503_599_627_370_496]

    mutating func int(_ r: ClosedRange<Int>) -> Int { Int.random(in: r, using: &rng) }
    mutating func coin() -> Bool { Bool.random(using: &rng) }

    mutating func text() -> String {
        if int(0 ... 3) == 0 { return Self.specials.randomElement(using: &rng)! }
        return (0 ..< int(0 ... 8)).map { _ in Self.textAlphabet.randomElement(using: &rng)! }.joined()
    }

    /// Any Unicode scalar text, control characters included (fine inside JSON strings).
    mutating func jsonText() -> String {
        var s = String.UnicodeScalarView()
        for _ in 0 ..< int(0 ... 6) {
            switch int(0 ... 3) {
            case 0: s.append(Unicode.Scalar(UInt8(int(0 ... 0x7F))))
            case 1: s.append(contentsOf: Self.textAlphabet.randomElement(using: &rng)!.unicodeScalars)
            default: s.append(Unicode.Scalar(UInt8(int(0x20 ... 0x7E))))
            }
        }
        return String(s)
    }

    mutating func name() -> String { String((0 ..< int(1 ... 10)).map { _ in Self.nameAlphabet.randomElement(using: &rng)! }) }

    mutating func json(depth: Int) -> JSON {
        switch int(0 ... (depth > 0 ? 6 : 4)) {
        case 0: return .null
        case 1: return .bool(coin())
        case 2: return .number(Self.numbers.randomElement(using: &rng)!)
        case 3, 4: return .string(jsonText())
        case 5: return .array((0 ..< int(0 ... 3)).map { _ in json(depth: depth - 1) })
        default:
            var pairs: [(String, JSON)] = []
            for _ in 0 ..< int(0 ... 3) {
                let k = jsonText()
                if !pairs.contains(where: { $0.0 == k }) { pairs.append((k, json(depth: depth - 1))) }
            }
            return .object(pairs)
        }
    }

    /// An override value: strings here go through the quoting grammar, JSON containers do not.
    mutating func overrideValue() -> JSON {
        switch int(0 ... 5) {
        case 0: return .null
        case 1: return .bool(coin())
        case 2: return .number(Self.numbers.randomElement(using: &rng)!)
        case 3, 4: return .string(text())
        default: return int(0 ... 1) == 0 ? .array((0 ..< int(0 ... 3)).map { _ in json(depth: 2) })
            : .object([("k", json(depth: 2)), ("l", json(depth: 1))])
        }
    }

    mutating func runID() -> RunID { RunID(int(0 ... 3) == 0 ? int(1 ... 999_999_999_999) : int(1 ... 20000)) }

    mutating func edits(preset: Bool, spec: Bool, hold: Bool) -> RunEdits {
        var e = RunEdits()
        if preset { e.preset = text() }
        if spec {
            var pairs: [(String, JSON)] = [("model", .string("conv4"))]
            for i in 0 ..< int(0 ... 3) { pairs.append(("f\(i)", json(depth: 3))) }
            e.spec = .object(pairs)
        }
        for p in Self.paths.shuffled(using: &rng).prefix(int(0 ... 4)) { e.overrides.append(Override(p, overrideValue())) }
        if coin() { e.group = name() }
        if coin() { e.tags = (0 ..< int(1 ... 3)).map { _ in name() } }
        if coin() { e.priority = int(-1000 ... 1000) }
        if hold, coin() { e.hold = coin() }
        return e
    }

    mutating func request() -> Request {
        switch Verb.allCases.randomElement(using: &rng)! {
        case .ping: return .ping
        case .version: return .version
        case .status: return .status
        case .unsubscribe: return .unsubscribe
        case .quit: return .quit
        case .help: return .help(coin() ? nil : Verb.allCases.randomElement(using: &rng)!.rawValue)
        case .show: return .show(runID())
        case .pause: return .pause(runID())
        case .resume: return .resume(runID())
        case .cancel: return .cancel(runID())
        case .hold: return .hold(runID())
        case .release: return .release(runID())
        case .checkpoint: return .checkpoint(runID())
        case .logs: return .logs(runID(), tail: int(1 ... 10_000))
        case .priority: return .priority(runID(), int(-1000 ... 1000))
        case .submit:
            let which = int(0 ... 2)
            return .submit(edits(preset: which != 1, spec: which != 0, hold: true))
        case .set:
            var e = edits(preset: false, spec: false, hold: false)
            if e.isEmpty { e.priority = 0 }
            return .set(runID(), e)
        case .fork:
            var ck: String? = nil
            if coin() {
                ck = text().replacingSlashes()
                if ck!.isEmpty { ck = "ck.pck" }
            }
            return .fork(runID(), checkpoint: ck, edits(preset: false, spec: false, hold: true))
        case .list:
            var f = ListFilter()
            f.states = (0 ..< int(0 ... 3)).map { _ in RunState.allCases.randomElement(using: &rng)! }
            if coin() { f.group = name() }
            if coin() { f.tag = name() }
            if coin() { f.owner = text() }
            return .list(f)
        case .metrics:
            return .metrics(runID(), kind: MetricsKind.allCases.randomElement(using: &rng)!, since: coin() ? 0 : int(0 ... 100_000))
        case .subscribe:
            return .subscribe(since: coin() ? nil : UInt64.random(in: 0 ... UInt64.max, using: &rng),
                              run: coin() ? nil : runID(), group: coin() ? nil : name())
        case .drain: return .drain(DrainMode.allCases.randomElement(using: &rng)!)
        }
    }
}

private extension String {
    func replacingSlashes() -> String { String(unicodeScalars.map { $0 == "/" ? "_" : Character($0) }) }
}

/// Boundary numbers in every numeric argument, and the limits on override paths, override
/// counts, tags and JSON nesting: the parser answers each with a request whose numbers are in
/// range or with a ProtocolError, never a trap, and refuses oversized inputs with the limit.
extension PropertyTests {
    /// 0, −1, 2⁶³−1, 2⁶³, 2⁶⁴−1, 2⁶⁴, ±1e309, −0, NaN, infinities, underflow, hex, underscores,
    /// huge exponents, 18- and 40-digit numbers and their neighbours.
    static let boundaryNumbers: [String] = [
        "0", "-1", "1", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "18446744073709551615", "18446744073709551616", "4294967295", "4294967296", "1e309", "-1e309", "-0", "-0.0", "+0", "+1",
        "NaN", "nan", "-nan", "inf", "-inf", "Infinity", "1e-400", "-1e-400", "0x10", "1_000", "9e999999999", "-9e999999999",
        "123456789012345678", "1234567890123456789012345678901234567890", "9007199254740993", "8999999999999999", "9e15",
        "0.5", "1e", "1e+", ".5", "5.", "--1", "1e15", "999999999999", "1000000000000", "r-999999999999", "r-0", "r--1",
        "1.0", "1e0", "10000", "10001", "1000", "1001", "-1000", "-1001",
    ]

    /// Every numeric argument of every verb (`V` is replaced by the boundary value).
    static let numericTemplates: [String] = [
        "subscribe since=V", "subscribe run=V", "metrics r-0001 since=V", "metrics V", "logs r-0001 tail=V", "logs V",
        "priority r-0001 V", "priority V 5", "show V", "pause V", "resume V", "cancel V", "hold V", "release V", "checkpoint V",
        "list owner=V", "fork V", "fork r-0001 checkpoint=V", "fork r-0001 seed=V", "set V priority=1", "set r-0001 priority=V",
        "set r-0001 batch_size=V", "submit p priority=V", "submit p epochs=V", "submit p lr_milestones=[V]",
        "submit p pruning.layers.V.fraction=0.5", "submit spec={\"epochs\":V}", "submit p width=V hold=true",
    ]

    @Test func boundaryNumbersInEveryNumericArgumentAreInRangeOrRefused() throws {
        for template in Self.numericTemplates {
            for v in Self.boundaryNumbers {
                let line = template.replacingOccurrences(of: "V", with: v)
                let r: Request
                do {
                    r = try Request.parse(line)
                } catch let e as ProtocolError {
                    #expect(e.code == .badArgument, "\(line) → \(e)")
                    continue
                } catch {
                    Issue.record("non-ProtocolError \(error) for \(line)")
                    continue
                }
                #expect(try Request.parse(r.rendered) == r, "\(line) rendered as \(r.rendered)")
                var ids: [RunID] = []
                var overrides: [Override] = []
                switch r {
                case .subscribe(_, let run, _): ids += run.map { [$0] } ?? []
                case .metrics(let id, _, let since): ids.append(id); #expect(since >= 0, "\(line)")
                case .logs(let id, let tail): ids.append(id); #expect((1 ... 10_000).contains(tail), "\(line)")
                case .priority(let id, let p): ids.append(id); #expect((-1000 ... 1000).contains(p), "\(line)")
                case .show(let id), .pause(let id), .resume(let id), .cancel(let id), .hold(let id), .release(let id), .checkpoint(let id):
                    ids.append(id)
                case .fork(let id, _, let e): ids.append(id); overrides = e.overrides
                case .set(let id, let e):
                    ids.append(id)
                    overrides = e.overrides
                    if let p = e.priority { #expect((-1000 ... 1000).contains(p), "\(line)") }
                case .submit(let e):
                    overrides = e.overrides
                    if let p = e.priority { #expect((-1000 ... 1000).contains(p), "\(line)") }
                    if let spec = e.spec { #expect(spec.depth <= JSON.maxDepth) }
                default: break
                }
                for id in ids { #expect((1 ... 999_999_999_999).contains(id.number), "\(line) gave \(id.number)") }
                // A number that reaches a spec is finite; anything else that looks numeric stays a string.
                for o in overrides {
                    if case .number(let d) = o.value { #expect(d.isFinite, "\(line)") }
                    if case .array(let a) = o.value, case .number(let d)? = a.first { #expect(d.isFinite, "\(line)") }
                }
            }
        }
    }

    @Test func overridePathsAreBoundedInSegmentsAndBytes() throws {
        let eight = (1 ... ProtocolInfo.maxOverrideSegments).map { "s\($0)" }.joined(separator: ".")
        guard case .submit(let e) = try Request.parse("submit p \(eight)=1") else { Issue.record("not a submit"); return }
        #expect(e.overrides == [Override(eight, .number(1))])
        for (count, verb) in [(9, "submit p"), (10_000, "submit p"), (30_000, "set 1"), (9, "fork 1")] {
            let path = Array(repeating: "a", count: count).joined(separator: ".")
            do {
                _ = try Request.parse("\(verb) \(path)=1")
                Issue.record("accepted a path of \(count) segments")
            } catch let e as ProtocolError {
                #expect(e.code == .badArgument)
                #expect(e.message.contains("override path 'a.a.a") && e.message.contains("has \(count) segments; at most 8"), "\(e.message)")
                #expect(e.message.count < 200)
            }
        }
        let longest = String(repeating: "k", count: ProtocolInfo.maxOverridePathBytes)
        #expect(parseErrorCode("submit p \(longest)=1") == nil)
        do {
            _ = try Request.parse("submit p \(longest)k=1")
            Issue.record("accepted a 257-byte path")
        } catch let e as ProtocolError {
            #expect(e.message.contains("is 257 bytes long; at most 256"), "\(e.message)")
        }
    }

    @Test func overridesAndTagsPerRequestAreBounded() throws {
        let max = ProtocolInfo.maxOverrides
        let ok = "submit p " + (0 ..< max).map { "k\($0)=\($0)" }.joined(separator: " ")
        #expect(parseErrorCode(ok) == nil)
        for n in [max + 1, 10_000] {
            do {
                _ = try Request.parse("set 1 " + (0 ..< n).map { "k\($0)=\($0)" }.joined(separator: " "))
                Issue.record("accepted \(n) overrides")
            } catch let e as ProtocolError {
                #expect(e.code == .badArgument && e.message.contains("more than \(max) spec overrides"), "\(e.message)")
            }
        }
        let tags = (0 ..< ProtocolInfo.maxTags).map { "t\($0)" }
        guard case .submit(let e) = try Request.parse("submit p tag=" + tags.joined(separator: ",")) else { Issue.record("not a submit"); return }
        #expect(e.tags == tags)
        for line in ["submit p tag=" + (tags + ["x"]).joined(separator: ","),
                     "fork 1 " + (0 ... 10_000).map { "tag=t\($0)" }.joined(separator: " ")] {
            do {
                _ = try Request.parse(line)
                Issue.record("accepted more than \(ProtocolInfo.maxTags) tags")
            } catch let e as ProtocolError {
                #expect(e.code == .badArgument && e.message.contains("at most \(ProtocolInfo.maxTags) per run"), "\(e.message)")
            }
        }
    }

    @Test func jsonNestingIsBounded() throws {
        func nested(_ n: Int) -> String { String(repeating: "[", count: n) + String(repeating: "]", count: n) }
        // An override value: at most 16 levels.
        #expect(parseErrorCode("submit p x=" + nested(ProtocolInfo.maxOverrideValueDepth)) == nil)
        do {
            _ = try Request.parse("submit p x=" + nested(ProtocolInfo.maxOverrideValueDepth + 1))
            Issue.record("accepted a 17-level override value")
        } catch let e as ProtocolError {
            #expect(e.message.contains("the value of x nests 17 levels deep; at most 16"), "\(e.message)")
        }
        // An inline spec: at most 64 levels; 100,000 are refused at level 65, without recursing further.
        let deepest = "{\"a\":" + nested(JSON.maxDepth - 1) + "}"
        #expect(parseErrorCode("submit spec=" + deepest) == nil)
        for n in [JSON.maxDepth + 1, 100_000] {
            let inner = String(repeating: "[", count: n - 1) + String(repeating: "]", count: n - 1)
            do {
                _ = try Request.parse("submit spec={\"a\":" + inner + "}")
                Issue.record("accepted \(n) levels")
            } catch let e as ProtocolError {
                #expect(e.code == .badArgument && e.message.contains("nesting deeper than 64 levels"), "\(e.message)")
            }
        }
        #expect(throws: JSONParseError.self) { try JSON.parse(nested(1_000_000)) }
        let three = try JSON.parse("[{\"a\":[]}]")
        #expect(JSON.number(1).depth == 0 && three.depth == 3)
    }

    /// `intValue` is the one door from a JSON number to an Int: it must never trap.
    @Test func jsonIntValueRefusesWhatIsNotAnExactInteger() {
        let cases: [(Double, Int?)] = [
            (0, 0), (-0.0, 0), (1, 1), (-1, -1), (8_999_999_999_999_998, 8_999_999_999_999_998), (9e15, nil), (-9e15, nil),
            (9.223372036854775807e18, nil), (1.8446744073709551615e19, nil), (1e308, nil), (-1e308, nil), (.infinity, nil),
            (-.infinity, nil), (.nan, nil), (0.5, nil), (-2.5, nil), (1e-320, nil), (.greatestFiniteMagnitude, nil),
        ]
        for (d, expected) in cases { #expect(JSON.number(d).intValue == expected, "\(d)") }
        #expect(JSON.format(-0.0) == "0" && JSON.format(.nan) == "null" && JSON.format(1e300) == "1e+300")
    }
}
