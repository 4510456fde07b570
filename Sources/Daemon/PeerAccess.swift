// Which dataset a client may make the daemon read. The daemon opens `dataset.path` with its own
// rights, so without this check any user who can connect could make it read files that user
// cannot read, and learn from the errors whether a path exists. The rule (README, Security):
// root, the daemon's own user and admins may name any path; anybody else only a dataset that
// (a) lies under the data root (`--data-root`, default the state directory), or (b) the user
// could read itself — search permission on every directory on the way and on the dataset
// directory, read permission on every file the reader opens for that dataset kind. A path
// refused and a path missing get the same error, so the daemon is no existence oracle.
//
// Paths are resolved here component by component, as the kernel would for that user: a name is
// looked up in a directory only if the user may search it, or the directory is under the data
// root, or the name leads down to the data root; symbolic links and ".." are followed on the
// real, symlink-free path. Permission comes
// from the mode bits with the kernel's owner / group / other precedence; POSIX ACLs are not
// consulted (a user granted access only by an ACL entry is refused; the group class of a file
// with an ACL is its mask, an upper bound).
import Control
import Engine
import Foundation

/// Whom the daemon reads a dataset for: a uid and every group it is in.
struct AccessIdentity: Equatable, Sendable {
    var uid: UInt32
    var groups: Set<UInt32>
}

enum PeerAccess {
    /// Permission bits as in a file mode's "other" triple.
    static let read: mode_t = 4
    static let search: mode_t = 1

    // MARK: identities

    /// The primary group `gid` and the supplementary groups of user `name` (getgrouplist).
    static func groupList(name: String, gid: gid_t) -> [gid_t] {
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(max(count, 1)))
            guard getgrouplist(name, gid, &groups, &count) >= 0 else { return [gid] }
        }
        return Array(groups.prefix(Int(max(count, 0))))
    }

    /// A connected peer: its uid, its gid from SO_PEERCRED and its user's supplementary groups.
    static func identity(of peer: Peer) -> AccessIdentity {
        AccessIdentity(uid: peer.uid, groups: Set(groupList(name: peer.name, gid: peer.gid) + [peer.gid]))
    }

    /// A user known only by uid (a run's owner at start time): the passwd entry's primary group
    /// and its supplementary groups; no groups when the user no longer exists.
    static func identity(uid: UInt32) -> AccessIdentity {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buf = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &pwd, &buf, buf.count, &result) == 0, let r = result else {
            return AccessIdentity(uid: uid, groups: [])
        }
        let gid = r.pointee.pw_gid
        return AccessIdentity(uid: uid, groups: Set(groupList(name: String(cString: r.pointee.pw_name), gid: gid) + [gid]))
    }

    /// Whether `uid` is root, the daemon's own user or a member of the admin group (by name).
    static func isExempt(uid: UInt32, adminGroup: String?) -> Bool {
        if uid == 0 || uid == getuid() { return true }
        guard let adminGroup, let gid = groupID(adminGroup) else { return false }
        return identity(uid: uid).groups.contains(gid)
    }

    static func groupID(_ name: String) -> gid_t? {
        var grp = group()
        var result: UnsafeMutablePointer<group>?
        var buf = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &grp, &buf, buf.count, &result) == 0, let r = result else { return nil }
        return r.pointee.gr_gid
    }

    // MARK: the decision (pure)

    /// Whether `who` gets the `want` bits (read 4, search 1) on a file with this owner, group and
    /// mode, decided as the kernel does from the mode: the owner's triple if `who` owns the file,
    /// else the group's if `who` is in its group, else the others'. Root is not special here.
    static func permits(owner: UInt32, group: UInt32, mode: mode_t, who: AccessIdentity, want: mode_t) -> Bool {
        let triple: mode_t
        if owner == who.uid {
            triple = (mode >> 6) & 7
        } else if who.groups.contains(group) {
            triple = (mode >> 3) & 7
        } else {
            triple = mode & 7
        }
        return triple & want == want
    }

    /// Whether the real (symlink-free) path `path` is `root` or inside it.
    static func isUnder(_ path: String, root: String?) -> Bool {
        guard let root else { return false }
        if root == "/" { return path.hasPrefix("/") }
        return path == root || path.hasPrefix(root + "/")
    }

    // MARK: resolution

    enum Lookup: Equatable {
        /// The real path (no symbolic links, "." or ".."); every lookup on the way was allowed.
        case found(String)
        /// A component does not exist (or is not a directory) and the user was allowed to look.
        case missing
        /// The user may not look somewhere on the way (or the path loops or is not absolute).
        case denied
    }

    /// Resolves the absolute `path` as `who` would, looking names up only in directories `who`
    /// may search or that lie under `root` (a real path), or on the way down to `root`.
    static func resolve(_ path: String, as who: AccessIdentity, root: String?) -> Lookup {
        guard path.hasPrefix("/") else { return .denied }
        var current = "/"
        var pending = Array(path.split(separator: "/", omittingEmptySubsequences: true).reversed().map(String.init))
        var links = 0
        while let name = pending.popLast() {
            if name == "." { continue }
            var dir = stat()
            guard lstat(current, &dir) == 0 else { return .denied }
            // A name after a file: ENOTDIR, which the user could see as well as we do.
            guard dir.st_mode & S_IFMT == S_IFDIR else { return .missing }
            let next = name == ".." ? parent(current) : current == "/" ? "/" + name : current + "/" + name
            // Under the root anything may be looked up; above it only the way down to the root
            // (so a root inside a directory the user cannot search stays usable, and reveals
            // nothing about that directory's other entries).
            let towardRoot = root.map { isUnder($0, root: next) && isUnder($0, root: current) } ?? false
            guard isUnder(current, root: root) || towardRoot
                    || permits(owner: dir.st_uid, group: dir.st_gid, mode: dir.st_mode, who: who, want: search) else {
                return .denied
            }
            if name == ".." {
                current = next
                continue
            }
            var st = stat()
            guard lstat(next, &st) == 0 else { return errno == ENOENT || errno == ENOTDIR ? .missing : .denied }
            if st.st_mode & S_IFMT == S_IFLNK {
                links += 1
                guard links <= 40, let target = readLink(next), !target.isEmpty else { return .denied }
                if target.hasPrefix("/") { current = "/" }
                pending += target.split(separator: "/", omittingEmptySubsequences: true).reversed().map(String.init)
                continue
            }
            current = next
        }
        return .found(current)
    }

    /// The parent of a real (symlink-free) absolute path; "/" for "/".
    static func parent(_ path: String) -> String {
        guard path != "/", let slash = path.lastIndex(of: "/") else { return "/" }
        let p = String(path[..<slash])
        return p.isEmpty ? "/" : p
    }

    static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buf, buf.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func realPath(_ path: String) -> String? {
        guard let r = realpath(path, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    // MARK: datasets

    /// The files DatasetLoader.load may open for `kind` in `directory`, under either layout it
    /// accepts (the files directly in it, or in the archive's subdirectory).
    static func readerFiles(_ kind: DatasetKind, in directory: String) -> [String] {
        func join(_ d: String, _ n: String) -> String { d.hasSuffix("/") ? d + n : d + "/" + n }
        switch kind {
        case .cifar10:
            let names = (1 ... 5).map { "data_batch_\($0).bin" } + ["test_batch.bin"]
            return [directory, join(directory, "cifar-10-batches-bin")].flatMap { d in names.map { join(d, $0) } }
        case .cifar100:
            return [directory, join(directory, "cifar-100-binary")].flatMap { d in ["train.bin", "test.bin"].map { join(d, $0) } }
        case .fashion_mnist, .mnist:
            let names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
            return names.flatMap { [join(directory, $0), join(directory, $0 + ".gz")] }
        }
    }

    /// Throws BAD_SPEC unless `who` may have the daemon read the `kind` dataset at the absolute
    /// `path`: it lies under `dataRoot`, or `who` can search it and the directories above it and
    /// read each file the reader would open there (files that do not exist are left to the
    /// reader's own error). One message for refused and missing paths alike.
    static func checkDataset(kind: DatasetKind, path: String, who: AccessIdentity, dataRoot: String) throws {
        let root = realPath(dataRoot)
        let rootShown = root ?? dataRoot
        func refuse(_ p: String, _ what: String, hint: String = "") -> ProtocolError {
            ProtocolError(.badSpec, "run spec field 'dataset.path': \(p) is not \(what) that you (uid \(who.uid)) can read "
                          + "or that lies under the data root \(rootShown)" + hint)
        }
        let hint = kind == .cifar10 ? " (download CIFAR-10's binary version under the data root, or where you can read it)" : ""
        guard case .found(let real) = resolve(path, as: who, root: root) else { throw refuse(path, "a directory", hint: hint) }
        var st = stat()
        guard stat(real, &st) == 0, st.st_mode & S_IFMT == S_IFDIR,
              isUnder(real, root: root) || permits(owner: st.st_uid, group: st.st_gid, mode: st.st_mode, who: who, want: search) else {
            throw refuse(path, "a directory", hint: hint)
        }
        for file in readerFiles(kind, in: path) {
            switch resolve(file, as: who, root: root) {
            case .missing: continue
            case .denied: throw refuse(file, "a file")
            case .found(let realFile):
                if isUnder(realFile, root: root) { continue }
                var fst = stat()
                guard stat(realFile, &fst) == 0, permits(owner: fst.st_uid, group: fst.st_gid, mode: fst.st_mode, who: who, want: read) else {
                    throw refuse(file, "a file")
                }
            }
        }
    }
}
