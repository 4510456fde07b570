// Where a control socket may live, checked by the daemon before it binds and by every Swift
// client before it connects (clients/python/pruned_client.py and clients/shell/pruned-send.sh
// apply the same rule). Another user must not be able to own, or write to, the directory that
// holds the socket: whoever can rename entries there can move the daemon's socket away and put a
// fake daemon in its place, which then receives the owner's requests.
//
// The rule (docs/PROTOCOL.md, Security):
// - private: the per-user fallbacks `$XDG_RUNTIME_DIR/pruned` and `/tmp/pruned-UID` must be real
//   directories (not symbolic links) owned by the caller's uid with mode exactly 0700;
// - shared: every other directory (`/run/pruned` of the system service, the directory of an
//   explicit `--socket`/`$PRUNED_SOCKET`) must be a real directory owned by root, the caller or
//   the `pruned` system user, and not writable by group or others;
// - under both rules every directory above it (resolved with realpath) must be owned by root,
//   the caller or the `pruned` user and be either not writable by group or others, or sticky
//   (like /tmp, where nobody can rename another user's entries);
// - an existing socket must be a socket (not a symbolic link) owned by the caller or root (or,
//   shared, the `pruned` user).
// A directory that does not exist passes (the daemon creates it 0700; a client's connect fails).
import Foundation

public struct SocketDirectoryError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

public enum SocketDirectory {
    public enum Rule: Equatable, Sendable {
        /// `$XDG_RUNTIME_DIR/pruned`, `/tmp/pruned-UID`: the caller's own, exactly 0700.
        case privateDirectory
        /// `/run/pruned` and explicit paths: root's, the caller's or the `pruned` user's, not
        /// writable by group or others.
        case shared
    }

    /// The system service's user (systemd/sysusers.d/pruned.conf).
    public static let systemUser = "pruned"

    /// Which rule applies to `socketPath` for a caller with `uid`: private for the per-user
    /// fallback locations, shared for everything else.
    public static func rule(for socketPath: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                            uid: uid_t = geteuid()) -> Rule {
        let dir = normalised(directory(of: socketPath))
        if dir == "/tmp/pruned-\(uid)" { return .privateDirectory }
        if let x = environment["XDG_RUNTIME_DIR"], !x.isEmpty, dir == normalised(x + "/pruned") { return .privateDirectory }
        return .shared
    }

    /// Throws a SocketDirectoryError naming the path, its owner and mode and what is expected
    /// unless the socket's directory, the directories above it and the socket itself (when they
    /// exist) follow `rule` for a caller with `uid`.
    public static func check(socketPath: String, rule: Rule? = nil, uid: uid_t = geteuid()) throws {
        let rule = rule ?? self.rule(for: socketPath, uid: uid)
        let dir = directory(of: socketPath)
        let owners = allowedOwners(rule: rule, uid: uid)
        var st = stat()
        guard lstat(dir, &st) == 0 else { return }
        let kind = st.st_mode & S_IFMT
        let mode = st.st_mode & 0o7777
        let expected: String
        switch rule {
        case .privateDirectory:
            expected = "a directory owned by \(describe(uid)) with mode 0700"
        case .shared:
            expected = "a directory owned by \(owners.map(describe).joined(separator: " or ")) and not writable by group or others"
        }
        let why = rule == .privateDirectory
            ? " (another user may have created it to intercept your requests: remove it, or set XDG_RUNTIME_DIR)"
            : " (whoever can write there can replace the socket with a fake daemon)"
        guard kind == S_IFDIR else {
            let what = kind == S_IFLNK ? "a symbolic link" : "not a directory"
            throw SocketDirectoryError("refusing the socket directory \(dir): it is \(what), owned by \(describe(st.st_uid)); expected \(expected)\(why)")
        }
        let ok: Bool
        switch rule {
        case .privateDirectory: ok = st.st_uid == uid && mode == 0o700
        case .shared: ok = owners.contains(st.st_uid) && mode & 0o022 == 0
        }
        guard ok else {
            throw SocketDirectoryError("refusing the socket directory \(dir): owned by \(describe(st.st_uid)) with mode \(octal(mode)); expected \(expected)\(why)")
        }
        // The directories above: nobody else may rename the socket's directory.
        let ancestorOwners = allowedOwners(rule: .shared, uid: uid)
        if let parent = realPath(directory(of: dir)) {
            var p = parent
            while true {
                var a = stat()
                if lstat(p, &a) == 0 {
                    let m = a.st_mode & 0o7777
                    guard ancestorOwners.contains(a.st_uid), m & 0o022 == 0 || m & S_ISVTX != 0 else {
                        throw SocketDirectoryError("refusing the socket directory \(dir): the directory above it, \(p), is owned by \(describe(a.st_uid)) with mode \(octal(m)); expected one owned by \(ancestorOwners.map(describe).joined(separator: " or ")) and not writable by group or others unless sticky (like /tmp), since whoever can write there can replace \(dir)")
                    }
                }
                if p == "/" { break }
                p = directory(of: p)
            }
        }
        var s = stat()
        if lstat(socketPath, &s) == 0 {
            let socketOwners = rule == .privateDirectory ? Array(Set([uid, 0])).sorted() : owners
            guard s.st_mode & S_IFMT == S_IFSOCK else {
                let what = s.st_mode & S_IFMT == S_IFLNK ? "a symbolic link" : "not a socket"
                throw SocketDirectoryError("refusing \(socketPath): it is \(what); expected a socket owned by \(socketOwners.map(describe).joined(separator: " or "))")
            }
            guard socketOwners.contains(s.st_uid) else {
                throw SocketDirectoryError("refusing the socket \(socketPath): owned by \(describe(s.st_uid)) with mode \(octal(s.st_mode & 0o7777)); expected a socket owned by \(socketOwners.map(describe).joined(separator: " or ")) (another user may have put a fake daemon there)")
            }
        }
    }

    /// Root, the caller and (shared) the `pruned` system user when it exists.
    static func allowedOwners(rule: Rule, uid: uid_t) -> [uid_t] {
        var owners: [uid_t] = [0, uid]
        if rule == .shared, let u = systemUserID() { owners.append(u) }
        return Array(Set(owners)).sorted()
    }

    /// The uid of the `pruned` system user, when it exists.
    static func systemUserID() -> uid_t? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buf = [CChar](repeating: 0, count: 4096)
        guard getpwnam_r(systemUser, &pwd, &buf, buf.count, &result) == 0, let r = result else { return nil }
        return r.pointee.pw_uid
    }

    /// The directory part of a path ("." for a bare name, "/" for a top-level entry).
    public static func directory(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        var d = p[..<slash]
        while d.count > 1 && d.hasSuffix("/") { d = d.dropLast() }
        return d.isEmpty ? "/" : String(d)
    }

    /// Empty and "." components dropped (".." is left alone: it depends on symbolic links).
    static func normalised(_ path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        return (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
    }

    static func realPath(_ path: String) -> String? {
        guard let r = realpath(path, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    /// "uid 1000 (alice)", or "uid 1000" without a passwd entry.
    public static func describe(_ uid: uid_t) -> String {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buf = [CChar](repeating: 0, count: 4096)
        if getpwuid_r(uid, &pwd, &buf, buf.count, &result) == 0, let r = result {
            return "uid \(uid) (\(String(cString: r.pointee.pw_name)))"
        }
        return "uid \(uid)"
    }

    static func octal(_ mode: mode_t) -> String {
        let s = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }
}
