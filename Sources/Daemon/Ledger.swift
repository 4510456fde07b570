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
