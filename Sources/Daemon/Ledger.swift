// The run ledger: every change to a run appends one line holding the run's whole record
// (`{"crc":"1a2b3c4d","v":2,"time":…,"run":{…}}`) to ledger.jsonl and fsyncs it before the
// change is acknowledged. The CRC32 covers the bytes after `{"crc":"XXXXXXXX",`, so a flipped
// byte is detected instead of believed. Replay keeps the last good line per run; a torn final
// line (crash mid-append) is dropped and truncated away; a line that fails its checksum or
// does not parse is skipped with a note; the file is compacted to one line per run at start.
// Lines without a checksum (`"v":1`, written by earlier versions) are still read.
import Checkpointing
import Control
import Foundation
import PrunedJSON

/// Everything the daemon knows about one run; the ledger stores it whole.
public struct RunRecord: Equatable, Sendable {
    public var id: RunID
    public var state: RunState
    public var owner: UInt32
    public var ownerName: String
    public var group: String?
    public var tags: [String] = []
    public var priority: Int = 0
    /// Submission order (FIFO among equal priorities).
    public var order: Int
    /// The canonical run spec.
    public var spec: JSON
    /// How it was asked for: preset and overrides (informational).
    public var source: JSON = .null
    public var forkOf: String?
    public var forkCheckpoint: String?
    public var created: Double
    public var started: Double?
    public var finished: Double?
    public var reason: String?
    public var cancelledBy: UInt32?
    /// A pause or cancel that was requested but not yet carried out (survives a crash).
    public var pending: PendingStop?
    public var starts: Int = 0
    // Progress (durable as of the last ledger write; live values are kept in memory).
    public var epochsDone: Int = 0
    public var epochs: Int
    public var step: Int = 0
    public var stepsPerEpoch: Int = 0
    public var lastCheckpoint: String?
    public var lastTestAcc: Double?
    public var bestTestAcc: Double?
    public var lastInstability: Double?
    public var imagesPerSecond: Double?
    /// Where the run executes; a Slurm run also has `slurm` (its options and job).
    public var executor: Executor = .local
    public var slurm: SlurmRun?

    public var json: JSON {
        func opt(_ d: Double?) -> JSON { d.map { .number($0) } ?? .null }
        func opts(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }
        var pairs: [(String, JSON)] = [
            ("id", .string(id.description)), ("state", .string(state.rawValue)),
            ("owner", .number(Double(owner))), ("owner_name", .string(ownerName)),
            ("group", opts(group)), ("tags", .array(tags.map { .string($0) })), ("priority", .number(Double(priority))),
            ("order", .number(Double(order))),
            ("name", spec["name"] ?? .string("")),
            ("model", spec["model"] ?? .null),
            ("created", .number(created)), ("started", opt(started)), ("finished", opt(finished)),
            ("reason", opts(reason)), ("cancelled_by", cancelledBy.map { .number(Double($0)) } ?? .null),
            ("pending", opts(pending?.rawValue)), ("starts", .number(Double(starts))),
            ("fork_of", opts(forkOf)), ("fork_checkpoint", opts(forkCheckpoint)),
            ("progress", .object([
                ("epochs_done", .number(Double(epochsDone))), ("epochs", .number(Double(epochs))),
                ("step", .number(Double(step))), ("steps_per_epoch", .number(Double(stepsPerEpoch))),
                ("images_per_second", opt(imagesPerSecond)),
            ])),
            ("last_checkpoint", opts(lastCheckpoint)),
            ("last_test_acc", opt(lastTestAcc)), ("best_test_acc", opt(bestTestAcc)), ("last_instability", opt(lastInstability)),
            ("source", source), ("spec", spec),
        ]
        // Local runs' records stay as they were before executors existed.
        if executor == .slurm {
            pairs.append(("executor", .string(executor.rawValue)))
            pairs.append(("slurm", (slurm ?? SlurmRun(options: SlurmOptions())).json))
        }
        return .object(pairs)
    }

    public init(id: RunID, state: RunState, owner: UInt32, ownerName: String, order: Int, spec: JSON, epochs: Int, created: Double) {
        self.id = id
        self.state = state
        self.owner = owner
        self.ownerName = ownerName
        self.order = order
        self.spec = spec
        self.epochs = epochs
        self.created = created
    }

    public init(json j: JSON) throws {
        func need<T>(_ v: T?, _ field: String) throws -> T {
            guard let v else { throw DaemonError("ledger record lacks a valid '\(field)'") }
            return v
        }
        id = try need(j["id"]?.stringValue.flatMap(RunID.init), "id")
        state = try need(j["state"]?.stringValue.flatMap(RunState.init(rawValue:)), "state")
        // A uid: an integer in 0…4294967295 (anything else is a damaged record, not a trap).
        func uid(_ field: String) throws -> UInt32? {
            guard let v = j[field], v != .null else { return nil }
            guard let n = v.intValue.flatMap({ UInt32(exactly: $0) }) else {
                throw DaemonError("ledger record has an invalid '\(field)' (\(v.rendered.prefix(40))); a uid is an integer in 0…\(UInt32.max)")
            }
            return n
        }
        owner = try need(try uid("owner"), "owner")
        ownerName = j["owner_name"]?.stringValue ?? String(owner)
        group = j["group"]?.stringValue
        tags = (j["tags"]?.arrayValue ?? []).compactMap(\.stringValue)
        priority = j["priority"]?.intValue ?? 0
        order = try need(j["order"]?.intValue, "order")
        spec = try need(j["spec"], "spec")
        source = j["source"] ?? .null
        forkOf = j["fork_of"]?.stringValue
        forkCheckpoint = j["fork_checkpoint"]?.stringValue
        created = j["created"]?.doubleValue ?? 0
        started = j["started"]?.doubleValue
        finished = j["finished"]?.doubleValue
        reason = j["reason"]?.stringValue
        cancelledBy = try uid("cancelled_by")
        pending = j["pending"]?.stringValue.flatMap(PendingStop.init(rawValue:))
        starts = j["starts"]?.intValue ?? 0
        let p = j["progress"]
        epochsDone = p?["epochs_done"]?.intValue ?? 0
        epochs = p?["epochs"]?.intValue ?? spec["epochs"]?.intValue ?? 0
        step = p?["step"]?.intValue ?? 0
        stepsPerEpoch = p?["steps_per_epoch"]?.intValue ?? 0
        imagesPerSecond = p?["images_per_second"]?.doubleValue
        lastCheckpoint = j["last_checkpoint"]?.stringValue
        lastTestAcc = j["last_test_acc"]?.doubleValue
        bestTestAcc = j["best_test_acc"]?.doubleValue
        lastInstability = j["last_instability"]?.doubleValue
        if let x = j["executor"]?.stringValue {
            guard let e = Executor(rawValue: x) else { throw DaemonError("ledger record has an unknown executor '\(x.prefix(20))'") }
            executor = e
        }
        if executor == .slurm { slurm = try SlurmRun(json: j["slurm"] ?? .object([])) }
    }

    /// The short form `list` returns.
    public var summaryJSON: JSON {
        func opt(_ d: Double?) -> JSON { d.map { .number($0) } ?? .null }
        return .object([
            ("id", .string(id.description)), ("state", .string(state.rawValue)), ("owner_name", .string(ownerName)),
            ("group", group.map { .string($0) } ?? .null), ("tags", .array(tags.map { .string($0) })),
            ("priority", .number(Double(priority))), ("name", spec["name"] ?? .string("")), ("model", spec["model"] ?? .null),
            ("epochs_done", .number(Double(epochsDone))), ("epochs", .number(Double(epochs))),
            ("step", .number(Double(step))), ("steps_per_epoch", .number(Double(stepsPerEpoch))),
            ("last_test_acc", opt(lastTestAcc)), ("best_test_acc", opt(bestTestAcc)), ("reason", reason.map { .string($0) } ?? .null),
        ] + (executor == .slurm ? [("executor", .string(executor.rawValue)), ("slurm_job", slurm?.taskID.map { .string($0) } ?? .null),
                                   ("slurm_state", slurm?.state.map { .string($0) } ?? .null)] : []))
    }
}

/// The append-only ledger file.
public final class Ledger {
    public let path: String
    private var fd: Int32 = -1
    public private(set) var lines = 0

    public init(path: String) { self.path = path }
    deinit { if fd >= 0 { close(fd) } }

    public struct Replay {
        public var runs: [RunID: RunRecord] = [:]
        /// Problems found (a torn tail, unreadable or corrupted lines); the daemon logs them.
        public var notes: [String] = []
        /// Lines read without a checksum (an earlier format): compacting rewrites them.
        public var uncheckedLines = 0
    }

    static let crcPrefix = Array(#"{"crc":""#.utf8)

    /// One ledger line (with its newline) for a record.
    static func line(_ record: RunRecord, time: Double) -> [UInt8] {
        let body = Array(JSON.object([("v", .number(2)), ("time", .number(time)), ("run", record.json)]).rendered.utf8)
        // `{"v":2,…}` → `{"crc":"XXXXXXXX","v":2,…}`: the checksum covers what follows its field.
        let rest = Array(body.dropFirst())
        let crc = CheckpointFile.crc(rest, 0, rest.count)
        return crcPrefix + Array(String(format: "%08x\",", crc).utf8) + rest + [10]
    }

    /// Parses one line (without its newline): the record, or why it cannot be believed.
    static func parse(_ bytes: ArraySlice<UInt8>) throws -> (RunRecord, checked: Bool) {
        var checked = false
        if bytes.starts(with: crcPrefix) {
            let hexStart = bytes.startIndex + crcPrefix.count
            guard bytes.count > crcPrefix.count + 10, bytes[hexStart + 8] == UInt8(ascii: "\""), bytes[hexStart + 9] == UInt8(ascii: ","),
                  let stored = UInt32(String(decoding: bytes[hexStart ..< hexStart + 8], as: UTF8.self), radix: 16)
            else { throw DaemonError("malformed checksum field") }
            let rest = Array(bytes[(hexStart + 10)...])
            let computed = CheckpointFile.crc(rest, 0, rest.count)
            guard computed == stored else {
                throw DaemonError(String(format: "checksum mismatch (stored %08x, computed %08x): the line was altered after it was written", stored, computed))
            }
            checked = true
        }
        let j = try JSON.parse(String(decoding: bytes, as: UTF8.self))
        guard let r = j["run"] else { throw DaemonError("no 'run' object") }
        return (try RunRecord(json: r), checked)
    }

    /// Reads the ledger, truncates a torn tail, and opens it for appending.
    public func open() throws -> Replay {
        var replay = Replay()
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else { throw DaemonError("\(path): cannot read the ledger") }
            let bytes = [UInt8](data)
            var good = 0
            var lineNo = 0
            var start = 0
            while let nl = bytes[start...].firstIndex(of: 10) {
                lineNo += 1
                let line = bytes[start..<nl]
                start = nl + 1
                good = start
                if line.isEmpty { continue }
                do {
                    let (rec, checked) = try Ledger.parse(line)
                    replay.runs[rec.id] = rec
                    if !checked { replay.uncheckedLines += 1 }
                    lines += 1
                } catch {
                    replay.notes.append("\(path): line \(lineNo) is unreadable and was skipped (\(error)); the run's previous record, or its run directory, is used instead")
                }
            }
            if good < bytes.count {
                replay.notes.append("\(path): dropped a torn last line of \(bytes.count - good) bytes (the daemon died while writing it; that change was never acknowledged)")
                guard truncate(path, off_t(good)) == 0 else { throw DaemonError("\(path): cannot truncate the torn tail: \(String(cString: strerror(errno)))") }
            }
        }
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw DaemonError("\(path): cannot open the ledger: \(String(cString: strerror(errno)))") }
        return replay
    }

    /// Appends the record and fsyncs. On failure the file is cut back to its previous length.
    public func append(_ record: RunRecord, time: Double) throws {
        guard fd >= 0 else { throw DaemonError("ledger not open") }
        var st = stat()
        let before = fstat(fd, &st) == 0 ? st.st_size : -1
        do {
            try DurableFile.writeAll(fd, Ledger.line(record, time: time), path: path)
            if fsync(fd) != 0 { throw FileError(path: path, problem: "fsync: " + String(cString: strerror(errno))) }
        } catch {
            if before >= 0 { _ = ftruncate(fd, before) }
            throw DaemonError("\(error)")
        }
        lines += 1
    }

    /// Rewrites the ledger with one line per run (atomically).
    public func compact(_ runs: [RunRecord], time: Double) throws {
        let bytes = runs.sorted { $0.id < $1.id }.flatMap { Ledger.line($0, time: time) }
        do { try DurableFile.write(bytes, to: path, mode: 0o640) } catch {
            throw DaemonError("\(path): cannot replace with the compacted ledger: \(error)")
        }
        if fd >= 0 { close(fd) }
        fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw DaemonError("\(path): cannot reopen the ledger: \(String(cString: strerror(errno)))") }
        lines = runs.count
    }
}
