// The daemon's log: the journal (sd_journal_sendv with structured fields such as RUN_ID and
// EVENT) when stderr is connected to journald, plain lines on stderr otherwise.
import CSystemd
import Foundation
import Synchronization

/// Log priorities (syslog numbers).
public enum LogLevel: Int32, Sendable {
    case error = 3, warning = 4, notice = 5, info = 6, debug = 7
}

/// Where the daemon's log lines go: the journal with structured fields when stderr is connected
/// to journald (JOURNAL_STREAM matches), `<N>`-less plain lines on stderr otherwise. Tests can
/// also capture lines.
public final class Logger: Sendable {
    let journal: Bool
    let capture = Mutex<[String]>([])
    let capturing: Bool
    let echo: Bool

    /// `journal`: nil decides from JOURNAL_STREAM; `capture` keeps lines in memory (tests).
    public init(journal: Bool? = nil, capture: Bool = false, echo: Bool = true) {
        self.journal = journal ?? Logger.stderrIsJournal()
        self.capturing = capture
        self.echo = echo
    }

    static func stderrIsJournal() -> Bool {
        guard let v = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] else { return false }
        let parts = v.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    public var capturedLines: [String] { capture.withLock { $0 } }

    /// Logs `message` with optional structured fields (RUN_ID, EVENT, EPOCH, ...).
    public func log(_ level: LogLevel, _ message: String, fields: [(String, String)] = []) {
        let flat = message.replacingOccurrences(of: "\n", with: " ")
        if capturing {
            let extra = fields.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
            capture.withLock { $0.append(extra.isEmpty ? flat : flat + " [" + extra + "]") }
        }
        guard echo else { return }
        if journal {
            var strings = ["MESSAGE=" + flat, "PRIORITY=\(level.rawValue)", "SYSLOG_IDENTIFIER=pruned"]
            strings += fields.map { "\($0.0)=\($0.1)" }
            Logger.sendv(strings)
        } else {
            let tag: String
            switch level {
            case .error: tag = "error: "
            case .warning: tag = "warning: "
            default: tag = ""
            }
            FileHandle.standardError.write(Data(("pruned: " + tag + flat + "\n").utf8))
        }
    }

    static func sendv(_ strings: [String]) {
        let buffers: [UnsafeMutableRawBufferPointer] = strings.map { str in
            let bytes = Array(str.utf8)
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            b.copyBytes(from: bytes)
            return UnsafeMutableRawBufferPointer(start: b.baseAddress, count: bytes.count)
        }
        defer { for b in buffers { b.deallocate() } }
        let iov = buffers.map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
        _ = iov.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
    }
}
