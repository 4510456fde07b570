// The real `pruned daemon` binary as a process: kill -9 in the middle of training and exact
// resumption, SIGTERM, socket activation through systemd-socket-activate, sd_notify readiness,
// status, watchdog and stopping on a test-owned NOTIFY_SOCKET, refusing a socket that is in use
// or not a socket, and plain stderr logging without journald.
import Checkpointing
import Control
import ControlClient
@testable import Daemon
import Foundation
import PrunedJSON
import Testing
import TestSupport

private let haveBinary = FileManager.default.isExecutableFile(atPath: prunedBinary)
private let socketActivate = "/usr/bin/systemd-socket-activate"

/// A child process with stdout and stderr in a log file.
private final class Spawned {
    let process = Process()
    let logPath: String

    init(executable: String = prunedBinary, _ arguments: [String], log: String, environment extra: [String: String] = [:]) throws {
        logPath = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? handle.close() }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // Whatever systemd context the test runner has must not leak into the daemon.
        var env = ProcessInfo.processInfo.environment
        for k in Array(env.keys) where k.hasPrefix("LISTEN_") || k.hasPrefix("WATCHDOG_") || k == "NOTIFY_SOCKET" || k == "JOURNAL_STREAM" {
            env[k] = nil
        }
        env.merge(extra) { $1 }
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var running: Bool { process.isRunning }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func signal(_ sig: Int32) { if process.isRunning { kill(process.processIdentifier, sig) } }

    /// Waits (bounded) for the process to exit; true when it did.
    @discardableResult
    func waitExit(_ seconds: Double = 60) -> Bool { waitFor(seconds) { !process.isRunning } }

    /// The exit code, or nil while running or when killed by a signal.
    var exitCode: Int32? {
        guard !process.isRunning, process.terminationReason == .exit else { return nil }
        return process.terminationStatus
    }

    /// Cleanup: SIGKILL if still running.
    func kill9() {
        signal(SIGKILL)
        waitExit(30)
    }
}

/// Launches `pruned daemon` on dir/state and dir/s and waits until it answers (or exits).
private func startDaemon(_ dir: String, _ n: Int, environment: [String: String] = [:], extra: [String] = []) throws -> Spawned {
    let d = try Spawned(["daemon", "--state-dir", dir + "/state", "--socket", dir + "/s", "--threads", "2"] + extra,
                        log: dir + "/daemon-\(n).log", environment: environment)
    let answered = waitFor(60) { (try? TestClient(dir + "/s", timeout: 10)) != nil || !d.running }
    guard answered, d.running else {
        d.kill9()
        throw ClientError(description: "daemon \(n) in \(dir) did not come up: \(d.log.suffix(2000))")
    }
    return d
}

private func show(_ c: TestClient, _ id: String = "r-0001") throws -> JSON { try c.ok("show \(id)") }

/// Polls `show` on fresh connections until the run is in `state` (or the daemon exits).
@discardableResult
private func waitForState(_ socket: String, _ state: String, daemon: Spawned, timeout: Double = 240) -> Bool {
    waitFor(timeout) {
        guard daemon.running else { return true }
        guard let c = try? TestClient(socket, timeout: 10), let r = try? c.request("show r-0001"), case .ok(let j) = r else { return false }
        return j["state"]?.stringValue == state
    } && daemon.running
}

/// The last ledger record of run `id`.
private func ledgerRecord(_ stateDir: String, _ id: String = "r-0001") -> JSON? {
    let text = (try? String(contentsOfFile: stateDir + "/ledger.jsonl", encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { try? JSON.parse(String($0)) }.last { $0["run"]?["id"]?.stringValue == id }?["run"]
}

private func metricsRows(_ stateDir: String, _ id: String = "r-0001") -> [JSON] {
    let text = (try? String(contentsOfFile: stateDir + "/runs/\(id)/metrics.jsonl", encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
}

/// A metrics row without the wall-clock fields.
private func untimed(_ j: JSON) -> JSON {
    guard case .object(let pairs) = j else { return j }
    return .object(pairs.filter { $0.0 != "seconds" && $0.0 != "train_images_per_second" })
}

/// The decoded checkpoint written at the end of `epochs` (sequence numbers differ between runs
/// that were interrupted, the label does not).
private func finalCheckpoint(_ stateDir: String, epochs: Int, _ id: String = "r-0001") throws -> Snapshot {
    let dir = stateDir + "/runs/\(id)/checkpoints"
    let label = String(format: "-e%05d-s000000", epochs)
    let store = CheckpointStore(directory: dir)
    let entry = try #require(store.list().last { $0.file.contains(label) }, "no final checkpoint in \(dir)")
    return try CheckpointFile.decode(CheckpointStore.readAll(store.path(entry.file)))
}

private let processSpec = tinySpec(epochs: 3, everySteps: 3)

/// The uninterrupted reference run, trained once and shared by the tests that compare with it.
private enum ReferenceRun {
    static let lock = NSLock()
    nonisolated(unsafe) static var cached: (metrics: [JSON], final: Snapshot)?

    static func get() throws -> (metrics: [JSON], final: Snapshot) {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let dir = makeTempDir("ref")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try startDaemon(dir, 1)
        defer { d.kill9() }
        let c = try TestClient(dir + "/s")
        #expect(try c.ok("submit spec=" + processSpec)["id"]?.stringValue == "r-0001")
        try #require(waitForState(dir + "/s", "completed", daemon: d), "reference run did not complete: \(d.log.suffix(2000))")
        let j = try show(try TestClient(dir + "/s"))
        #expect(j["starts"]?.intValue == 1)
        d.signal(SIGTERM)
        #expect(d.waitExit(60) && d.exitCode == 0)
        let result = (metricsRows(dir + "/state"), try finalCheckpoint(dir + "/state", epochs: 3))
        #expect(result.0.count == 3)
        cached = result
        return result
    }
}

/// Compares a resumed run with the reference: every metrics field but timing, and every tensor.
private func expectSameAsReference(_ stateDir: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let ref = try ReferenceRun.get()
    let rows = metricsRows(stateDir)
    #expect(rows.count == ref.metrics.count, sourceLocation: sourceLocation)
    for (a, b) in zip(rows, ref.metrics) {
        #expect(untimed(a) == untimed(b), "metrics differ: \(a.rendered) vs \(b.rendered)", sourceLocation: sourceLocation)
    }
    let final = try finalCheckpoint(stateDir, epochs: 3)
    #expect(final.entries == ref.final.entries, sourceLocation: sourceLocation)
    #expect(final.entries.count > 0, sourceLocation: sourceLocation)
    #expect(final.payload == ref.final.payload, "final checkpoint tensors differ from the uninterrupted run", sourceLocation: sourceLocation)
}

/// A test-owned sd_notify receiver: an AF_UNIX datagram socket.
private final class NotifyListener {
    let fd: Int32
    let path: String

    init(_ path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError(description: "socket") }
        let rc = UnixSocketAddress.withAddress(path) { bind(fd, $0, $1) }
        guard rc == 0 else { close(fd); throw ClientError(description: "bind \(path): \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd); unlink(path) }

    /// The next datagram, or nil after the socket's short receive timeout.
    func receive() -> String? {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buf, buf.count, 0)
        return n > 0 ? String(decoding: buf[..<n], as: UTF8.self) : nil
    }

    /// Collects datagrams until `done` holds for what has arrived, or `timeout` passes.
    func collect(into all: inout [String], timeout: Double, until done: ([String]) -> Bool) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while !done(all) && Date() < end {
            if let m = receive() { all.append(m) }
        }
        return done(all)
    }
}

@Suite(.serialized, .enabled(if: haveBinary))
struct ProcessTests {
    @Test(.enabled(if: haveFashionMNIST))
    func killNineMidRunResumesByItselfBitIdentically() throws {
        _ = try ReferenceRun.get()
        let dir = makeTempDir("kill9")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try startDaemon(dir, 1)
        defer { first.kill9() }
        let c = try TestClient(dir + "/s")
        #expect(try c.ok("submit spec=" + processSpec)["id"]?.stringValue == "r-0001")
        let midRun = waitFor(240) {
            // A few steps into the second epoch, so that the resume starts mid-epoch.
            guard let j = try? show(c), let p = j["progress"] else { return false }
            return ((p["epochs_done"]?.intValue ?? 0) * 16 + (p["step"]?.intValue ?? 0)) >= 21 || j["state"]?.stringValue != "running"
        }
        first.signal(SIGKILL)
        #expect(midRun)
        #expect(first.waitExit(30))
        #expect(first.process.terminationReason == .uncaughtSignal)
        // The crash came in the middle of the run: the ledger still says running.
        let before = try #require(ledgerRecord(dir + "/state"))
        try #require(before["state"]?.stringValue == "running", "the run was not running at the kill: \(before.rendered.prefix(300))")

        // Restarted on the same state directory (the stale socket file is replaced), the run
        // resumes from its newest checkpoint without any command and completes.
        let second = try startDaemon(dir, 2)
        defer { second.kill9() }
        #expect(waitForState(dir + "/s", "completed", daemon: second), "\(second.log.suffix(3000))")
        let j = try show(try TestClient(dir + "/s"))
        #expect(j["state"]?.stringValue == "completed")
        #expect(j["starts"]?.intValue == 2)
        #expect(j["progress"]?["epochs_done"]?.intValue == 3)
        #expect(second.log.contains("resuming r-0001"))
        #expect(second.log.contains("r-0001 resumed from ckpt-"))
        try expectSameAsReference(dir + "/state")
        second.signal(SIGTERM)
        #expect(second.waitExit(60) && second.exitCode == 0)
    }

    @Test(.enabled(if: haveFashionMNIST))
    func sigtermCheckpointsExitsZeroAndTheRunContinuesAfterRestart() throws {
        let dir = makeTempDir("term")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try startDaemon(dir, 1)
        defer { first.kill9() }
        let c = try TestClient(dir + "/s")
        #expect(try c.ok("submit spec=" + processSpec)["id"]?.stringValue == "r-0001")
        // Training has started (a few steps into the first epoch or later).
        let training = waitFor(240) {
            guard let j = try? show(c), let p = j["progress"] else { return false }
            return ((p["epochs_done"]?.intValue ?? 0) * 16 + (p["step"]?.intValue ?? 0)) >= 2 || j["state"]?.stringValue != "running"
        }
        #expect(training)
        first.signal(SIGTERM)
        #expect(first.waitExit(120), "the daemon did not exit after SIGTERM")
        #expect(first.exitCode == 0, "\(first.log.suffix(2000))")
        let rec = try #require(ledgerRecord(dir + "/state"))
        #expect(rec["state"]?.stringValue == "interrupted", "\(rec.rendered.prefix(300))")
        #expect(rec["reason"]?.stringValue?.contains("SIGTERM") == true)
        #expect(first.log.contains("stopping (SIGTERM)"))
        // A daemon that bound its socket removes it when it stops.
        #expect(!FileManager.default.fileExists(atPath: dir + "/s"))

        let second = try startDaemon(dir, 2)
        defer { second.kill9() }
        #expect(waitForState(dir + "/s", "completed", daemon: second), "\(second.log.suffix(3000))")
        let j = try show(try TestClient(dir + "/s"))
        #expect(j["starts"]?.intValue == 2)
        try expectSameAsReference(dir + "/state")
        second.signal(SIGTERM)
        #expect(second.waitExit(60) && second.exitCode == 0)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: socketActivate)))
    func socketActivationUsesThePassedSocket() throws {
        let dir = makeTempDir("sact")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socket = dir + "/s"
        let p = try Spawned(executable: socketActivate, ["-l", socket, "--fdname=control", prunedBinary, "daemon", "--state-dir", dir + "/state", "--threads", "2"],
                            log: dir + "/daemon.log")
        defer { p.kill9() }
        var st = stat()
        #expect(waitFor(30) { lstat(socket, &st) == 0 || !p.running })
        let inode = st.st_ino
        // The first connection makes systemd-socket-activate exec the daemon, which accepts it.
        let c = try TestClient(socket, timeout: 60)
        #expect(c.hello["server"]?.stringValue == "pruned")
        #expect(try c.ok("ping")["pong"] == .bool(true))
        #expect(try TestClient(socket).ok("status")["runs"] != nil)
        #expect(waitFor(10) { p.log.contains("ready on the socket passed by systemd") }, "\(p.log)")
        #expect(!p.log.contains("ready on \(socket)"))
        // Neither bound nor replaced: the same socket file, which is still there after a stop.
        #expect(lstat(socket, &st) == 0 && st.st_ino == inode)
        p.signal(SIGTERM)
        #expect(p.waitExit(60) && p.exitCode == 0)
        #expect(lstat(socket, &st) == 0 && st.st_ino == inode)
    }

    @Test func notifySocketGetsReadyStatusWatchdogAndStopping() throws {
        let dir = makeTempDir("ntfy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let listener = try NotifyListener(dir + "/notify")
        let d = try Spawned(["daemon", "--state-dir", dir + "/state", "--socket", dir + "/s", "--threads", "2"], log: dir + "/daemon.log",
                            environment: ["NOTIFY_SOCKET": dir + "/notify", "WATCHDOG_USEC": "2000000"])
        defer { d.kill9() }
        var all: [String] = []
        let lines = { (all: [String]) in all.flatMap { $0.split(separator: "\n").map(String.init) } }
        #expect(listener.collect(into: &all, timeout: 60) { lines($0).contains("READY=1") || !d.running }, "\(d.log)")
        // READY=1 comes first, and only once the socket accepts.
        #expect(lines(all).first == "READY=1")
        let c = try TestClient(dir + "/s", timeout: 10)
        #expect(try c.ok("ping")["pong"] == .bool(true))
        #expect(lines(all).contains { $0.hasPrefix("STATUS=") })
        // The loop feeds the watchdog repeatedly (about every WATCHDOG_USEC / 3).
        #expect(listener.collect(into: &all, timeout: 30) { lines($0).filter { $0 == "WATCHDOG=1" }.count >= 3 })
        d.signal(SIGTERM)
        #expect(listener.collect(into: &all, timeout: 60) { lines($0).contains("STOPPING=1") })
        #expect(d.waitExit(60))
        #expect(d.exitCode == 0)
        let l = lines(all)
        #expect(l.firstIndex(of: "READY=1")! < l.firstIndex(of: "STOPPING=1")!)
        #expect(!l.contains { $0.hasPrefix("STATUS=failed") })
    }

    @Test func bindRefusesALiveDaemonReplacesAStaleSocketAndKeepsOtherFiles() throws {
        let dir = makeTempDir("bind")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socket = dir + "/s"
        let first = try startDaemon(dir, 1)
        defer { first.kill9() }
        var st = stat()
        #expect(lstat(socket, &st) == 0)
        let inode = st.st_ino

        // A second daemon (own state directory) on the same socket refuses to start.
        let second = try Spawned(["daemon", "--state-dir", dir + "/state2", "--socket", socket, "--threads", "2"], log: dir + "/daemon-2.log")
        defer { second.kill9() }
        #expect(second.waitExit(60))
        #expect(second.exitCode.map { $0 != 0 } == true)
        #expect(second.log.contains("another pruned daemon is already answering"), "\(second.log)")
        #expect(lstat(socket, &st) == 0 && st.st_ino == inode)
        #expect(try TestClient(socket).ok("ping")["pong"] == .bool(true))

        // Killed, the first daemon leaves a stale socket file; a new daemon replaces it.
        first.signal(SIGKILL)
        #expect(first.waitExit(30))
        #expect(lstat(socket, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK)
        let third = try startDaemon(dir, 3)
        defer { third.kill9() }
        #expect(third.log.contains("ready on \(socket)"))
        #expect(try TestClient(socket).ok("ping")["pong"] == .bool(true))
        third.signal(SIGTERM)
        #expect(third.waitExit(60) && third.exitCode == 0)

        // A regular file where the socket should be is never replaced.
        let file = dir + "/not-a-socket"
        try Data("precious\n".utf8).write(to: URL(fileURLWithPath: file))
        let fourth = try Spawned(["daemon", "--state-dir", dir + "/state4", "--socket", file, "--threads", "2"], log: dir + "/daemon-4.log")
        defer { fourth.kill9() }
        #expect(fourth.waitExit(60))
        #expect(fourth.exitCode.map { $0 != 0 } == true)
        #expect(fourth.log.contains("is not a socket"), "\(fourth.log)")
        #expect((try? String(contentsOfFile: file, encoding: .utf8)) == "precious\n")
    }

    /// A second daemon on the same state directory (same or another socket) is refused by the
    /// state lock before it touches the ledger: the first daemon's acknowledged changes survive.
    @Test func aSecondDaemonOnTheSameStateDirectoryLeavesTheLedgerAlone() throws {
        let dir = makeTempDir("samestate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try startDaemon(dir, 1)
        defer { first.kill9() }
        let c = try TestClient(dir + "/s")
        #expect(try c.ok("submit hold=true spec=" + tinySpec() + " dataset.path=/tmp")["state"]?.stringValue == "held")
        // Enough ledger lines that a start compacts the ledger (more than 2 per run + 64).
        try c.sendRaw(Array((1 ... 70).map { "priority r-0001 \($0)\n" }.joined().utf8))
        for _ in 1 ... 70 { _ = try c.reply() }
        let second = try Spawned(["daemon", "--state-dir", dir + "/state", "--socket", dir + "/s", "--threads", "2"], log: dir + "/daemon-2.log")
        defer { second.kill9() }
        #expect(second.waitExit(60))
        #expect(second.exitCode.map { $0 != 0 } == true)
        #expect(second.log.contains("is using the state directory"), "\(second.log)")
        let other = try Spawned(["daemon", "--state-dir", dir + "/state", "--socket", dir + "/s2", "--threads", "2"], log: dir + "/daemon-2b.log")
        defer { other.kill9() }
        #expect(other.waitExit(60))
        #expect(other.exitCode.map { $0 != 0 } == true)
        // An acknowledged change on the first daemon, then a crash and a restart.
        #expect(try c.ok("priority r-0001 999")["priority"]?.intValue == 999)
        first.signal(SIGKILL)
        #expect(first.waitExit(30))
        let third = try startDaemon(dir, 3)
        defer { third.kill9() }
        let priority = try show(try TestClient(dir + "/s"))["priority"]?.intValue
        #expect(priority == 999)
    }

    @Test func withoutJournaldTheLogGoesToStderrAsPlainLines() throws {
        let dir = makeTempDir("log")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // JOURNAL_STREAM that does not match stderr (the daemon's stderr is a file): plain lines.
        let d = try startDaemon(dir, 1, environment: ["JOURNAL_STREAM": "1:1"])
        defer { d.kill9() }
        #expect(try TestClient(dir + "/s").ok("ping")["pong"] == .bool(true))
        d.signal(SIGTERM)
        #expect(d.waitExit(60) && d.exitCode == 0)
        let lines = d.log.split(separator: "\n").map(String.init)
        #expect(lines.contains("pruned: recovered 0 runs from the ledger"))
        #expect(lines.contains { $0.hasPrefix("pruned: ready on \(dir)/s (protocol \(ProtocolInfo.version)") })
        #expect(lines.contains { $0.hasPrefix("pruned: stopping (SIGTERM)") })
        #expect(lines.last == "pruned: stopped")
        #expect(lines.allSatisfy { $0.hasPrefix("pruned: ") }, "\(lines)")
    }

    /// After runs end, an idle daemon hands their memory back: 12 runs of three models, then
    /// the resident size is at most 64 MB (it kept hundreds of MB before).
    @Test(.enabled(if: haveFashionMNIST)) func anIdleDaemonGivesMemoryBackAfterRuns() throws {
        let dir = makeTempDir("idle-mem")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try startDaemon(dir, 1)
        defer { d.kill9() }
        func rssKB() -> Int {
            let status = (try? String(contentsOfFile: "/proc/\(d.pid)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
        }
        let fresh = rssKB()
        let c = try TestClient(dir + "/s")
        let models = ["conv4", "vgg11_bn", "resnet20"]
        for i in 0 ..< 12 {
            let spec = #"{"model":"\#(models[i % 3])","width":0.25,"dataset":{"kind":"fashion_mnist","path":"\#(fashionMNIST)","train_limit":512,"test_limit":256},"#
                + #""epochs":1,"batch_size":64,"seed":\#(i + 1)}"#
            _ = try c.ok("submit group=mem spec=" + spec)
        }
        #expect(try waitFor(600) { try c.ok("list group=mem state=completed")["count"]?.intValue == 12 })
        usleep(500_000)
        let idle = rssKB()
        #expect(idle > 0 && idle <= 64 * 1024, "idle RSS \(idle) kB after 12 runs (fresh: \(fresh) kB)")
    }
}
