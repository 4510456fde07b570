// The lexer on its own: how a line splits into tokens, how a token becomes a JSON value, and
// that quoting produces text the lexer reads back unchanged. Also the run-id syntax.
@testable import Control
import PrunedJSON
import Testing

struct LexRow: Sendable, CustomTestStringConvertible {
    let line: String
    let verb: String
    let args: [Token]
    var testDescription: String { String(reflecting: line) }
}

private func T(_ key: String?, _ value: String, quoted: Bool = false) -> Token { Token(key: key, value: value, quoted: quoted) }

let lexRows: [LexRow] = [
    LexRow(line: "ping", verb: "ping", args: []),
    LexRow(line: "  PiNg  ", verb: "ping", args: []),
    LexRow(line: "a b\tc", verb: "a", args: [T(nil, "b"), T(nil, "c")]),
    LexRow(line: "a  \t  b", verb: "a", args: [T(nil, "b")]),
    LexRow(line: "a k=v", verb: "a", args: [T("k", "v")]),
    LexRow(line: "a k=", verb: "a", args: [T("k", "")]),
    LexRow(line: "a k= x", verb: "a", args: [T("k", ""), T(nil, "x")]),
    LexRow(line: "a k=v=w", verb: "a", args: [T("k", "v=w")]),
    LexRow(line: "a =v", verb: "a", args: [T(nil, "=v")]),
    LexRow(line: "a 1k=v", verb: "a", args: [T(nil, "1k=v")]),
    LexRow(line: "a /p=v", verb: "a", args: [T(nil, "/p=v")]),
    LexRow(line: "a _k.9-x=v", verb: "a", args: [T("_k.9-x", "v")]),
    LexRow(line: #"a "q""#, verb: "a", args: [T(nil, "q", quoted: true)]),
    LexRow(line: #"a """#, verb: "a", args: [T(nil, "", quoted: true)]),
    LexRow(line: #"a k="""#, verb: "a", args: [T("k", "", quoted: true)]),
    LexRow(line: #"a k="x y""#, verb: "a", args: [T("k", "x y", quoted: true)]),
    LexRow(line: #"a "k=v""#, verb: "a", args: [T(nil, "k=v", quoted: true)]),
    LexRow(line: #"a "\"\\\n\t""#, verb: "a", args: [T(nil, "\"\\\n\t", quoted: true)]),
    LexRow(line: #"a "é 😀""#, verb: "a", args: [T(nil, "é 😀", quoted: true)]),
    LexRow(line: #"a k={"x": [1, "]"]} z"#, verb: "a", args: [T("k", #"{"x": [1, "]"]}"#), T(nil, "z")]),
    LexRow(line: #"a k=[ "a b" , {"c": "}"} ]"#, verb: "a", args: [T("k", #"[ "a b" , {"c": "}"} ]"#)]),
    LexRow(line: #"a k={"e": "\"]"}"#, verb: "a", args: [T("k", #"{"e": "\"]"}"#)]),
    // brackets only need to balance in count here; JSON.parse judges the rest later
    LexRow(line: "a k={]", verb: "a", args: [T("k", "{]")]),
    LexRow(line: "a [x]", verb: "a", args: [T(nil, "[x]")]),
    LexRow(line: "a k=x{y", verb: "a", args: [T("k", "x{y")]),
]

struct LexError: Sendable, CustomTestStringConvertible {
    let line: String
    let mentions: String
    var testDescription: String { String(reflecting: line) }
}

let lexErrors: [LexError] = [
    LexError(line: "", mentions: "empty"),
    LexError(line: " \t ", mentions: "empty"),
    LexError(line: #""a""#, mentions: "command word"),
    LexError(line: "k=v", mentions: "command word"),
    LexError(line: #"a "open"#, mentions: "unterminated quoted string starting at column 3"),
    LexError(line: #"a "\x""#, mentions: "unknown escape"),
    LexError(line: #"a "x"y"#, mentions: "expected a space after argument 2 at column 6"),
    LexError(line: #"a x"y""#, mentions: "unexpected quote inside a word at column 4"),
    LexError(line: "a {", mentions: "unbalanced JSON starting at column 3"),
    LexError(line: #"a k={"}"#, mentions: "unbalanced"),
    LexError(line: "a k=[1]]", mentions: "expected a space"),
    LexError(line: #"a k=["\"]"#, mentions: "unbalanced"),
]

struct ValueRow: Sendable, CustomTestStringConvertible {
    let token: Token
    let json: JSON
    var testDescription: String { "\(token.quoted ? "quoted " : "")\(String(reflecting: token.value))" }
}

let valueRows: [ValueRow] = [
    ValueRow(token: T("k", "3"), json: .number(3)),
    ValueRow(token: T("k", "-3.25"), json: .number(-3.25)),
    ValueRow(token: T("k", "1e-3"), json: .number(0.001)),
    ValueRow(token: T("k", "1E3"), json: .number(1000)),
    ValueRow(token: T("k", "0"), json: .number(0)),
    ValueRow(token: T("k", "3", quoted: true), json: .string("3")),
    ValueRow(token: T("k", "true"), json: .bool(true)),
    ValueRow(token: T("k", "false"), json: .bool(false)),
    ValueRow(token: T("k", "null"), json: .null),
    ValueRow(token: T("k", "true", quoted: true), json: .string("true")),
    ValueRow(token: T("k", "null", quoted: true), json: .string("null")),
    ValueRow(token: T("k", "TRUE"), json: .string("TRUE")),
    ValueRow(token: T("k", "/x/y"), json: .string("/x/y")),
    ValueRow(token: T("k", ""), json: .string("")),
    ValueRow(token: T("k", "1.2.3"), json: .string("1.2.3")),
    ValueRow(token: T("k", "1-2"), json: .string("1-2")),
    ValueRow(token: T("k", "1e999"), json: .string("1e999")),
    ValueRow(token: T("k", "nan"), json: .string("nan")),
    ValueRow(token: T("k", "-inf"), json: .string("-inf")),
    ValueRow(token: T("k", "0x10"), json: .string("0x10")),
    ValueRow(token: T("k", ".5"), json: .string(".5")),
    ValueRow(token: T("k", "{}", quoted: true), json: .string("{}")),
    ValueRow(token: T("k", "[1, 2]"), json: .array([.number(1), .number(2)])),
    ValueRow(token: T("k", #"{"a": {"b": null}}"#), json: obj(("a", obj(("b", .null))))),
]

@Suite struct LexerTests {
    @Test(arguments: lexRows)
    func tokenizes(_ row: LexRow) throws {
        let (verb, args) = try Lexer.tokenize(row.line)
        #expect(verb == row.verb)
        #expect(args == row.args)
    }

    @Test(arguments: lexErrors)
    func rejects(_ row: LexError) {
        do {
            let r = try Lexer.tokenize(row.line)
            Issue.record("tokenized as \(r)")
        } catch let e as ProtocolError {
            #expect(e.code == .badArgument)
            #expect(e.message.contains(row.mentions), "message: \(e.message)")
        } catch {
            Issue.record("threw \(error)")
        }
    }

    @Test(arguments: valueRows)
    func jsonValue(_ row: ValueRow) throws {
        #expect(try row.token.jsonValue() == row.json)
    }

    @Test func malformedJSONValueNamesTheKey() {
        for (key, text) in [("lr_milestones", "[1,"), ("spec", "{\"a\" 1}"), ("x", "[1 2]"), ("x", "{'a': 1}")] {
            do {
                let v = try Token(key: key, value: text).jsonValue()
                Issue.record("\(text) gave \(v)")
            } catch let e as ProtocolError {
                #expect(e.code == .badArgument)
                #expect(e.message.hasPrefix(key + ": "), "\(e.message)")
            } catch { Issue.record("\(error)") }
        }
        // a positional token has no key: the message still says what it was
        do { _ = try Token(value: "[").jsonValue(); Issue.record("accepted") } catch let e as ProtocolError {
            #expect(e.message.hasPrefix("argument: "))
        } catch { Issue.record("\(error)") }
    }

    @Test func quoteIfNeededQuotesOnlyWhenNeeded() {
        let plain = ["conv4", "F2_VGG_4", "/x/y", "a.b", "héllo", "😀", "1.2.3x", "truth", "nullable", "-x"]
        for s in plain { #expect(Lexer.quoteIfNeeded(s) == s, "\(s)") }
        let quoted: [(String, String)] = [
            ("", #""""#), ("a b", #""a b""#), ("3", #""3""#), ("-1", #""-1""#), ("1e5", #""1e5""#), ("1.2.3", #""1.2.3""#),
            ("true", #""true""#), ("false", #""false""#), ("null", #""null""#), ("{x}", #""{x}""#), ("[1]", #""[1]""#),
            ("k=v", #""k=v""#), ("/a=b", #""/a=b""#), ("=", #""=""#),
            (#"a"b"#, #""a\"b""#), (#"a\b"#, #""a\\b""#), ("a\nb", #""a\nb""#), ("a\tb", #""a\tb""#),
        ]
        for (s, q) in quoted { #expect(Lexer.quoteIfNeeded(s) == q, "\(s)") }
    }

    /// Whatever quoteIfNeeded writes, tokenize reads back as the same string, as an override
    /// value (key=…) and as a positional argument.
    @Test func quotedTextReadsBack() throws {
        let samples = ["", " ", "a b", "3", "-0", "1e5", "true", "false", "null", "{", "}", "[", "]", "{}", "[1, 2]",
                       #"""#, #"\"#, #"\\"#, #"\n"#, "\n", "\t", "\n\t", "x=y", "k=v", "a.b=c", "=", "é", "😀 x",
                       #"say "hi" \ bye"#, "  leading", "trailing  ", "r-0042", "42", "--", "+", "a\"b\\c\nd\te"]
        for s in samples {
            let q = Lexer.quoteIfNeeded(s)
            let (_, asValue) = try Lexer.tokenize("v k=" + q)
            #expect(asValue.count == 1 && asValue[0].key == "k" && asValue[0].value == s, "\(String(reflecting: s)) → \(q)")
            #expect(try asValue[0].jsonValue() == .string(s), "\(String(reflecting: s)) → \(q)")
            let (_, asPositional) = try Lexer.tokenize("v " + q)
            #expect(asPositional == [Token(value: s, quoted: asPositional.first?.quoted ?? false)], "\(String(reflecting: s)) → \(q)")
        }
    }

    @Test func renderValueRoundTripsThroughTokenAndJSONValue() throws {
        let values: [JSON] = [
            .null, .bool(true), .bool(false), .number(0), .number(3), .number(-7), .number(0.1), .number(1e-7),
            .number(1e300), .number(-2.5e-300), .number(1.2345678901234568e17), .number(1e15), .number(999_999_999_999_999),
            .string(""), .string("3"), .string("true"), .string("null"), .string("a b"), .string("x\ny\t\"z\"\\"),
            .string("{"), .string("[1]"), .string("r-0042"), .string("k=v"),
            .array([]), .object([]), .array([.string("a b"), .string("]"), .null, .array([.number(1)])]),
            obj(("a", .string("}\n\r\u{1}")), ("b", .array([obj(("c", .bool(false)))]))),
            // JSON strings may hold any control character, DEL included (via \u escapes)
            .array([.string("del\u{7F}"), .string("nul\u{0}"), .string("esc\u{1B}")]),
        ]
        for v in values {
            let text = Lexer.renderValue(v)
            let (_, args) = try Lexer.tokenize("v k=" + text)
            #expect(args.count == 1, "\(v) → \(text)")
            #expect(try args.first?.jsonValue() == v, "\(v) → \(text)")
            #expect(!text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "\(v) → \(text)")
        }
    }

    @Test(arguments: [
        ("42", 42), ("r-0042", 42), ("r-42", 42), ("0042", 42), ("1", 1), ("r-1", 1), ("999999999999", 999_999_999_999),
        ("r-000000000001", 1),
    ])
    func runIDAccepts(_ text: String, _ n: Int) {
        #expect(RunID(text) == RunID(n))
    }

    @Test(arguments: ["", "0", "r-0", "00", "-1", "r--1", "r-", "r", "R-42", "r-r-1", "r 1", " 1", "1 ", "+1", "1.0", "1e3",
                      "0x1", "abc", "4a", "9999999999999", "r-9999999999999", "99999999999999999999999", "٤٢", "１２"])
    func runIDRejects(_ text: String) {
        #expect(RunID(text) == nil)
    }

    @Test func runIDRendering() {
        #expect(RunID(42).description == "r-0042")
        #expect(RunID(1).description == "r-0001")
        #expect(RunID(9999).description == "r-9999")
        #expect(RunID(12345).description == "r-12345")
        #expect(RunID(999_999_999_999).description == "r-999999999999")
        for n in [1, 7, 42, 999, 1000, 10_000, 123_456_789_012] {
            #expect(RunID(RunID(n).description) == RunID(n))
            #expect(RunID(String(n)) == RunID(n))
        }
        #expect(RunID(2) < RunID(10))
        #expect([RunID(10), RunID(2), RunID(5)].sorted() == [RunID(2), RunID(5), RunID(10)])
    }
}
