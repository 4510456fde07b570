// Reply lines: render∘parse round trip for every kind of reply, one line per reply no matter
// what the message holds, and the client parser's handling of odd or foreign lines.
@testable import Control
import PrunedJSON
import Testing

struct ReplyRow: Sendable, CustomTestStringConvertible {
    let reply: Reply
    let line: String
    var testDescription: String { line }
}

let replyRows: [ReplyRow] = [
    ReplyRow(reply: .hello(obj(("protocol", .number(1)), ("daemon", .string("pruned 0.1")))),
             line: #"HELLO {"protocol":1,"daemon":"pruned 0.1"}"#),
    ReplyRow(reply: .ok(.object([])), line: "OK {}"),
    ReplyRow(reply: .ok(obj(("run", .string("r-0042")), ("state", .string("queued")))), line: #"OK {"run":"r-0042","state":"queued"}"#),
    ReplyRow(reply: .ok(.array([.number(1), .null, .bool(true)])), line: "OK [1,null,true]"),
    ReplyRow(reply: .ok(.null), line: "OK null"),
    ReplyRow(reply: .ok(.string("a\nb")), line: #"OK "a\nb""#),
    ReplyRow(reply: .event(obj(("seq", .number(7)), ("type", .string("state")), ("msg", .string("line1\nline2\r\t\"q\"")))),
             line: #"EVENT {"seq":7,"type":"state","msg":"line1\nline2\r\t\"q\""}"#),
    ReplyRow(reply: .error(ProtocolError(.notFound, "no run r-0042")), line: "ERR NOT_FOUND no run r-0042"),
    ReplyRow(reply: .error(ProtocolError(.busy, "")), line: "ERR BUSY"),
    ReplyRow(reply: .error(ProtocolError(.badArgument, "show: 'x' is not a run id (r-0042)")),
             line: "ERR BAD_ARGUMENT show: 'x' is not a run id (r-0042)"),
    ReplyRow(reply: .error(ProtocolError(.internal, "  ERR OK {} inside é😀")), line: "ERR INTERNAL   ERR OK {} inside é😀"),
]

@Suite struct ReplyTests {
    @Test(arguments: replyRows)
    func rendersAndParses(_ row: ReplyRow) throws {
        #expect(row.reply.rendered == row.line)
        if case .error(let e) = row.reply, e.message.hasPrefix(" ") {
            // leading blanks of a message are not preserved (the separator is "one or more spaces")
            #expect(try Reply.parse(row.line) == .error(ProtocolError(e.code, String(e.message.drop { $0 == " " }))))
        } else {
            #expect(try Reply.parse(row.line) == row.reply)
        }
    }

    @Test func everyErrorCodeRoundTrips() throws {
        #expect(Set(ErrorCode.allCases.map(\.rawValue)).count == ErrorCode.allCases.count)
        for code in ErrorCode.allCases {
            #expect(code.rawValue == code.rawValue.uppercased() && !code.rawValue.contains(" "))
            #expect(!code.meaning.isEmpty)
            for message in ["", "x", "two words", "trailing "] {
                let r = Reply.error(ProtocolError(code, message))
                #expect(try Reply.parse(r.rendered) == r, "\(r.rendered)")
            }
        }
    }

    @Test func errorMessagesAreFlattenedToOneLine() throws {
        let e = ProtocolError(.badSpec, "first line\nsecond\r\nthird\tcol\u{0}nul\u{1B}esc")
        let line = Reply.error(e).rendered
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 })
        #expect(line == "ERR BAD_SPEC first line second  third col nul esc")
        #expect(try Reply.parse(line) == .error(ProtocolError(.badSpec, "first line second  third col nul esc")))
        // a message that is nothing but a newline still gives a parseable line
        let nl = Reply.error(ProtocolError(.storage, "\n")).rendered
        #expect(!nl.contains("\n"))
        guard case .error(let back) = try Reply.parse(nl) else { Issue.record("not an error"); return }
        #expect(back.code == .storage)
    }

    @Test func payloadLinesNeverContainANewline() throws {
        let tricky: JSON = obj(("s", .string("a\nb\r\u{0}\u{1F}\u{2028}")), ("k\n", .array([.string("\n")])))
        for r in [Reply.hello(tricky), .ok(tricky), .event(tricky)] {
            #expect(!r.rendered.contains("\n") && !r.rendered.contains("\r"))
            #expect(try Reply.parse(r.rendered) == r)
        }
    }

    @Test func unknownErrorCodeBecomesInternalKeepingTheCode() throws {
        #expect(try Reply.parse("ERR FROBNICATED something bad") == .error(ProtocolError(.internal, "FROBNICATED something bad")))
        let r = try Reply.parse("ERR not_found lower case")
        #expect(r == .error(ProtocolError(.internal, "not_found lower case")))
    }

    @Test func okWithoutPayloadIsAnEmptyObject() throws {
        #expect(try Reply.parse("OK") == .ok(.object([])))
        #expect(try Reply.parse("OK ") == .ok(.object([])))
        #expect(try Reply.parse("OK   {}") == .ok(.object([])))
    }

    @Test func toleratesACarriageReturn() throws {
        #expect(try Reply.parse("OK {}\r") == .ok(.object([])))
        #expect(try Reply.parse("ERR BUSY too many connections\r") == .error(ProtocolError(.busy, "too many connections")))
        #expect(try Reply.parse("EVENT {\"seq\":1}\r") == .event(obj(("seq", .number(1)))))
    }

    @Test(arguments: [
        "", " ", "garbage", "hello {}", "ok {}", "OKAY {}", "OK{}", "ERRBUSY", " OK {}", "HELLO", "HELLO x", "EVENT",
        "EVENT not json", "OK {", "OK {} trailing", "OK {\"a\":1,\"a\":2}", "EVENT [1,]", "PING",
    ])
    func garbageLinesThrow(_ line: String) {
        do {
            let r = try Reply.parse(line)
            Issue.record("parsed as \(r)")
        } catch let e as ProtocolError {
            #expect(e.code == .internal)
        } catch {
            Issue.record("threw a non-ProtocolError \(error)")
        }
    }

    @Test func protocolErrorDescription() {
        #expect(ProtocolError(.timeout, "no step boundary in 30 s").description == "TIMEOUT no step boundary in 30 s")
    }
}
