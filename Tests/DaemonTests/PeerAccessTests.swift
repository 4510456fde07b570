// The daemon reads datasets with its own rights, so a user who may not read a file must not be
// able to make it read that file, nor learn whether a path exists (PeerAccess). These tests build
// real directory trees with chown/chmod (tests run as root) and check the mode-bit decision, the
// path walk, the dataset check, submit as another uid (in process and over the socket with
// setpriv), exemption of root, and the re-check when a run starts after a symlink swap.
import Control
@testable import Daemon
import Engine
import Foundation
import PrunedJSON
import Testing
import TestSupport

private let nobody = AccessIdentity(uid: 65534, groups: [65534])

private func touch(_ path: String, mode: mode_t, owner: uid_t = 0, group: gid_t = 0, _ text: String = "data\n") throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    guard chown(path, owner, group) == 0, chmod(path, mode) == 0 else { throw ClientError(description: "chmod \(path)") }
}

private let fashionFiles = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

/// A Fashion-MNIST-shaped directory (contents irrelevant: the check never reads them).
private func datasetDirectory(_ path: String, mode: mode_t = 0o755, fileMode: mode_t = 0o644) throws {
    try makeDirectory(path, mode: mode)
    for f in fashionFiles { try touch(path + "/" + f, mode: fileMode) }
}

private func specLine(_ path: String) -> String {
    #"submit spec={"model":"conv4","width":0.25,"dataset":{"kind":"fashion_mnist","path":"\#(path)","train_limit":256,"test_limit":64},"epochs":1,"batch_size":64,"seed":1} hold=true"#
}

@Suite(.serialized, .enabled(if: geteuid() == 0, "chown needs root"))
struct PeerAccessTests {
    @Test func modeBitsAreDecidedLikeTheKernel() {
        let alice = AccessIdentity(uid: 1000, groups: [1000, 50])
        // (owner, group, mode, want, expected) for alice.
        let table: [(UInt32, UInt32, mode_t, mode_t, Bool)] = [
            (1000, 0, 0o400, 4, true),
            (1000, 0, 0o044, 4, false),    // the owner's triple decides even when group/other would grant
            (1000, 0, 0o100, 1, true),
            (0, 50, 0o040, 4, true),       // a supplementary group
            (0, 50, 0o004, 4, false),      // the group's triple decides for a member
            (0, 1000, 0o050, 5, true),
            (0, 1000, 0o040, 5, false),
            (0, 0, 0o004, 4, true),
            (0, 0, 0o001, 1, true),
            (0, 0, 0o004, 1, false),
            (0, 0, 0o770, 4, false),
            (65534, 65534, 0o777, 4, true),
        ]
        for (owner, group, mode, want, expected) in table {
            #expect(PeerAccess.permits(owner: owner, group: group, mode: mode, who: alice, want: want) == expected,
                    "owner \(owner) group \(group) mode \(String(mode, radix: 8)) want \(want)")
        }
        #expect(PeerAccess.isUnder("/srv/data/x", root: "/srv/data"))
        #expect(PeerAccess.isUnder("/srv/data", root: "/srv/data"))
        #expect(!PeerAccess.isUnder("/srv/database", root: "/srv/data"))
        #expect(!PeerAccess.isUnder("/srv/data", root: nil))
        #expect(PeerAccess.isUnder("/x", root: "/"))
    }

    @Test func pathsResolveAsTheUserWouldWithoutAnExistenceOracle() throws {
        let dir = makeTempDir("pa")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = try #require(PeerAccess.realPath(dir))
        try makeDirectory(base + "/open", mode: 0o755)
        try touch(base + "/open/file", mode: 0o644)
        try makeDirectory(base + "/closed/inner", mode: 0o755)
        try makeDirectory(base + "/closed", mode: 0o700)
        try touch(base + "/closed/inner/file", mode: 0o644)
        try FileManager.default.createSymbolicLink(atPath: base + "/link", withDestinationPath: "closed/inner")
        try FileManager.default.createSymbolicLink(atPath: base + "/loop", withDestinationPath: base + "/loop")
        try FileManager.default.createSymbolicLink(atPath: base + "/open/up", withDestinationPath: "../open")
        func r(_ p: String, _ who: AccessIdentity = nobody, root: String? = nil) -> PeerAccess.Lookup { PeerAccess.resolve(p, as: who, root: root) }

        #expect(r(base + "/open/file") == .found(base + "/open/file"))
        #expect(r(base + "//open/./up/up/file") == .found(base + "/open/file"))
        #expect(r(base + "/open/absent") == .missing)
        #expect(r(base + "/open/file/below") == .missing)
        #expect(r(base + "/closed/inner/file") == .denied)
        #expect(r(base + "/closed/absent") == .denied)            // the same answer as for a path that exists
        #expect(r(base + "/link/file") == .denied)                // a symbolic link does not bypass the walk
        #expect(r(base + "/closed/../open/file") == .denied)      // ".." is looked up in closed as well
        #expect(r(base + "/loop/x") == .denied)
        #expect(r("relative/file") == .denied)
        // Root, the owner's triple, the group's triple.
        try makeDirectory(base + "/closed", mode: 0o700, owner: 65534, group: 65534)
        #expect(r(base + "/link/file") == .found(base + "/closed/inner/file"))
        #expect(r(base + "/link/file", AccessIdentity(uid: 0, groups: [0])) == .denied)   // root is exempt elsewhere, not here
        try makeDirectory(base + "/closed", mode: 0o710, owner: 0, group: 4242)
        #expect(r(base + "/link/file") == .denied)
        #expect(r(base + "/link/file", AccessIdentity(uid: 65534, groups: [65534, 4242])) == .found(base + "/closed/inner/file"))
        // The data root opens what lies under it, and nothing else.
        try makeDirectory(base + "/closed", mode: 0o700)
        #expect(r(base + "/link/file", root: base + "/closed") == .found(base + "/closed/inner/file"))
        #expect(r(base + "/closed/absent", root: base + "/closed") == .missing)
        // A data root inside a directory the user cannot search: the way down to it is open,
        // the rest of that directory is not (no oracle for its other entries).
        let inner = base + "/closed/inner"
        #expect(r(base + "/closed/inner/file", root: inner) == .found(base + "/closed/inner/file"))
        #expect(r(base + "/closed/inner/../inner/file", root: inner) == .found(base + "/closed/inner/file"))
        #expect(r(base + "/closed/absent", root: inner) == .denied)
        #expect(r(base + "/closed/inner/../absent", root: inner) == .denied)
        #expect(r(base + "/link/file", root: inner) == .found(base + "/closed/inner/file"))
    }

    @Test func datasetsMustBeReadableByThePeerOrUnderTheDataRoot() throws {
        let dir = makeTempDir("pd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = try #require(PeerAccess.realPath(dir))
        let mine = base + "/mine"
        try datasetDirectory(mine)
        try makeDirectory(base + "/secret", mode: 0o700)
        try touch(base + "/secret/key", mode: 0o600, "TOP-SECRET\n")
        try datasetDirectory(base + "/secret/data1")
        let root = base + "/root"
        try makeDirectory(root + "/cifar", mode: 0o700)
        try makeDirectory(root, mode: 0o700)
        func check(_ path: String, _ kind: DatasetKind = .fashion_mnist, root: String = base + "/no-root") -> String? {
            do {
                try PeerAccess.checkDataset(kind: kind, path: path, who: nobody, dataRoot: root)
                return nil
            } catch let e as ProtocolError {
                #expect(e.code == .badSpec)
                return e.message
            } catch { return "\(error)" }
        }
        #expect(check(mine) == nil)
        // A file of the dataset the peer cannot read.
        try touch(mine + "/train-labels-idx1-ubyte.gz", mode: 0o600)
        #expect(check(mine) == "run spec field 'dataset.path': \(mine)/train-labels-idx1-ubyte.gz is not a file that you (uid 65534) can read or that lies under the data root \(base)/no-root")
        try touch(mine + "/train-labels-idx1-ubyte.gz", mode: 0o644)
        // The attack: a dataset file that is a symbolic link to a secret.
        try FileManager.default.removeItem(atPath: mine + "/t10k-images-idx3-ubyte.gz")
        try FileManager.default.createSymbolicLink(atPath: mine + "/t10k-images-idx3-ubyte", withDestinationPath: base + "/secret/key")
        #expect(check(mine)?.contains("\(mine)/t10k-images-idx3-ubyte is not a file that you (uid 65534) can read") == true)
        try FileManager.default.removeItem(atPath: mine + "/t10k-images-idx3-ubyte")
        // Missing files are left to the reader's own error (the peer can see they are missing).
        #expect(check(mine) == nil)
        // Refused and missing directories get the same message.
        let refused = check(base + "/secret/data1") ?? ""
        let missing = check(base + "/secret/data2") ?? ""
        let missingOpen = check(mine + "/data2") ?? ""
        #expect(refused.contains("is not a directory that you (uid 65534) can read or that lies under the data root"), "\(refused)")
        #expect(refused.replacingOccurrences(of: "secret/data1", with: "X") == missing.replacingOccurrences(of: "secret/data2", with: "X"))
        #expect(missing.replacingOccurrences(of: base + "/secret/data2", with: "X") == missingOpen.replacingOccurrences(of: mine + "/data2", with: "X"))
        #expect(check(mine + "/train-images-idx3-ubyte.gz") != nil)    // a file, not a directory
        #expect(check(base + "/secret/data1", .cifar10)?.hasSuffix("(download CIFAR-10's binary version under the data root, or where you can read it)") == true)
        // Under the data root: usable although the peer could not read it, with either CIFAR layout.
        #expect(check(root + "/cifar", .cifar10, root: root) == nil)
        try makeDirectory(root + "/cifar/cifar-10-batches-bin", mode: 0o700)
        try touch(root + "/cifar/cifar-10-batches-bin/test_batch.bin", mode: 0o600)
        #expect(check(root + "/cifar", .cifar10, root: root) == nil)
        // ...but not a way out of it, by ".." or by a symbolic link, nor a file linked out of it.
        #expect(check(root + "/../secret/data1", root: root) != nil)
        try FileManager.default.createSymbolicLink(atPath: root + "/out", withDestinationPath: base + "/secret/data1")
        #expect(check(root + "/out", root: root) != nil)
        try FileManager.default.createSymbolicLink(atPath: root + "/cifar/cifar-10-batches-bin/data_batch_1.bin", withDestinationPath: base + "/secret/key")
        #expect(check(root + "/cifar", .cifar10, root: root)?.contains("data_batch_1.bin is not a file") == true)
    }

    @Test func submitChecksThePeerAndStartRechecksTheOwner() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        let base = try #require(PeerAccess.realPath(d.dir))
        try makeDirectory(base + "/secret", mode: 0o700)
        try datasetDirectory(base + "/secret/data")
        try makeDirectory(base + "/mine", mode: 0o755)
        let peer = Peer(pid: 1, uid: 65534, gid: 65534, name: "nobody", admin: false)
        func submit(_ path: String, as p: Peer) throws -> Reply {
            guard case .reply(let r) = d.daemon.handle(try Request.parse(specLine(path)), peer: p) else { return .error(ProtocolError(.internal, "deferred")) }
            return r
        }
        // Refused, and the same whether the path exists or not.
        let existing = try submit(base + "/secret/data", as: peer)
        let absent = try submit(base + "/secret/gone", as: peer)
        guard case .error(let e1) = existing, case .error(let e2) = absent else {
            Issue.record("submitted: \(existing.rendered) \(absent.rendered)")
            return
        }
        #expect(e1.code == .badSpec && e1.message.contains("you (uid 65534)"), "\(e1)")
        #expect(e1.message.replacingOccurrences(of: "secret/data", with: "X") == e2.message.replacingOccurrences(of: "secret/gone", with: "X"))
        // Root and admins use the daemon's rights (the old check).
        var admin = peer
        admin.admin = true
        guard case .ok = try submit(base + "/secret/data", as: admin) else { Issue.record("an admin was refused"); return }
        #expect(try d.client().ok("cancel r-0001")["state"]?.stringValue == "cancelled")
        // A directory the peer can read is accepted (held), and owned by the peer...
        guard case .ok(let j) = try submit(base + "/mine", as: peer), let id = j["id"]?.stringValue else { Issue.record("refused a readable directory"); return }
        #expect(d.daemon.record(try #require(RunID(id)))?.owner == 65534)
        // ...then swapped for a symbolic link to the secret dataset before it starts: the start
        // re-checks with the owner's rights and fails the run instead of reading it.
        try FileManager.default.removeItem(atPath: base + "/mine")
        try FileManager.default.createSymbolicLink(atPath: base + "/mine", withDestinationPath: base + "/secret/data")
        let c = try d.client()
        _ = try c.ok("release \(id)")
        #expect(waitFor(30) { (try? c.state(id)) == "failed" })
        let reason = try c.ok("show \(id)")["reason"]?.stringValue ?? ""
        #expect(reason.contains("\(base)/mine is not a directory that you (uid 65534) can read"), "\(reason)")
    }

    @Test(.enabled(if: canActAsOtherUsers))
    func overTheSocketAsAnotherUid() throws {
        let d = try TestDaemon()
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        #expect(chmod(d.socketPath, 0o666) == 0)
        let base = try #require(PeerAccess.realPath(d.dir))
        try makeDirectory(base + "/secret", mode: 0o700)
        try datasetDirectory(base + "/secret/data")
        for path in [base + "/secret/data", base + "/secret/gone"] {
            let reply = try requestAsNobody(d.socketPath, specLine(path))
            #expect(reply == "ERR BAD_SPEC run spec field 'dataset.path': \(path) is not a directory that you (uid 65534) can read or that lies under the data root \(base)/state")
        }
        #expect(try d.client().ok("list")["count"]?.intValue == 0)
    }
}
