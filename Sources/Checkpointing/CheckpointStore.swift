// A run's checkpoint directory: durable writes (temp file, fsync, rename, fsync of the
// directory, then the LATEST pointer written the same way), a free-space check first,
// retention of the last N plus pinned milestones, and loading the newest good checkpoint with
// fallback: a damaged file is renamed *.corrupt and reported, never deleted.
import Foundation

public struct CheckpointStore {
    public let directory: String
    /// Non-milestone checkpoints kept (the newest ones).
    public var keepLast: Int
    /// Extra bytes that must remain free after a write.
    public var reserveBytes: Int = 16 << 20

    public static let suffix = ".pck"
    public static let milestoneMark = "-m"

    /// Milestones kept (the first and the newest `keepMilestones − 1`); nil keeps them all.
    public var keepMilestones: Int?

    public init(directory: String, keepLast: Int = 3, keepMilestones: Int? = nil) {
        self.directory = directory
        self.keepLast = max(keepLast, 1)
        self.keepMilestones = keepMilestones.map { max($0, 0) }
    }

    /// A checkpoint file in the directory, ordered by its sequence number.
    public struct Entry: Sendable, Equatable {
        public var file: String
        public var sequence: Int
        public var milestone: Bool
    }

    /// Checkpoint files, oldest first (quarantined and temporary files excluded).
    public func list() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { n -> Entry? in
            guard n.hasPrefix("ckpt-"), n.hasSuffix(CheckpointStore.suffix) else { return nil }
            let digits = n.dropFirst(5).prefix { $0.isNumber }
            guard let seq = Int(digits) else { return nil }
            return Entry(file: n, sequence: seq, milestone: n.hasSuffix(CheckpointStore.milestoneMark + CheckpointStore.suffix))
        }.sorted { $0.sequence < $1.sequence }
    }

    public func path(_ file: String) -> String { directory + "/" + file }

    /// Writes `bytes` as the next checkpoint and points LATEST at it, then applies retention.
    /// On any failure the previous checkpoint and pointer are untouched. Returns the file name.
    @discardableResult
    public func write(_ bytes: [UInt8], label: String, milestone: Bool) throws -> String {
        try createDirectory()
        removeTemporaries()
        let seq = (list().last?.sequence ?? 0) + 1
        let name = String(format: "ckpt-%08d-%@", seq, label) + (milestone ? CheckpointStore.milestoneMark : "") + CheckpointStore.suffix
        let available = freeBytes()
        if available < bytes.count + reserveBytes {
            throw CheckpointError.insufficientSpace(path: directory, needed: bytes.count + reserveBytes, available: available)
        }
        try CheckpointStore.durableWrite(bytes, to: path(name), crashHook: true)
        try CheckpointStore.durableWrite(Array((name + "\n").utf8), to: path("LATEST"), crashHook: false)
        applyRetention()
        return name
    }

    /// Deletes the oldest checkpoints beyond the newest `keepLast`, sparing milestones: all of
    /// them, or the first and the newest `keepMilestones − 1`.
    public func applyRetention() {
        let all = list()
        let newest = Set(all.suffix(keepLast).map(\.file))
        let milestones = all.filter(\.milestone)
        var pinned = Set(milestones.map(\.file))
        if let k = keepMilestones, milestones.count > k {
            pinned = k == 0 ? [] : Set(([milestones[0]] + milestones.suffix(k - 1)).map(\.file))
        }
        for e in all where !pinned.contains(e.file) && !newest.contains(e.file) { unlink(path(e.file)) }
        DurableFile.syncDirectory(directory)
    }

    /// A loaded checkpoint and what was skipped on the way to it.
    public struct Loaded {
        public var file: String
        public var snapshot: Snapshot
        /// Files found damaged and renamed to *.corrupt, with the reason.
        public var quarantined: [(file: String, error: CheckpointError)]
    }

    /// Loads the newest checkpoint that verifies and passes `accept` (which checks it against
    /// the live run without modifying it). Damaged files are quarantined; a checkpoint that
    /// `accept` rejects is an error (the run and the directory disagree), not corruption.
    public func loadNewest(accept: (Snapshot) throws -> Void = { _ in }) throws -> Loaded? {
        var quarantined: [(String, CheckpointError)] = []
        for e in list().reversed() {
            let p = path(e.file)
            do {
                let snap = try CheckpointFile.decode(try CheckpointStore.readAll(p))
                try accept(snap)
                return Loaded(file: e.file, snapshot: snap, quarantined: quarantined)
            } catch let err as CheckpointError where err.isCorruption {
                let target = p + ".corrupt"
                if rename(p, target) != 0 {
                    throw CheckpointError.io(path: p, problem: "cannot quarantine a damaged checkpoint (\(String(cString: strerror(errno))))")
                }
                DurableFile.syncDirectory(directory)
                quarantined.append((e.file, err))
            }
        }
        if !quarantined.isEmpty {
            throw CheckpointError.noCheckpoint("no usable checkpoint in \(directory): "
                + quarantined.map { "\($0.0) (\($0.1))" }.joined(separator: "; ") + " — quarantined as *.corrupt")
        }
        return nil
    }

    /// Verifies every checkpoint without changing anything: (file, nil) when good.
    public func verifyAll() -> [(file: String, error: CheckpointError?)] {
        list().map { e in
            do { _ = try CheckpointFile.decode(try CheckpointStore.readAll(path(e.file))); return (e.file, nil) } catch let err as CheckpointError {
                return (e.file, err)
            } catch { return (e.file, .io(path: path(e.file), problem: "\(error)")) }
        }
    }

    /// The file LATEST names, if any.
    public func latestPointer() -> String? {
        guard let s = try? String(contentsOfFile: path("LATEST"), encoding: .utf8) else { return nil }
        let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
        return t.isEmpty ? nil : t
    }

    // MARK: files

    func createDirectory() throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw CheckpointError.io(path: directory, problem: "cannot create the checkpoint directory (\(error.localizedDescription))")
        }
    }

    /// Leftovers of a write interrupted before its rename.
    func removeTemporaries() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for n in names where n.hasSuffix(".tmp") { unlink(path(n)) }
    }

    public func freeBytes() -> Int {
        var s = statvfs()
        guard statvfs(directory, &s) == 0 else { return Int.max }
        return Int(s.f_bavail) &* Int(s.f_frsize)
    }

    public static func readAll(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.io(path: path, problem: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CheckpointError.io(path: path, problem: String(cString: strerror(errno))) }
        let size = Int(st.st_size)
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
            if n < 0 { if errno == EINTR { continue }; throw CheckpointError.io(path: path, problem: String(cString: strerror(errno))) }
            if n == 0 { out.removeLast(size - done); break }
            done += n
        }
        return out
    }

    /// Checkpoint writes by this process (for the crash test hook).
    nonisolated(unsafe) static var hookedWrites = 0

    /// temp file → write → fsync → rename → fsync the directory. With `crashHook` and
    /// PRUNED_TEST_CRASH_AFTER_FSYNC=N in the environment the process dies (`_exit(137)`)
    /// between fsync and rename of its N-th checkpoint (a test hook for crash safety).
    public static func durableWrite(_ bytes: [UInt8], to path: String, crashHook: Bool) throws {
        let hook: (() -> Void)? = crashHook ? {
            if let n = ProcessInfo.processInfo.environment["PRUNED_TEST_CRASH_AFTER_FSYNC"].flatMap({ Int($0) }) {
                hookedWrites += 1
                if hookedWrites == n { _exit(137) }
            }
        } : nil
        do { try DurableFile.write(bytes, to: path, beforeRename: hook) } catch let e as FileError {
            throw CheckpointError.io(path: e.path, problem: e.problem)
        }
    }

}
