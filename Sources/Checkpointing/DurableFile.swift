// The one way pruned writes a file durably: every run file, checkpoint, ledger line and
// compaction goes through these calls. A whole-file write is temp file → write all → fsync →
// rename → fsync of the directory, so a crash leaves the old file or the new one, never a mix;
// an append writes the whole line and fsyncs before returning.
import Foundation

public struct FileError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }
    public var description: String { "\(path): \(problem)" }
}

public enum DurableFile {
    /// Writes every byte to `fd`, retrying short writes and EINTR. Throws with `path` named.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.write(fd, base + done, raw.count - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, problem: String(cString: strerror(errno)))
            }
            if n == 0 { throw FileError(path: path, problem: "write returned 0 bytes") }
            done += n
        }
    }

    /// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync of the directory.
    /// `beforeRename` runs between the fsync and the rename (the checkpoint crash-test hook).
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644, beforeRename: (() -> Void)? = nil) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileError(path: tmp, problem: String(cString: strerror(errno))) }
        do {
            try writeAll(fd, bytes, path: tmp)
            if fsync(fd) != 0 { throw FileError(path: tmp, problem: "fsync: " + String(cString: strerror(errno))) }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        close(fd)
        beforeRename?()
        if rename(tmp, path) != 0 {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            throw FileError(path: path, problem: e)
        }
        syncDirectory(dir.isEmpty ? "." : dir)
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Array(text.utf8), to: path)
    }

    /// Appends one line (a newline is added) and fsyncs.
    public static func appendLine(_ line: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: path, problem: String(cString: strerror(errno))) }
        defer { close(fd) }
        try writeAll(fd, Array((line + "\n").utf8), path: path)
        if fsync(fd) != 0 { throw FileError(path: path, problem: "fsync: " + String(cString: strerror(errno))) }
    }

    public static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
