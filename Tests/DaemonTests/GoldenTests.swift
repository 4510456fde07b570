// Golden transcripts: every docs/transcripts/*.txt is replayed against a fresh in-process daemon
// over the real socket and its replies are compared with the file, so the transcripts quoted in
// docs/PROTOCOL.md are exactly what the daemon says.
//
// Transcript format (one directive per line):
//   > REQUEST        a request line, sent with "\n" (`>` alone sends an empty line)
//   < REPLY          an expected line (HELLO, OK, ERR or EVENT), in the order they arrive
//   # text           a comment (blank lines are ignored too)
//   #! pragma ...    a harness instruction (a comment to readers):
//        connection NAME   switch to connection NAME, opening it (its HELLO follows) when new;
//                          every transcript starts on an open connection called "main" (its HELLO
//                          comes first, or after a leading `#! connection main`)
//        pipeline N        send the next N requests in one write; their replies follow the last
//        send-bytes TEXT   send raw bytes: TEXT with \xNN \n \r \t \0 \\ escapes
//        send-long N       send N bytes of "x" and a newline (an over-long line)
//        read              expect lines without sending anything (events arriving by themselves)
//        eof               the daemon has closed this connection
//        wait ID STATE     wait (polling `show` on a separate connection) until run ID is in STATE
//
// Volatile values are replaced by a placeholder `"<key>"` in both expected and actual lines before
// comparing: times, ids of the boot and build, durations and speeds, paths of the temporary state
// directory, the peer's uid/user name, and measured accuracies and losses (see `volatileKeys`).
// The temporary state directory also becomes `<tmp>` in error messages, and a time stamp that
// starts a string (a run.log line from `logs`) becomes `<time>`. A null stays null.
//
// Regenerate: PRUNED_UPDATE_GOLDEN=1 swift test --filter GoldenTests rewrites the `< ` lines of
// every transcript from the actual replies (requests, comments and pragmas are kept). Read the
// diff before committing it.
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import Testing
import TestSupport

let transcriptsDirectory = packageRoot + "/docs/transcripts"

func transcriptFiles() -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: transcriptsDirectory)) ?? []).filter { $0.hasSuffix(".txt") }.sorted()
}

enum Golden {
    /// Keys whose (non-null) values differ from run to run or machine to machine.
    static let volatileKeys: Set<String> = [
        // clocks, identities of this boot and build, durations and speeds
        "time", "created", "started", "finished", "boot_id", "build", "uptime", "seconds",
        "images_per_second", "train_images_per_second",
        // where the temporary state lives, and who runs the test
        "state_directory", "directory", "uid", "user", "owner", "owner_name", "cancelled_by",
        // measured results of training (they depend on the BLAS build and CPU)
        "train_loss", "train_acc", "train_acc5", "pre_test_loss", "pre_test_acc", "pre_test_acc5",
        "test_loss", "test_acc", "test_acc5", "last_test_acc", "best_test_acc", "last_instability",
        "instability", "instability_points", "stability", "t_pre", "t_post", "mean_score", "avg_pruned_score",
        "final_train_acc", "final_test_acc", "final_test_loss", "generalization_gap", "best_epoch",
        "mean_stability", "mean_instability", "mean_instability_points",
    ]

    static func normalise(_ line: String, tmp: String) -> String {
        var s = line
        if !tmp.isEmpty { s = s.replacingOccurrences(of: tmp, with: "<tmp>") }
        for marker in ["HELLO ", "OK ", "EVENT "] where s.hasPrefix(marker) {
            guard let j = try? JSON.parse(String(s.dropFirst(marker.count))) else { return s }
            return marker + scrub(j).rendered
        }
        return s
    }

    static func scrub(_ j: JSON) -> JSON {
        switch j {
        case .object(let pairs):
            return .object(pairs.map { k, v in (k, volatileKeys.contains(k) && v != .null ? .string("<\(k)>") : scrub(v)) })
        case .array(let items): return .array(items.map(scrub))
        case .string(let s): return .string(scrubTimestamp(s))
        default: return j
        }
    }

    /// A leading ISO 8601 UTC time stamp (run.log lines, as `logs` returns them) becomes `<time>`.
    static func scrubTimestamp(_ s: String) -> String {
        let u = Array(s.utf8)
        guard u.count >= 20 else { return s }
        let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
        let isDigit = { (b: UInt8) in b >= 48 && b <= 57 }
        guard digits.allSatisfy({ isDigit(u[$0]) }), u[4] == 45, u[7] == 45, u[10] == 84, u[13] == 58, u[16] == 58, u[19] == 90 else { return s }
        return "<time>" + String(decoding: u[20...], as: UTF8.self)
    }

    /// Decodes the escapes of `send-bytes`.
    static func unescape(_ text: String) throws -> [UInt8] {
        let b = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            guard b[i] == UInt8(ascii: "\\"), i + 1 < b.count else { out.append(b[i]); i += 1; continue }
            switch b[i + 1] {
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "0"): out.append(0)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "x"):
                guard i + 3 < b.count, let v = UInt8(String(decoding: b[(i + 2) ... (i + 3)], as: UTF8.self), radix: 16) else {
                    throw ClientError(description: "bad \\x escape in send-bytes")
                }
                out.append(v)
                i += 4
                continue
            default: throw ClientError(description: "unknown escape in send-bytes")
            }
            i += 2
        }
        return out
    }

    /// Request lines in `bytes` that get a reply (complete, not blank).
    static func repliesOwed(_ bytes: [UInt8]) -> Int {
        var parts = bytes.split(separator: 10, omittingEmptySubsequences: false)
        parts.removeLast()
        return parts.filter { !$0.allSatisfy { $0 == 32 || $0 == 9 || $0 == 13 } }.count
    }
}

/// One transcript, parsed into actions, each with the lines expected after it.
struct Transcript {
    enum Action {
        case connect(String)
        case send(bytes: [UInt8], requests: [String])
        case read
        case eof
        case wait(String, String)
    }

    struct Step {
        var action: Action
        /// The file line (0-based) after which the action's output is written; -1: before `before`.
        var anchor: Int
        var expected: [String] = []
        var produces: Bool
    }

    let name: String
    let lines: [String]
    var steps: [Step] = []
    /// Where the first connection's HELLO goes when the file is rewritten.
    var helloBefore = 0

    init(name: String, text: String) throws {
        self.name = name
        var ls = text.components(separatedBy: "\n")
        if ls.last == "" { ls.removeLast() }
        lines = ls
        steps.append(Step(action: .connect("main"), anchor: -1, produces: true))
        helloBefore = ls.firstIndex { !($0.hasPrefix("#") && !$0.hasPrefix("#!")) && !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.hasPrefix("<") } ?? ls.count
        // A transcript may name the first connection explicitly: its HELLO then follows that line.
        if helloBefore < ls.count, ls[helloBefore].trimmingCharacters(in: .whitespaces) == "#! connection main" { helloBefore += 1 }
        var known: Set<String> = ["main"]
        var pipeline: (left: Int, requests: [String])?
        for (i, line) in ls.enumerated() {
            func fail(_ why: String) -> ClientError { ClientError(description: "\(name):\(i + 1): \(why)") }
            if line.hasPrefix("< ") {
                guard pipeline == nil else { throw fail("reply inside a pipeline") }
                steps[steps.count - 1].expected.append(String(line.dropFirst(2)))
            } else if line == ">" || line.hasPrefix("> ") {
                let request = line == ">" ? "" : String(line.dropFirst(2))
                if var p = pipeline {
                    p.requests.append(request)
                    p.left -= 1
                    if p.left == 0 {
                        let bytes = Array(p.requests.map { $0 + "\n" }.joined().utf8)
                        steps.append(Step(action: .send(bytes: bytes, requests: p.requests), anchor: i, produces: true))
                        pipeline = nil
                    } else {
                        pipeline = p
                    }
                } else {
                    steps.append(Step(action: .send(bytes: Array((request + "\n").utf8), requests: [request]), anchor: i, produces: true))
                }
            } else if line.hasPrefix("#!") {
                let words = line.dropFirst(2).split(separator: " ", maxSplits: 1).map(String.init)
                let arg = words.count > 1 ? words[1].trimmingCharacters(in: .whitespaces) : ""
                guard pipeline == nil else { throw fail("pragma inside a pipeline") }
                switch words.first ?? "" {
                case "connection":
                    guard !arg.isEmpty else { throw fail("connection needs a name") }
                    // A leading `#! connection main` only names the first connection.
                    if arg == "main" && steps.count == 1 { continue }
                    let new = known.insert(arg).inserted
                    steps.append(Step(action: .connect(arg), anchor: i, produces: new))
                case "pipeline":
                    guard let n = Int(arg), n > 0 else { throw fail("pipeline needs a count") }
                    pipeline = (n, [])
                case "send-bytes":
                    let bytes = try Golden.unescape(arg)
                    steps.append(Step(action: .send(bytes: bytes, requests: []), anchor: i, produces: true))
                case "send-long":
                    guard let n = Int(arg), n > 0 else { throw fail("send-long needs a length") }
                    steps.append(Step(action: .send(bytes: [UInt8](repeating: UInt8(ascii: "x"), count: n) + [10], requests: []), anchor: i, produces: true))
                case "read": steps.append(Step(action: .read, anchor: i, produces: true))
                case "eof": steps.append(Step(action: .eof, anchor: i, produces: false))
                case "wait":
                    let p = arg.split(separator: " ").map(String.init)
                    guard p.count == 2 else { throw fail("wait ID STATE") }
                    steps.append(Step(action: .wait(p[0], p[1]), anchor: i, produces: false))
                default: throw fail("unknown pragma \(line)")
                }
            } else if !line.hasPrefix("#") && !line.trimmingCharacters(in: .whitespaces).isEmpty {
                throw fail("not a transcript line: \(line.prefix(60))")
            }
        }
        if pipeline != nil { throw ClientError(description: "\(name): pipeline not complete at the end") }
    }

    /// The file with every step's expected lines replaced by `actual`.
    func rewritten(_ actual: [[String]]) -> String {
        var after: [Int: [String]] = [:]
        var before: [String] = []
        for (s, lines) in zip(steps, actual) where s.produces {
            if s.anchor < 0 { before = lines } else { after[s.anchor, default: []] += lines }
        }
        var out: [String] = []
        for (i, line) in lines.enumerated() {
            if i == helloBefore { out += before.map { "< " + $0 } }
            if line.hasPrefix("< ") { continue }
            out.append(line)
            out += (after[i] ?? []).map { "< " + $0 }
        }
        if helloBefore >= lines.count { out += before.map { "< " + $0 } }
        return out.joined(separator: "\n") + "\n"
    }
}

/// One connection of a transcript.
final class GoldenConnection {
    let client: TestClient
    var subscribed = false
    var closed = false
    init(_ client: TestClient) { self.client = client }

    /// The next line, or nil on EOF/reset (marks the connection closed) or timeout.
    func line(timeout: Double) -> String? {
        guard !closed else { return nil }
        client.setTimeout(timeout)
        do { return try client.readLine() } catch {
            let d = "\(error)"
            if d.contains("EOF") || d.contains("reset") { closed = true }
            return nil
        }
    }
}

@Suite(.serialized)
struct GoldenTests {
    static let update = ProcessInfo.processInfo.environment["PRUNED_UPDATE_GOLDEN"] == "1"

    @Test(arguments: transcriptFiles())
    func transcript(_ file: String) throws {
        let path = transcriptsDirectory + "/" + file
        let text = try String(contentsOfFile: path, encoding: .utf8)
        if text.contains(fashionMNIST) && !haveFashionMNIST { return }
        let t = try Transcript(name: file, text: text)
        let d = try TestDaemon(dir: makeTempDir("golden"))
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let tmp = d.dir
        var connections: [String: GoldenConnection] = [:]
        var current = "main"
        var actual: [[String]] = []
        var failed = false
        func record(_ message: String, _ step: Transcript.Step) {
            failed = true
            let line = step.anchor < 0 ? 1 : step.anchor + 1
            Issue.record("\(file):\(line): \(message)")
        }
        for step in t.steps {
            var got: [String] = []
            switch step.action {
            case .connect(let name):
                current = name
                if connections[name] == nil {
                    let c = try TestClient(d.socketPath, timeout: 30, readHello: false)
                    connections[name] = GoldenConnection(c)
                    if let l = connections[name]?.line(timeout: 30) { got.append(l) }
                }
            case .send(let bytes, let requests):
                guard let c = connections[current] else { record("no connection \(current)", step); continue }
                do { try c.client.sendRaw(bytes) } catch { record("send failed: \(error)", step) }
                for r in requests {
                    let verb = r.split(separator: " ").first.map { $0.lowercased() } ?? ""
                    if verb == "subscribe" { c.subscribed = true }
                    if verb == "unsubscribe" { c.subscribed = false }
                }
                if Self.update {
                    let owed = Golden.repliesOwed(bytes)
                    var answered = 0
                    while answered < owed, let l = c.line(timeout: 180) {
                        got.append(l)
                        if l.hasPrefix("OK") || l.hasPrefix("ERR") { answered += 1 }
                    }
                    if owed == 0 || c.subscribed {
                        while let l = c.line(timeout: owed == 0 ? 1.0 : 0.5) { got.append(l) }
                    }
                } else {
                    for _ in step.expected { if let l = c.line(timeout: 180) { got.append(l) } else { break } }
                }
            case .read:
                guard let c = connections[current] else { record("no connection \(current)", step); continue }
                if Self.update {
                    while let l = c.line(timeout: 1.0) { got.append(l) }
                } else {
                    for _ in step.expected { if let l = c.line(timeout: 180) { got.append(l) } else { break } }
                }
            case .eof:
                guard let c = connections[current] else { record("no connection \(current)", step); continue }
                if let l = c.line(timeout: 120) { record("expected the daemon to close the connection, got: \(l.prefix(200))", step) }
                else if !c.closed { record("expected the daemon to close the connection; it stayed open", step) }
            case .wait(let id, let state):
                let probe = try d.client()
                var last = ""
                let ok = waitFor(300) {
                    last = (try? probe.request("show \(id)")).map { r -> String in
                        if case .ok(let j) = r { return j["state"]?.stringValue ?? "" }
                        return r.rendered
                    } ?? ""
                    return last == state
                }
                if !ok { record("\(id) did not reach \(state) (it is \(last))", step) }
            }
            let norm = got.map { Golden.normalise($0, tmp: tmp) }
            actual.append(norm)
            if !Self.update {
                let expected = step.expected.map { Golden.normalise($0, tmp: tmp) }
                if norm != expected {
                    let i = zip(norm, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(norm.count, expected.count)
                    let e = i < expected.count ? expected[i] : "(nothing)"
                    let a = i < norm.count ? norm[i] : "(nothing: timeout or connection closed)"
                    record("reply \(i + 1) after this line differs\n  expected: \(e)\n  actual:   \(a)", step)
                }
            }
        }
        // Nothing unexpected may be left over on any connection.
        for (name, c) in connections.sorted(by: { $0.key < $1.key }) {
            if let l = c.line(timeout: 0.3) {
                failed = true
                Issue.record("\(file): connection \(name) received an unexpected line at the end: \(l.prefix(300))")
            }
        }
        if Self.update && !failed {
            try t.rewritten(actual).write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    /// docs/PROTOCOL.md quotes the transcripts in ```text blocks whose first line names the file:
    /// their `> `/`< ` lines must occur in that file in the same order (a line ending in `…` is
    /// a prefix of the file's line), so the documentation cannot drift from what is tested.
    @Test func protocolDocumentQuotesTheTranscripts() throws {
        let doc = try String(contentsOfFile: packageRoot + "/docs/PROTOCOL.md", encoding: .utf8)
        var blocks: [(file: String, lines: [String], line: Int)] = []
        var current: (file: String, lines: [String], line: Int)?
        var inFence = false
        for (i, line) in doc.components(separatedBy: "\n").enumerated() {
            if line.hasPrefix("```") {
                if inFence, let c = current { blocks.append(c) }
                inFence.toggle()
                current = nil
                continue
            }
            guard inFence else { continue }
            if current == nil, line.hasPrefix("# docs/transcripts/") {
                current = (String(line.dropFirst("# docs/transcripts/".count)), [], i + 1)
            } else if current != nil, line.hasPrefix("> ") || line.hasPrefix("< ") || line == ">" {
                current?.lines.append(line)
            }
        }
        #expect(blocks.count > 20, "expected transcript excerpts in docs/PROTOCOL.md")
        for b in blocks {
            guard let text = try? String(contentsOfFile: transcriptsDirectory + "/" + b.file, encoding: .utf8) else {
                Issue.record("PROTOCOL.md:\(b.line): no transcript \(b.file)")
                continue
            }
            var rest = text.components(separatedBy: "\n")[...]
            for quoted in b.lines {
                let prefix = quoted.hasSuffix("…") ? String(quoted.dropLast()) : nil
                guard let i = rest.firstIndex(where: { prefix.map($0.hasPrefix) ?? ($0 == quoted) }) else {
                    Issue.record("PROTOCOL.md:\(b.line): this line is not (in this order) in \(b.file): \(quoted.prefix(200))")
                    break
                }
                rest = rest[(i + 1)...]
            }
        }
    }
}
