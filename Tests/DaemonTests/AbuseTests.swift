// Hostile and careless clients against an in-process daemon over the real socket: garbage bytes,
// over-long lines, bad encodings, odd framing, pipelining, many concurrent clients, clients that
// never read, connection limits and idle timeouts. Nothing a client sends may stop the daemon
// or keep it from answering everybody else. No training is needed.
import Control
@testable import Daemon
import Foundation
import PrunedJSON
import Results
import Testing


private func abuseKind(_ r: Reply) -> String {
    switch r {
    case .hello: return "HELLO"
    case .ok: return "OK"
    case .event: return "EVENT"
    case .error(let e): return e.code.rawValue
    }
}

/// Reads until the daemon closes the connection. Returns true when it closed without sending
/// another complete line. A close is EOF, or ECONNRESET: the daemon closed while request bytes
/// it never read were still queued on its side (Linux then reports a reset after the data).
private func abuseClosedQuietly(_ c: TestClient, timeout: Double = 15) -> Bool {
    c.setTimeout(timeout)
    while true {
        if c.buffer.contains(10) { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(c.fd, &chunk, chunk.count, 0)
        if n > 0 { c.buffer.append(contentsOf: chunk[..<n]); continue }
        if n == 0 { return true }
        return errno == ECONNRESET || errno == EPIPE
    }
}

/// Reads the next reply, skipping EVENT lines.
private func abuseNextReply(_ c: TestClient) throws -> Reply {
    while true {
        let r = try c.reply()
        if case .event = r { continue }
        return r
    }
}

@Suite struct AbuseTests {
    /// `printf '…' | socat`: the client shuts down its sending side after the requests; every
    /// request already sent is still answered, then the daemon closes. A subscriber that
    /// half-closes keeps receiving events; one that vanishes is dropped without a spin.
    @Test func halfClosedClientsGetEveryReply() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        try c.sendRaw(Array(String(repeating: "ping\nversion\n", count: 5000).utf8))
        shutdown(c.fd, Int32(SHUT_WR))
        var oks = 0
        while let line = try? c.readLine() {
            if line.hasPrefix("OK ") { oks += 1 } else { Issue.record("unexpected \(line.prefix(80))") }
        }
        #expect(oks == 10_000)
        let sub = try d.client()
        _ = try sub.ok("subscribe")
        shutdown(sub.fd, Int32(SHUT_WR))
        let other = try d.client()
        _ = try other.ok("submit hold=true spec=" + tinySpec())
        guard case .event(let e) = try sub.reply() else { Issue.record("no event after half-close"); return }
        #expect(e["type"]?.stringValue == "state")
        #expect(try other.ok("ping")["pong"] == .bool(true))
    }

    @Test func randomGarbageIsAnsweredLineByLineAndHarmsNobody() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let bystander = try d.client()
        let c = try d.client()

        // Lines of raw random bytes (NUL, 0xFF, CR, stray newlines and broken UTF-8 weighted
        // in), of printable words no command starts with, and of quoted words.
        var rng = SplitMix64(seed: 0x5EED_0BAD_F00D)
        let specials: [UInt8] = [0, 0xFF, 10, 13, 0xC3, 0x80, 0xED, 32, 9, 0x7F, 0x1B]
        var stream: [UInt8] = []
        while stream.count < 64 << 10 {
            let length = Int(rng.next() % 160)
            switch rng.next() % 4 {
            case 0, 1:
                for _ in 0 ..< length {
                    stream.append(rng.next() % 6 == 0 ? specials[Int(rng.next() % UInt64(specials.count))] : UInt8(truncatingIfNeeded: rng.next()))
                }
            case 2:
                stream.append(UInt8(ascii: "~"))
                for _ in 0 ..< length { stream.append(UInt8(0x20 + rng.next() % 95)) }
            default:
                stream.append(UInt8(ascii: "\""))
                for _ in 0 ..< length { stream.append(UInt8(0x20 + rng.next() % 95)) }
            }
            stream.append(10)
        }
        // The daemon answers every line that is not blank (CR LF counts as LF).
        var expected = 0
        var lineStart = 0
        for (i, b) in stream.enumerated() where b == 10 {
            var line = stream[lineStart ..< i]
            if line.last == 13 { line = line.dropLast() }
            if !line.allSatisfy({ $0 == 32 || $0 == 9 }) { expected += 1 }
            lineStart = i + 1
        }
        #expect(stream.contains(0) && stream.contains(0xFF))

        var offset = 0
        while offset < stream.count {
            let n = min(stream.count - offset, 1 + Int(rng.next() % 4096))
            try c.sendRaw(Array(stream[offset ..< offset + n]))
            offset += n
        }
        var seen: [String: Int] = [:]
        for _ in 0 ..< expected {
            let r = try c.reply()
            seen[abuseKind(r), default: 0] += 1
        }
        #expect(Set(seen.keys).isSubset(of: ["BAD_ENCODING", "UNKNOWN_COMMAND", "BAD_ARGUMENT"]), "\(seen)")
        #expect(seen["BAD_ENCODING", default: 0] > 0 && seen["UNKNOWN_COMMAND", default: 0] > 0 && seen["BAD_ARGUMENT", default: 0] > 0, "\(seen)")
        // Exactly one reply per line: the next reply is the ping's, on the same connection.
        #expect(try c.ok("ping")["pong"] == .bool(true))
        #expect(try bystander.ok("ping")["pong"] == .bool(true))
        #expect(try d.client().ok("ping")["pong"] == .bool(true))
        #expect(try bystander.ok("list")["count"]?.intValue == 0)
    }

    @Test func megabyteLineWithoutNewlineIsRefusedAndClosed() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let bystander = try d.client()
        let c = try d.client()
        #expect(c.hello["max_line"]?.intValue == ProtocolInfo.defaultMaxLineBytes)
        // The daemon closes once the limit is passed, so this send may fail part-way (EPIPE).
        try? c.sendRaw([UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20))
        let r = try c.reply()
        #expect(abuseKind(r) == "LINE_TOO_LONG", "\(r.rendered)")
        #expect(abuseClosedQuietly(c))
        #expect(try bystander.ok("ping")["pong"] == .bool(true))
        #expect(try d.client().ok("version")["protocol"]?.intValue == ProtocolInfo.version)
    }

    @Test func tooLongLinesWithNewlineAreRefusedAndClosed() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let limit = ProtocolInfo.defaultMaxLineBytes
        let padded = { (n: Int) in "ping" + String(repeating: " ", count: n - 4) }
        // At the limit (with LF or CRLF) a line is fine; one byte over is refused even though it
        // is a valid request.
        let c0 = try d.client()
        #expect(try c0.ok(padded(limit))["pong"] == .bool(true))
        try c0.sendRaw(Array((padded(limit) + "\r\n").utf8))
        #expect(abuseKind(try c0.reply()) == "OK")

        let c1 = try d.client()
        try c1.send(padded(limit + 1))
        #expect(abuseKind(try c1.reply()) == "LINE_TOO_LONG")
        #expect(abuseClosedQuietly(c1))

        // Behind a good request in the same write: the first is answered, the long one closes
        // the connection, and what follows it is ignored.
        let c2 = try d.client()
        try? c2.sendRaw(Array(("ping\n" + String(repeating: "x", count: 70_000) + "\nping\n").utf8))
        #expect(abuseKind(try c2.reply()) == "OK")
        #expect(abuseKind(try c2.reply()) == "LINE_TOO_LONG")
        #expect(abuseClosedQuietly(c2))

        // An unterminated over-long tail behind a good request.
        let c3 = try d.client()
        try? c3.sendRaw(Array(("version\n" + String(repeating: "y", count: 70_000)).utf8))
        #expect(abuseKind(try c3.reply()) == "OK")
        #expect(abuseKind(try c3.reply()) == "LINE_TOO_LONG")
        #expect(abuseClosedQuietly(c3))

        #expect(try c0.ok("ping")["pong"] == .bool(true))
        #expect(try d.client().ok("ping")["pong"] == .bool(true))
    }

    @Test func invalidUTF8IsBadEncodingAndTheConnectionLivesOn() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        let bad: [[UInt8]] = [
            [0xC3, 0x28], // bad continuation
            Array("help ".utf8) + [0xC3, 0x28],
            [0xC0, 0xAF], // overlong '/'
            [0xED, 0xA0, 0x80], // UTF-16 surrogate
            [0x80], [0xFF, 0xFE],
            Array("show r-1 ".utf8) + [0xF0, 0x9F, 0x98], // truncated 4-byte sequence
        ]
        for b in bad {
            try c.sendRaw(b + [10])
            let r = try c.reply()
            #expect(abuseKind(r) == "BAD_ENCODING", "\(b) → \(r.rendered)")
        }
        #expect(try c.ok("ping")["pong"] == .bool(true))
        // Valid multi-byte UTF-8 is not an encoding error.
        #expect(try c.err(#"help "é""#, .badArgument).contains("é"))
    }

    @Test func controlBytesAreBadEncoding() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        for line in ["pi\u{0}ng", "\u{0}", "ping\u{0}", "\u{1b}[31mping", "ping\u{7f}", "show\u{0b}r-1", "pi\rng", "ping \u{8}", "list\u{1}"] {
            try c.sendRaw(Array((line + "\n").utf8))
            let r = try c.reply()
            #expect(abuseKind(r) == "BAD_ENCODING", "\(line.debugDescription) → \(r.rendered)")
        }
        // A tab is whitespace, not a control byte.
        #expect(try c.ok("ping\t")["pong"] == .bool(true))
        #expect(try c.err("show\tr-0042", .notFound).contains("r-0042"))
        #expect(try c.ok("list")["count"]?.intValue == 0)
    }

    @Test func crlfLineEndingsWork() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        try c.sendRaw(Array("ping\r\n\r\n  \r\nversion\r\nshow r-9999\r\nhelp ping\r\n".utf8))
        let lines = try (0 ..< 4).map { _ in try c.readLine() }
        #expect(lines.allSatisfy { !$0.contains("\r") })
        let replies = try lines.map(Reply.parse)
        #expect(replies.map(abuseKind) == ["OK", "OK", "NOT_FOUND", "OK"])
        if case .error(let e) = replies[2] { #expect(e.message.contains("r-9999") && !e.message.contains("\r")) }
        if case .ok(let j) = replies[3] { #expect(j["command"]?.stringValue == "ping") }
        // Blank CRLF lines got no reply: the next reply is this request's.
        #expect(try c.ok("status")["runs"] != nil)
    }

    @Test func requestsSplitIntoOneByteWritesWork() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        // Includes a two-byte UTF-8 character split across writes.
        for b in Array("ping\r\nshow r-9999\nhelp \"é\"\nversion\n".utf8) {
            try c.sendRaw([b])
            usleep(500)
        }
        #expect(abuseKind(try c.reply()) == "OK")
        #expect(abuseKind(try c.reply()) == "NOT_FOUND")
        let r = try c.reply()
        guard case .error(let e) = r, e.code == .badArgument else { Issue.record("help \"é\" → \(r.rendered)"); return }
        #expect(e.message.contains("é"))
        guard case .ok(let v) = try c.reply() else { Issue.record("version split into bytes failed"); return }
        #expect(v["protocol"]?.intValue == ProtocolInfo.version)
    }

    @Test func thousandPipelinedRequestsGetThousandRepliesInOrder() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        let verbs = ["ping", "show r-9999", "version"]
        let text = (0 ..< 1000).map { verbs[$0 % 3] + "\n" }.joined()
        try c.sendRaw(Array(text.utf8))
        for i in 0 ..< 1000 {
            let r = try c.reply()
            switch (i % 3, r) {
            case (0, .ok(let j)) where j["pong"] == .bool(true): break
            case (1, .error(let e)) where e.code == .notFound && e.message.contains("r-9999"): break
            case (2, .ok(let j)) where j["protocol"]?.intValue == ProtocolInfo.version: break
            default:
                Issue.record("reply \(i) to '\(verbs[i % 3])' was \(r.rendered.prefix(120))")
                return
            }
        }
        // No extra replies: the next one answers this request.
        #expect(try c.ok("status")["runs"] != nil)
    }

    @Test func hundredConcurrentClientsAllSucceed() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let clients = 100, requests = 20
        let tally = AbuseTally()
        let finished = DispatchGroup()
        let path = d.socketPath
        for k in 0 ..< clients {
            finished.enter()
            let t = Thread {
                defer { finished.leave() }
                var client: TestClient?
                do { client = try TestClient(path, timeout: 60) } catch { tally.fail("client \(k): \(error)") }
                // Every client holds its connection open before any of them sends a request.
                tally.allConnected.lock()
                tally.connected += 1
                tally.allConnected.broadcast()
                while tally.connected < clients { if !tally.allConnected.wait(until: Date().addingTimeInterval(60)) { break } }
                tally.allConnected.unlock()
                guard let c = client else { return }
                for i in 0 ..< requests {
                    let verb = ["list", "status", "ping"][(i + k) % 3]
                    do {
                        let r = try c.request(verb)
                        guard case .ok(let j) = r, j[verb == "list" ? "runs" : verb == "status" ? "daemon" : "pong"] != nil else {
                            tally.fail("client \(k) \(verb) → \(r.rendered.prefix(100))")
                            return
                        }
                        tally.lock.withLock { tally.succeeded += 1 }
                    } catch {
                        tally.fail("client \(k) \(verb): \(error)")
                        return
                    }
                }
            }
            t.stackSize = 1 << 20
            t.start()
        }
        #expect(finished.wait(timeout: .now() + 180) == .success)
        tally.lock.withLock {
            #expect(tally.failures.isEmpty, "\(tally.failures.prefix(5))")
            #expect(tally.succeeded == clients * requests)
        }
        #expect(try d.client().ok("ping")["pong"] == .bool(true))
    }

    @Test func clientsThatHangUpWithoutReadingLeakNothing() throws {
        let d = try TestDaemon { $0.maxConnections = 8 }
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        for i in 0 ..< 100 {
            // Fresh connections that never read, not even the greeting.
            let c = try TestClient(d.socketPath, readHello: false)
            try? c.send(i % 2 == 0 ? "list" : "help")
            if i % 3 == 0 { try? c.send("help\nstatus\nversion") }
            if i % 5 == 0 { shutdown(c.fd, Int32(SHUT_WR)) }
        }
        // Every abandoned connection was released: the whole limit can be used again.
        var held: [TestClient] = []
        let ok = waitFor(30) {
            held = []
            for _ in 0 ..< 8 {
                guard let c = try? TestClient(d.socketPath, timeout: 10) else { return false }
                held.append(c)
            }
            return true
        }
        #expect(ok, "could not open 8 connections after 100 abandoned ones")
        for c in held { #expect(try c.ok("ping")["pong"] == .bool(true)) }
    }

    @Test func aClientThatNeverReadsIsDisconnectedAndBlocksNobody() throws {
        let limit = 256 << 10
        let d = try TestDaemon { $0.outputLimitBytes = limit }
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let slow = try d.client()
        // Generous: today the daemon renders all 5000 replies (about 18 MB) in one pass before it
        // checks the limit, and its loop serves nobody meanwhile (seconds in a debug build).
        let other = try TestClient(d.socketPath, timeout: 120)
        // About 18 MB of replies that it never reads.
        try slow.sendRaw(Array(String(repeating: "help\n", count: 5000).utf8))
        // Others keep being served (the receive timeout bounds every read).
        for i in 0 ..< 50 {
            let r = try other.request(i % 2 == 0 ? "ping" : "help")
            #expect(abuseKind(r) == "OK")
        }
        #expect(try d.client().ok("status")["runs"] != nil)
        // The slow client was cut off: reading now yields fewer than 5000 replies, then the end.
        slow.setTimeout(15)
        var lines = 0
        var closed = false
        while true {
            if let nl = slow.buffer.firstIndex(of: 10) {
                lines += 1
                slow.buffer.removeFirst(nl + 1)
                continue
            }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = recv(slow.fd, &chunk, chunk.count, 0)
            if n > 0 { slow.buffer.append(contentsOf: chunk[..<n]); continue }
            closed = n == 0 || errno == ECONNRESET
            break
        }
        #expect(closed)
        #expect(lines < 5000)
        #expect(d.daemon.logger.capturedLines.contains { $0.contains("does not read its replies") })
        #expect(try other.ok("ping")["pong"] == .bool(true))
    }

    @Test func sixthConnectionIsBusyWhenTheLimitIsFive() throws {
        let d = try TestDaemon { $0.maxConnections = 5 }
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        var held: [TestClient?] = []
        for _ in 0 ..< 5 {
            // The start-up probe's connection may not be released yet: retry until HELLO.
            var c: TestClient?
            waitFor(10) { c = try? TestClient(d.socketPath); return c != nil }
            held.append(try #require(c))
        }
        let sixth = try TestClient(d.socketPath, readHello: false)
        let r = try sixth.reply()
        #expect(abuseKind(r) == "BUSY", "\(r.rendered)")
        #expect(abuseClosedQuietly(sixth))
        for c in held { #expect(try c?.ok("ping")["pong"] == .bool(true)) }
        // A slot freed is a slot available again.
        held[0] = nil
        var again: TestClient?
        #expect(waitFor(10) { again = try? TestClient(d.socketPath); return again != nil })
        #expect(try again?.ok("ping")["pong"] == .bool(true))
    }

    @Test func idleClientsTimeOutButSubscribersDoNot() throws {
        let d = try TestDaemon { $0.idleTimeout = 0.5 }
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let subscriber = try d.client()
        #expect(try subscriber.ok("subscribe")["subscribed"] == .bool(true))
        for _ in 0 ..< 2 {
            // Connected after the subscriber, silent: closed with TIMEOUT.
            let silent = try TestClient(d.socketPath, timeout: 15)
            let r = try silent.reply()
            #expect(abuseKind(r) == "TIMEOUT", "\(r.rendered)")
            #expect(abuseClosedQuietly(silent))
        }
        // The subscriber has been idle longer than two silent clients that timed out.
        subscriber.setTimeout(15)
        try subscriber.send("ping")
        guard case .ok(let j) = try abuseNextReply(subscriber) else { Issue.record("subscriber lost"); return }
        #expect(j["pong"] == .bool(true))
    }

    @Test func unknownAndMalformedRequestsHaveNoSideEffects() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        try c.err("frobnicate", .unknownCommand)
        try c.err("submitt spec=" + tinySpec(), .unknownCommand)
        try c.err("SUBMIT-NOW spec=" + tinySpec(), .unknownCommand)
        try c.err("drop table runs", .unknownCommand)
        try c.err("r-0001", .unknownCommand)
        try c.err(#"submit spec={"epochs":"#, .badArgument)
        try c.err("submit spec=[1,2]", .badArgument)
        try c.err(#""submit" spec={}"#, .badArgument)
        try c.err("spec={} submit", .badArgument)
        try c.err("submit hold=maybe spec=" + tinySpec(), .badArgument)
        try c.err("submit priority=1e9 spec=" + tinySpec(), .badArgument)
        try c.err("submit spec=" + tinySpec() + " tag=a,,b", .badArgument)
        try c.err("submit spec=" + tinySpec() + " group=g group=h", .badArgument)
        try c.err("submit NO_SUCH_PRESET_EVER", .notFound)
        #expect(try c.ok("list")["count"]?.intValue == 0)
        let runs = try c.ok("status")["runs"]
        #expect(RunState.allCases.allSatisfy { runs?[$0.rawValue]?.intValue == 0 })
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: d.dir + "/state/runs")) ?? []).isEmpty)
        let ledger = (try? String(contentsOfFile: d.dir + "/state/ledger.jsonl", encoding: .utf8)) ?? ""
        #expect(ledger.isEmpty)
    }

    @Test func quitClosesAfterItsOK() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let c = try d.client()
        // Requests pipelined behind quit are not answered.
        try c.sendRaw(Array("ping\nquit\nping\nstatus\n".utf8))
        #expect(abuseKind(try c.reply()) == "OK")
        #expect(try c.reply() == .ok(.object([("bye", .bool(true))])))
        #expect(abuseClosedQuietly(c))
        let c2 = try d.client()
        #expect(try c2.ok("QUIT")["bye"] == .bool(true))
        #expect(abuseClosedQuietly(c2))
        #expect(try d.client().ok("ping")["pong"] == .bool(true))
    }
}

/// Shared counters for the concurrent-clients test.
private final class AbuseTally: @unchecked Sendable {
    let lock = NSLock()
    let allConnected = NSCondition()
    var connected = 0
    var succeeded = 0
    var failures: [String] = []
    func fail(_ s: String) { lock.withLock { failures.append(s) } }
}
