// Request parsing as tables: a line and the request it must give, or a line and the error code
// it must be rejected with. Every verb has accepting and rejecting rows (checked below), and
// every accepted row also survives render∘parse.
@testable import Control
import PrunedJSON
import Testing

struct Accept: Sendable, CustomTestStringConvertible {
    let line: String
    let expected: Request
    var testDescription: String { String(reflecting: line) }
}

struct Reject: Sendable, CustomTestStringConvertible {
    let line: String
    let code: ErrorCode
    /// A fragment the message must contain (names the offending thing), if given.
    let mentions: String?
    var testDescription: String { String(reflecting: line) + " → " + code.rawValue }
}

private func A(_ line: String, _ expected: Request) -> Accept { Accept(line: line, expected: expected) }
private func R(_ line: String, _ code: ErrorCode = .badArgument, _ mentions: String? = nil) -> Reject {
    Reject(line: line, code: code, mentions: mentions)
}

let conv4Spec: JSON = obj(("model", .string("conv4")),
                          ("dataset", obj(("kind", .string("fashion_mnist")), ("path", .string("/d ata")))),
                          ("epochs", .number(3)))

let acceptingRows: [Accept] = [
    // no-argument verbs, case-insensitive, surrounding blanks
    A("ping", .ping),
    A("PING", .ping),
    A("Ping", .ping),
    A("   ping   ", .ping),
    A("\tping\t", .ping),
    A("version", .version),
    A("VERSION", .version),
    A("status", .status),
    A("StAtUs", .status),
    A("unsubscribe", .unsubscribe),
    A("quit", .quit),
    A("QUIT", .quit),

    // help
    A("help", .help(nil)),
    A("help submit", .help("submit")),
    A("help SUBMIT", .help("submit")),
    A("HELP Drain", .help("drain")),
    A(#"help "ping""#, .help("ping")),
    A("help help", .help("help")),

    // submit: presets, inline specs, typed overrides
    A("submit conv4", .submit(edits(preset: "conv4"))),
    A("SUBMIT F2_VGG_4", .submit(edits(preset: "F2_VGG_4"))),
    A(#"submit "my preset""#, .submit(edits(preset: "my preset"))),
    A("submit 3", .submit(edits(preset: "3"))),
    A(#"submit """#, .submit(edits(preset: ""))),
    A("submit conv4 epochs=3", .submit(edits(preset: "conv4", [("epochs", .number(3))]))),
    A(#"submit conv4 name="3""#, .submit(edits(preset: "conv4", [("name", .string("3"))]))),
    A("submit conv4 dataset.path=/x/y", .submit(edits(preset: "conv4", [("dataset.path", .string("/x/y"))]))),
    A("submit conv4 augment=true", .submit(edits(preset: "conv4", [("augment", .bool(true))]))),
    A("submit conv4 augment=false", .submit(edits(preset: "conv4", [("augment", .bool(false))]))),
    A(#"submit conv4 augment="true""#, .submit(edits(preset: "conv4", [("augment", .string("true"))]))),
    A("submit conv4 note=null", .submit(edits(preset: "conv4", [("note", .null)]))),
    A(#"submit conv4 note="null""#, .submit(edits(preset: "conv4", [("note", .string("null"))]))),
    A("submit conv4 optimizer.lr=1e-3", .submit(edits(preset: "conv4", [("optimizer.lr", .number(0.001))]))),
    A("submit conv4 optimizer.lr=0.1", .submit(edits(preset: "conv4", [("optimizer.lr", .number(0.1))]))),
    A("submit conv4 seed=-7", .submit(edits(preset: "conv4", [("seed", .number(-7))]))),
    A("submit conv4 epochs=007", .submit(edits(preset: "conv4", [("epochs", .number(7))]))),
    A("submit conv4 gamma=2.5E+1", .submit(edits(preset: "conv4", [("gamma", .number(25))]))),
    // words that merely resemble numbers stay strings
    A("submit conv4 version=1.2.3", .submit(edits(preset: "conv4", [("version", .string("1.2.3"))]))),
    A("submit conv4 lr=.5", .submit(edits(preset: "conv4", [("lr", .string(".5"))]))),
    A("submit conv4 x=+5", .submit(edits(preset: "conv4", [("x", .string("+5"))]))),
    A("submit conv4 x=1e999", .submit(edits(preset: "conv4", [("x", .string("1e999"))]))),
    A("submit conv4 x=inf", .submit(edits(preset: "conv4", [("x", .string("inf"))]))),
    A("submit conv4 x=-", .submit(edits(preset: "conv4", [("x", .string("-"))]))),
    A("submit conv4 x=True", .submit(edits(preset: "conv4", [("x", .string("True"))]))),
    A("submit conv4 dataset.path=/a=b", .submit(edits(preset: "conv4", [("dataset.path", .string("/a=b"))]))),
    A("submit conv4 x=", .submit(edits(preset: "conv4", [("x", .string(""))]))),
    A("submit conv4 under_score.with-dash9=1", .submit(edits(preset: "conv4", [("under_score.with-dash9", .number(1))]))),
    A("submit conv4 Epochs=3 epochs=4", .submit(edits(preset: "conv4", [("Epochs", .number(3)), ("epochs", .number(4))]))),
    // quoted strings and their escapes
    A(#"submit conv4 note="hello world""#, .submit(edits(preset: "conv4", [("note", .string("hello world"))]))),
    A(#"submit conv4 note="a \"quoted\" word""#, .submit(edits(preset: "conv4", [("note", .string(#"a "quoted" word"#))]))),
    A(#"submit conv4 path="C:\\dir\\x""#, .submit(edits(preset: "conv4", [("path", .string(#"C:\dir\x"#))]))),
    A(#"submit conv4 note="line1\nline2\tcol""#, .submit(edits(preset: "conv4", [("note", .string("line1\nline2\tcol"))]))),
    A(#"submit conv4 note="""#, .submit(edits(preset: "conv4", [("note", .string(""))]))),
    A(#"submit conv4 note="{not json}""#, .submit(edits(preset: "conv4", [("note", .string("{not json}"))]))),
    A("submit conv4 note=\"tab\tinside\"", .submit(edits(preset: "conv4", [("note", .string("tab\tinside"))]))),
    A("submit conv4 note=héllo→😀", .submit(edits(preset: "conv4", [("note", .string("héllo→😀"))]))),
    // JSON values: spaces, nesting, brackets inside strings
    A("submit conv4 lr_milestones=[83, 125]", .submit(edits(preset: "conv4", [("lr_milestones", .array([.number(83), .number(125)]))]))),
    A("submit conv4 x=[]", .submit(edits(preset: "conv4", [("x", .array([]))]))),
    A("submit conv4 x={}", .submit(edits(preset: "conv4", [("x", .object([]))]))),
    A(#"submit conv4 x=[[1, [2]], {"a": [3]}]"#,
      .submit(edits(preset: "conv4", [("x", .array([.array([.number(1), .array([.number(2)])]), obj(("a", .array([.number(3)])))]))]))),
    A(#"submit conv4 optimizer={"kind": "sgd", "lr": 0.1}"#,
      .submit(edits(preset: "conv4", [("optimizer", obj(("kind", .string("sgd")), ("lr", .number(0.1))))]))),
    A(#"submit spec={"model": "conv4", "dataset": {"kind": "fashion_mnist", "path": "/d ata"}, "epochs": 3}"#,
      .submit(edits(spec: conv4Spec))),
    A(#"submit spec={"a": "}]{[", "b": ["x]", "{"]}"#,
      .submit(edits(spec: obj(("a", .string("}]{[")), ("b", .array([.string("x]"), .string("{")])))))),
    A(#"submit spec={"q": "say \"}\" now \\"}"#, .submit(edits(spec: obj(("q", .string(#"say "}" now \"#)))))),
    A(#"submit spec={"nl": "a\nb", "u": "\u00e9"}"#, .submit(edits(spec: obj(("nl", .string("a\nb")), ("u", .string("é")))))),
    A(#"submit spec={} conv4"#, .submit(edits(preset: "conv4", spec: .object([])))),
    // DEL can travel inside JSON strings as an escape (it must be rendered escaped, too)
    A(#"submit conv4 x=["\u007f", "\u0000"]"#, .submit(edits(preset: "conv4", [("x", .array([.string("\u{7F}"), .string("\u{0}")]))]))),
    A(#"submit spec={"d": "a\u007Fb"}"#, .submit(edits(spec: obj(("d", .string("a\u{7F}b")))))),
    A(#"submit "a=b""#, .submit(edits(preset: "a=b"))),
    // reserved keys
    A("submit conv4 group=g1 tag=a,b tag=c priority=5 hold=true",
      .submit(edits(preset: "conv4", group: "g1", tags: ["a", "b", "c"], priority: 5, hold: true))),
    A("submit conv4 hold=false", .submit(edits(preset: "conv4", hold: false))),
    A("submit conv4 priority=-1000", .submit(edits(preset: "conv4", priority: -1000))),
    A("submit conv4 priority=1000", .submit(edits(preset: "conv4", priority: 1000))),
    A("submit conv4 group=A.b_c-d+e:f@g", .submit(edits(preset: "conv4", group: "A.b_c-d+e:f@g"))),
    A("submit conv4 group=" + String(repeating: "g", count: 64), .submit(edits(preset: "conv4", group: String(repeating: "g", count: 64)))),
    // the preset positional may come anywhere
    A("submit epochs=3 conv4", .submit(edits(preset: "conv4", [("epochs", .number(3))]))),
    A("submit\tconv4\t\tepochs=3", .submit(edits(preset: "conv4", [("epochs", .number(3))]))),

    // list
    A("list", .list(filter())),
    A("list state=running", .list(filter(states: [.running]))),
    A("list state=queued,held,running,paused,interrupted,completed,failed,cancelled", .list(filter(states: RunState.allCases))),
    A("list state=running,paused group=g tag=t owner=1000", .list(filter(states: [.running, .paused], group: "g", tag: "t", owner: "1000"))),
    A(#"list owner="Jane Doe""#, .list(filter(owner: "Jane Doe"))),
    A("list owner=alice", .list(filter(owner: "alice"))),

    // run ids
    A("show 42", .show(id(42))),
    A("show r-0042", .show(id(42))),
    A("show r-42", .show(id(42))),
    A("show 0042", .show(id(42))),
    A("show 1", .show(id(1))),
    A("show r-12345", .show(id(12345))),
    A("show 999999999999", .show(id(999_999_999_999))),
    A(#"show "r-0007""#, .show(id(7))),
    A("pause 7", .pause(id(7))),
    A("resume r-0007", .resume(id(7))),
    A("cancel 3", .cancel(id(3))),
    A("hold 3", .hold(id(3))),
    A("release r-0003", .release(id(3))),
    A("checkpoint 9", .checkpoint(id(9))),
    A("logs 9", .logs(id(9), tail: 100)),
    A("logs r-9 tail=5", .logs(id(9), tail: 5)),
    A("CHECKPOINT r-9", .checkpoint(id(9))),

    // priority
    A("priority 42 5", .priority(id(42), 5)),
    A("priority r-0001 -1000", .priority(id(1), -1000)),
    A("priority 1 1000", .priority(id(1), 1000)),
    A("priority 1 0", .priority(id(1), 0)),
    A("priority 1 -0", .priority(id(1), 0)),

    // set
    A("set 42 epochs=10", .set(id(42), edits([("epochs", .number(10))]))),
    A("set 42 group=g", .set(id(42), edits(group: "g"))),
    A("set 42 tag=a", .set(id(42), edits(tags: ["a"]))),
    A("set 42 tag=", .set(id(42), edits(tags: []))),
    A(#"set 42 group="""#, .set(id(42), edits(group: ""))),
    A("set 42 priority=3", .set(id(42), edits(priority: 3))),
    A(#"set r-0042 optimizer.lr=0.01 dataset.path="/a b" tag=x,y"#,
      .set(id(42), edits([("optimizer.lr", .number(0.01)), ("dataset.path", .string("/a b"))], tags: ["x", "y"]))),

    // fork
    A("fork 42", .fork(id(42), checkpoint: nil, edits())),
    A("fork 42 checkpoint=epoch-0003.pck", .fork(id(42), checkpoint: "epoch-0003.pck", edits())),
    A(#"fork r-0042 checkpoint="a b.pck" optimizer.lr=0.1 hold=true group=g"#,
      .fork(id(42), checkpoint: "a b.pck", edits([("optimizer.lr", .number(0.1))], group: "g", hold: true))),
    A("fork 42 epochs=5 priority=-3", .fork(id(42), checkpoint: nil, edits([("epochs", .number(5))], priority: -3))),

    // metrics
    A("metrics 42", .metrics(id(42), kind: .epochs, since: 0)),
    A("metrics 42 kind=prunes", .metrics(id(42), kind: .prunes, since: 0)),
    A("metrics r-0042 since=5 kind=epochs", .metrics(id(42), kind: .epochs, since: 5)),
    A("metrics 42 since=0", .metrics(id(42), kind: .epochs, since: 0)),

    // subscribe
    A("subscribe", .subscribe(since: nil, run: nil, group: nil)),
    A("subscribe since=0", .subscribe(since: 0, run: nil, group: nil)),
    A("subscribe since=18446744073709551615", .subscribe(since: UInt64.max, run: nil, group: nil)),
    A("subscribe run=42", .subscribe(since: nil, run: id(42), group: nil)),
    A("subscribe run=r-0042 group=g since=7", .subscribe(since: 7, run: id(42), group: "g")),

    // drain
    A("drain", .drain(.finish)),
    A("drain finish", .drain(.finish)),
    A("drain now", .drain(.now)),
    A("drain off", .drain(.off)),
    A("DRAIN now", .drain(.now)),
]

let rejectingRows: [Reject] = [
    // not a request at all
    R(""),
    R("   "),
    R("\t"),
    R(#""ping""#, .badArgument, "command word"),
    R("ping=1", .badArgument, "command word"),
    R("frobnicate", .unknownCommand, "frobnicate"),
    R("pings", .unknownCommand),
    R("pin", .unknownCommand),
    R("[]", .unknownCommand),
    R("shutdown now", .unknownCommand),
    R("{", .badArgument, "unbalanced"),

    // control characters anywhere (checked before everything else)
    R("ping\u{0}", .badEncoding, "U+0"),
    R("\u{0}", .badEncoding),
    R("ping\u{7F}", .badEncoding, "U+7F"),
    R("frob\u{0}nicate", .badEncoding),
    R("ping\nping", .badEncoding, "U+A"),
    R("ping\u{1B}[0m", .badEncoding, "U+1B"),
    R("show 4\u{1}2", .badEncoding, "U+1"),
    R("ping\u{0B}", .badEncoding),
    R("ping\u{0C}", .badEncoding),
    R("submit conv4 note=\"a\u{0}b\"", .badEncoding),
    R("submit conv4 note=\"a\u{7F}b\"", .badEncoding),
    R("submit spec={\"a\": \"\u{1F}\"}", .badEncoding),

    // leftovers on argument-less verbs
    R("ping extra", .badArgument, "unexpected argument 'extra'"),
    R("ping x=1", .badArgument, "x=1"),
    R("version 2", .badArgument),
    R("status all", .badArgument),
    R("unsubscribe 42", .badArgument),
    R("quit now", .badArgument),

    // help
    R("help bogus", .badArgument, "bogus"),
    R("help submit extra", .badArgument, "extra"),
    R("help x=1", .badArgument),
    R("help submit list", .badArgument),

    // run ids
    R("show", .badArgument, "missing the run id"),
    R("show 0", .badArgument, "'0'"),
    R("show r-0", .badArgument),
    R("show r-0000", .badArgument),
    R("show -1", .badArgument, "'-1'"),
    R("show r-", .badArgument),
    R("show r-r-1", .badArgument),
    R("show R-42", .badArgument),
    R("show 9999999999999", .badArgument),
    R("show 99999999999999999999999999", .badArgument),
    R("show 4.2", .badArgument),
    R("show +4", .badArgument),
    R("show abc", .badArgument),
    R("show r-00x", .badArgument),
    R("show ٤٢", .badArgument),
    R("show 42 43", .badArgument, "43"),
    R("show 42 x=1", .badArgument, "x=1"),
    R("show id=42", .badArgument, "missing the run id"),
    R("pause", .badArgument),
    R("pause 42 now", .badArgument),
    R("resume 0", .badArgument),
    R("cancel r-", .badArgument),
    R("cancel 42 force=true", .badArgument),
    R("hold -1", .badArgument),
    R("release 1234567890123", .badArgument),
    R("checkpoint 42 now", .badArgument),
    R("checkpoint", .badArgument),
    R("logs", .badArgument),
    R("logs 9 tail=0", .badArgument, "tail"),
    R("logs 9 tail=x", .badArgument, "tail"),
    R("logs 9 extra", .badArgument),

    // priority
    R("priority 42", .badArgument, "missing the priority"),
    R("priority", .badArgument),
    R("priority 42 1001", .badArgument, "-1000…1000"),
    R("priority 42 -1001", .badArgument),
    R("priority 42 high", .badArgument),
    R("priority 42 1.5", .badArgument),
    R("priority 42 1e2", .badArgument),
    R("priority 42 99999999999999999999", .badArgument),
    R("priority x 5", .badArgument),
    R("priority 42 5 6", .badArgument, "'6'"),
    R("priority 42 priority=5", .badArgument),

    // submit
    R("submit", .badArgument, "preset"),
    R("submit epochs=3", .badArgument, "preset"),
    R("submit group=g", .badArgument),
    R("submit conv4 extra", .badArgument, "extra"),
    R("submit conv4 a=1 a=2", .badArgument, "a given twice"),
    R("submit conv4 dataset.path=/x dataset.path=/y", .badArgument, "dataset.path"),
    R("submit conv4 group=a group=b", .badArgument, "group given twice"),
    R("submit conv4 priority=1 priority=2", .badArgument, "priority"),
    R("submit conv4 hold=true hold=false", .badArgument, "hold"),
    R("submit spec={} spec={}", .badArgument, "spec"),
    R("submit conv4 checkpoint=x", .badArgument, "checkpoint"),
    R("submit conv4 hold=yes", .badArgument, "hold"),
    R("submit conv4 hold=1", .badArgument),
    R("submit conv4 priority=1001", .badArgument),
    R("submit conv4 priority=-1001", .badArgument),
    R("submit conv4 priority=high", .badArgument),
    R("submit conv4 priority=", .badArgument),
    R("submit spec=[1]", .badArgument, "JSON object"),
    R(#"submit spec="{}""#, .badArgument, "JSON object"),
    R("submit spec=", .badArgument),
    R("submit spec=3", .badArgument),
    R(#"submit spec={"a":}"#, .badArgument, "spec"),
    R(#"submit spec={"a":1"#, .badArgument, "unbalanced"),
    R(#"submit spec={"a":1,"a":2}"#, .badArgument, "duplicate"),
    R(#"submit spec={"a":1]"#, .badArgument),
    R(#"submit spec={"a": "}"#, .badArgument, "unbalanced"),
    R("submit conv4 x=[1,]", .badArgument),
    R("submit conv4 x=[1]y", .badArgument, "expected a space"),
    R("submit conv4 x=" + String(repeating: "[", count: 70) + String(repeating: "]", count: 70), .badArgument),
    R("submit conv4 group=bad/name", .badArgument, "group"),
    R("submit conv4 group=", .badArgument),
    R("submit conv4 group=" + String(repeating: "g", count: 65), .badArgument),
    R(#"submit conv4 group="a b""#, .badArgument),
    R("submit conv4 tag=a,,b", .badArgument, "tag"),
    R("submit conv4 tag=", .badArgument),
    R("submit conv4 tag=a,", .badArgument),
    R("submit conv4 tag=ok,bad!", .badArgument),
    R("submit conv4 a..b=1", .badArgument, "spec path"),
    R("submit conv4 a.=1", .badArgument, "spec path"),
    R(#"submit conv4 x="unterminated"#, .badArgument, "unterminated"),
    R(#"submit conv4 x="ends in backslash\"#, .badArgument, "unterminated"),
    R(#"submit conv4 x="bad \q escape""#, .badArgument, "escape"),
    R(#"submit conv4 x="\u0041""#, .badArgument, "escape"),
    R(#"submit conv4 x=ab"c"#, .badArgument, "quote"),
    R(#"submit conv4 x="a"b"#, .badArgument, "expected a space"),
    R(#"submit "a"b"#, .badArgument),

    // set
    R("set 42", .badArgument, "nothing to change"),
    R("set", .badArgument, "missing the run id"),
    R("set epochs=3", .badArgument, "missing the run id"),
    R("set 0 epochs=3", .badArgument),
    R("set 42 hold=true", .badArgument, "hold"),
    R("set 42 spec={}", .badArgument, "spec"),
    R("set 42 checkpoint=x", .badArgument, "checkpoint"),
    R("set 42 a=1 a=2", .badArgument, "given twice"),
    R("set 42 group=a group=b", .badArgument),
    R("set 42 tag= tag=a", .badArgument, "alone"),
    R("set 42 tag=a tag=", .badArgument, "alone"),
    R("submit p tag=", .badArgument),
    R("submit p group=", .badArgument),
    R("set 42 conv4", .badArgument),
    R("set 42 epochs=3 extra", .badArgument, "extra"),

    // fork
    R("fork", .badArgument, "missing the run id"),
    R("fork 0", .badArgument),
    R("fork 42 checkpoint=", .badArgument, "checkpoint"),
    R(#"fork 42 checkpoint="""#, .badArgument, "checkpoint"),
    R("fork 42 checkpoint=../x.pck", .badArgument, "checkpoint"),
    R("fork 42 checkpoint=/abs/x.pck", .badArgument, "checkpoint"),
    R("fork 42 checkpoint=a checkpoint=b", .badArgument, "checkpoint"),
    R("fork 42 spec={}", .badArgument, "spec"),
    R("fork 42 extra", .badArgument, "extra"),
    R("fork 42 a=1 a=2", .badArgument),
    R("fork 42 hold=maybe", .badArgument),

    // list
    R("list state=bogus", .badArgument, "bogus"),
    R("list state=running,bogus", .badArgument, "bogus"),
    R("list state=Running", .badArgument),
    R("list state=running state=paused", .badArgument),
    R("list group=a/b", .badArgument),
    R("list group=", .badArgument),
    R("list tag=", .badArgument),
    R("list tag=a,b", .badArgument),
    R("list running", .badArgument, "running"),
    R("list unknown=1", .badArgument, "unknown=1"),

    // metrics
    R("metrics", .badArgument, "missing the run id"),
    R("metrics 42 kind=weights", .badArgument, "kind"),
    R("metrics 42 kind=Prunes", .badArgument),
    R("metrics 42 since=-1", .badArgument, "since"),
    R("metrics 42 since=x", .badArgument),
    R("metrics 42 since=", .badArgument),
    R("metrics 42 since=1.5", .badArgument),
    R("metrics 42 kind=prunes kind=epochs", .badArgument),
    R("metrics 42 extra", .badArgument),

    // subscribe
    R("subscribe since=-1", .badArgument, "since"),
    R("subscribe since=x", .badArgument),
    R("subscribe since=18446744073709551616", .badArgument),
    R("subscribe run=0", .badArgument, "run id"),
    R("subscribe run=r-", .badArgument),
    R("subscribe run=", .badArgument),
    R(#"subscribe group="bad name""#, .badArgument, "group"),
    R("subscribe 42", .badArgument, "42"),
    R("subscribe run=1 run=2", .badArgument),
    R("subscribe since=1 since=2", .badArgument),

    // drain
    R("drain later", .badArgument, "finish, now or off"),
    R("drain NOW", .badArgument),
    R("drain now off", .badArgument, "off"),
    R("drain mode=now", .badArgument, "mode=now"),
]

@Suite struct RequestTableTests {
    @Test(arguments: acceptingRows)
    func accepts(_ row: Accept) throws {
        let r = try Request.parse(row.line)
        #expect(r == row.expected)
        // render∘parse: the canonical line reads back to the same request
        #expect(try Request.parse(r.rendered) == r, "rendered as \(String(reflecting: r.rendered))")
    }

    @Test(arguments: rejectingRows)
    func rejects(_ row: Reject) {
        do {
            let r = try Request.parse(row.line)
            Issue.record("accepted as \(r)")
        } catch let e as ProtocolError {
            #expect(e.code == row.code, "message: \(e.message)")
            if let m = row.mentions { #expect(e.message.contains(m), "message: \(e.message)") }
            #expect(!e.message.isEmpty)
            #expect(!e.message.unicodeScalars.contains { $0.value < 0x20 }, "a message must fit on one ERR line")
        } catch {
            Issue.record("threw a non-ProtocolError: \(error)")
        }
    }

    /// House rule: every verb has at least one accepting and one rejecting row.
    @Test func everyVerbIsCoveredBothWays() throws {
        let accepted = Set(try acceptingRows.map { try Request.parse($0.line).verb })
        let expected = Set(acceptingRows.map(\.expected.verb))
        #expect(accepted == Set(Verb.allCases))
        #expect(expected == Set(Verb.allCases))
        var rejected = Set<Verb>()
        for row in rejectingRows {
            let word = row.line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map { $0.lowercased() } ?? ""
            if let v = Verb(rawValue: word) { rejected.insert(v) }
        }
        #expect(rejected == Set(Verb.allCases), "verbs without a rejecting row: \(Set(Verb.allCases).subtracting(rejected).map(\.rawValue))")
    }

    @Test func everyErrorCodeThatParseCanProduceIsTabled() {
        #expect(Set(rejectingRows.map(\.code)) == [.badArgument, .unknownCommand, .badEncoding])
    }

    /// A long unknown word is cut in the message (the message is echoed on an ERR line).
    @Test func unknownCommandMessageIsBounded() {
        let word = String(repeating: "x", count: 10_000)
        #expect(throws: ProtocolError.self) { try Request.parse(word) }
        do { _ = try Request.parse(word) } catch let e as ProtocolError {
            #expect(e.code == .unknownCommand)
            #expect(e.message.count < 200)
        } catch { Issue.record("\(error)") }
    }

    @Test func verbAndMutatingClassification() throws {
        let readOnly: [String] = ["ping", "version", "help", "status", "list", "show 1", "metrics 1", "logs 1", "subscribe", "unsubscribe", "quit"]
        let mutating: [String] = ["submit p", "pause 1", "resume 1", "cancel 1", "hold 1", "release 1", "priority 1 2",
                                  "set 1 a=1", "fork 1", "checkpoint 1", "drain", "drain off"]
        for line in readOnly { #expect(try !Request.parse(line).isMutating, "\(line)") }
        for line in mutating { #expect(try Request.parse(line).isMutating, "\(line)") }
        #expect(Set((readOnly + mutating).map { try! Request.parse($0).verb }) == Set(Verb.allCases))
    }

    @Test func everyVerbHasUsageAndSummary() {
        for v in Verb.allCases {
            #expect(v.usage.hasPrefix(v.rawValue), "\(v)")
            #expect(!v.summary.isEmpty)
            #expect(v.rawValue == v.rawValue.lowercased())
        }
    }
}
