// Socket squatting: a socket directory created first by another user (or one others may write
// to) lets that user move the daemon's socket away and put a fake daemon in its place. The rule
// (SocketDirectory) is checked by the daemon before it binds and by prunectl, the Python client
// and the shell client before they connect; these tests plant such directories and check that
// all of them refuse, naming the path, its owner and mode, and that nobody talks to the fake.
import ControlClient
@testable import Daemon
import Foundation
import Testing
import TestSupport

private let sendScript = packageRoot + "/clients/shell/pruned-send.sh"
private let haveShellClient = FileManager.default.isExecutableFile(atPath: "/bin/bash") || FileManager.default.isExecutableFile(atPath: "/usr/bin/bash")

@Suite(.serialized, .enabled(if: geteuid() == 0, "chown needs root"))
struct SocketDirectoryTests {
    @Test func ruleFollowsTheLocation() {
        #expect(SocketDirectory.rule(for: "/tmp/pruned-5/control.sock", environment: [:], uid: 5) == .privateDirectory)
        #expect(SocketDirectory.rule(for: "/tmp//pruned-5/./control.sock", environment: [:], uid: 5) == .privateDirectory)
        #expect(SocketDirectory.rule(for: "/run/user/5/pruned/control.sock", environment: ["XDG_RUNTIME_DIR": "/run/user/5/"], uid: 5) == .privateDirectory)
        #expect(SocketDirectory.rule(for: "/tmp/pruned-6/control.sock", environment: [:], uid: 5) == .shared)
        #expect(SocketDirectory.rule(for: "/run/pruned/control.sock", environment: ["XDG_RUNTIME_DIR": "/run/user/5"], uid: 5) == .shared)
        #expect(SocketDirectory.rule(for: "s", environment: [:], uid: 5) == .shared)
        #expect(SocketDirectory.directory(of: "/a/b//c/") == "/a/b")
        #expect(SocketDirectory.directory(of: "/s") == "/")
        #expect(SocketDirectory.directory(of: "s") == ".")
    }

    /// The message for `socket` under `rule` as caller `uid`, or nil when it passes.
    private func refusal(_ socket: String, _ rule: SocketDirectory.Rule, uid: uid_t = 0) -> String? {
        do { try SocketDirectory.check(socketPath: socket, rule: rule, uid: uid); return nil } catch { return "\(error)" }
    }

    @Test func privateDirectoriesMustBeTheCallersAndExactly0700() throws {
        let base = makeTempDir("sdp")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let d = base + "/pruned-0"
        try makeDirectory(d, mode: 0o700)
        #expect(refusal(d + "/control.sock", .privateDirectory) == nil)
        // A missing directory passes (the daemon creates it; a client's connect fails).
        #expect(refusal(base + "/absent/control.sock", .privateDirectory) == nil)
        for mode: mode_t in [0o777, 0o1777, 0o750, 0o711, 0o2700] {
            try makeDirectory(d, mode: mode)
            let m = refusal(d + "/control.sock", .privateDirectory) ?? ""
            #expect(m.contains("refusing the socket directory \(d): owned by uid 0 (root) with mode \(String(format: "%04o", mode))"), "\(m)")
            #expect(m.contains("expected a directory owned by uid 0 (root) with mode 0700"), "\(m)")
        }
        // Squatted: created by uid 65534 first, even with the right mode.
        try makeDirectory(d, mode: 0o700, owner: 65534, group: 65534)
        let m = refusal(d + "/control.sock", .privateDirectory) ?? ""
        #expect(m.contains("owned by uid 65534") && m.contains("mode 0700") && m.contains("intercept"), "\(m)")
        // That user's own daemon may use it.
        #expect(refusal(d + "/control.sock", .privateDirectory, uid: 65534) == nil)
        // A symbolic link in its place, even to a good directory.
        let good = base + "/good"
        try makeDirectory(good, mode: 0o700)
        try FileManager.default.removeItem(atPath: d)
        try FileManager.default.createSymbolicLink(atPath: d, withDestinationPath: good)
        #expect(refusal(d + "/control.sock", .privateDirectory)?.contains("it is a symbolic link") == true)
    }

    @Test func sharedDirectoriesMustNotBeWritableByOthers() throws {
        let base = makeTempDir("sds")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let d = base + "/run"
        try makeDirectory(d, mode: 0o755)
        #expect(refusal(d + "/s", .shared) == nil)
        for mode: mode_t in [0o775, 0o757, 0o777, 0o1777] {
            try makeDirectory(d, mode: mode)
            let m = refusal(d + "/s", .shared) ?? ""
            #expect(m.contains("\(d): owned by uid 0 (root) with mode \(String(format: "%04o", mode))") && m.contains("not writable by group or others"), "\(m)")
        }
        // Another (non-system) user's directory: refused for root, fine for that user.
        try makeDirectory(d, mode: 0o755, owner: 65534, group: 65534)
        #expect(refusal(d + "/s", .shared)?.contains("owned by uid 65534") == true)
        #expect(refusal(d + "/s", .shared, uid: 65534) == nil)
        // The directories above: a world-writable parent could swap the whole directory...
        try makeDirectory(d, mode: 0o700)
        try makeDirectory(base, mode: 0o777)
        let m = refusal(d + "/s", .shared) ?? ""
        #expect(m.contains("the directory above it, \(base), is owned by uid 0 (root) with mode 0777"), "\(m)")
        // ...unless it is sticky like /tmp; and a parent owned by another user is refused too.
        try makeDirectory(base, mode: 0o1777)
        #expect(refusal(d + "/s", .shared) == nil)
        try makeDirectory(base, mode: 0o755, owner: 65534, group: 65534)
        #expect(refusal(d + "/s", .shared)?.contains("the directory above it, \(base), is owned by uid 65534") == true)
        try makeDirectory(base, mode: 0o755)
    }

    @Test func aSocketOfAnotherUserIsRefused() throws {
        let d = makeTempDir("sdk")
        defer { try? FileManager.default.removeItem(atPath: d) }
        try makeDirectory(d, mode: 0o700)
        let fake = try FakeDaemonSocket(d + "/control.sock")
        #expect(refusal(d + "/control.sock", .privateDirectory) == nil)
        #expect(chown(d + "/control.sock", 65534, 65534) == 0)
        let m = refusal(d + "/control.sock", .privateDirectory) ?? ""
        #expect(m.contains("refusing the socket \(d)/control.sock: owned by uid 65534"), "\(m)")
        #expect(refusal(d + "/control.sock", .shared)?.contains("owned by uid 65534") == true)
        // A symbolic link where the socket should be.
        try FileManager.default.createSymbolicLink(atPath: d + "/link.sock", withDestinationPath: d + "/control.sock")
        #expect(refusal(d + "/link.sock", .shared)?.contains("it is a symbolic link") == true)
        // ControlConnection refuses before connecting: the fake daemon never sees it.
        #expect(throws: (any Error).self) { try ControlConnection(path: d + "/control.sock", timeout: 2) }
        #expect(!fake.accepted())
    }

    @Test func theDaemonRefusesToBindInASquattedDirectory() throws {
        let base = makeTempDir("sdd")
        defer { try? FileManager.default.removeItem(atPath: base) }
        // An explicit --socket in a directory others may write to.
        try makeDirectory(base + "/open", mode: 0o777)
        var c = DaemonConfiguration(stateDirectory: base + "/state1")
        c.socketPath = base + "/open/s"
        let daemon = try Daemon(configuration: c, logger: Logger(journal: false, capture: true, echo: false))
        do {
            try daemon.run()
            Issue.record("the daemon bound in a world-writable directory")
        } catch {
            #expect("\(error)".contains("refusing the socket directory \(base)/open: owned by uid 0 (root) with mode 0777"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: base + "/open/s"))
        // Created by another user first.
        try makeDirectory(base + "/theirs", mode: 0o755, owner: 65534, group: 65534)
        c = DaemonConfiguration(stateDirectory: base + "/state2")
        c.socketPath = base + "/theirs/s"
        let second = try Daemon(configuration: c, logger: Logger(journal: false, capture: true, echo: false))
        #expect(throws: (any Error).self) { try second.run() }
        #expect(!FileManager.default.fileExists(atPath: base + "/theirs/s"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: prunedBinary)))
    func theDaemonBinaryRefusesASquattedRuntimeDirectory() throws {
        // No --socket: the daemon picks $XDG_RUNTIME_DIR/pruned/control.sock, which must be its own 0700.
        let base = makeTempDir("sdx")
        defer { try? FileManager.default.removeItem(atPath: base) }
        try makeDirectory(base + "/pruned", mode: 0o777, owner: 65534, group: 65534)
        let r = try runTool(prunedBinary, ["daemon", "--state-dir", base + "/state"],
                            environment: ["XDG_RUNTIME_DIR": base], unset: ["RUNTIME_DIRECTORY", "LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET", "JOURNAL_STREAM"], limit: 60)
        #expect(r.status == 1)
        #expect(r.err.contains("refusing the socket directory \(base)/pruned: owned by uid 65534 (nobody) with mode 0777"), "\(r.err)")
        #expect(r.err.contains("expected a directory owned by uid 0 (root) with mode 0700"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: base + "/pruned/control.sock"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: prunectlBinary)))
    func prunectlRefusesASquattedDirectoryFoundByDiscoveryOrGiven() throws {
        let base = makeTempDir("sdc")
        defer { try? FileManager.default.removeItem(atPath: base) }
        // The squatter's directory and fake daemon at $XDG_RUNTIME_DIR/pruned/control.sock.
        try makeDirectory(base + "/pruned", mode: 0o777)
        let fake = try FakeDaemonSocket(base + "/pruned/control.sock")
        try makeDirectory(base + "/pruned", mode: 0o777, owner: 65534, group: 65534)
        #expect(chown(base + "/pruned/control.sock", 65534, 65534) == 0)
        if !FileManager.default.fileExists(atPath: SocketLocator.systemPath) {   // discovery prefers the system socket
            let env = ["XDG_RUNTIME_DIR": base]
            #expect(SocketLocator.defaultPath(environment: env) == base + "/pruned/control.sock")
            let r = try runTool(prunectlBinary, ["ping"], environment: env, unset: ["PRUNED_SOCKET"], limit: 60)
            #expect(r.status == 4, "\(r.out) \(r.err)")
            #expect(r.err.contains("refusing the socket directory \(base)/pruned: owned by uid 65534 (nobody) with mode 0777"), "\(r.err)")
        }
        // Given explicitly (--socket, $PRUNED_SOCKET): the same directory is refused as well.
        for args in [["ping", "--socket", base + "/pruned/control.sock"], ["ping"]] {
            let r = try runTool(prunectlBinary, args, environment: ["PRUNED_SOCKET": base + "/pruned/control.sock"], limit: 60)
            #expect(r.status == 4, "\(r.out) \(r.err)")
            #expect(r.err.contains("refusing the socket directory \(base)/pruned: owned by uid 65534 (nobody) with mode 0777"), "\(r.err)")
        }
        #expect(!fake.accepted(), "prunectl talked to the fake daemon")
    }

    @Test(.enabled(if: haveShellClient))
    func theShellClientRefusesASquattedDirectory() throws {
        let base = makeTempDir("sdh")
        defer { try? FileManager.default.removeItem(atPath: base) }
        try makeDirectory(base + "/pruned", mode: 0o700)
        let fake = try FakeDaemonSocket(base + "/pruned/control.sock")
        try makeDirectory(base + "/pruned", mode: 0o777, owner: 65534, group: 65534)
        var runs = [try runTool("/bin/bash", [sendScript, "-s", base + "/pruned/control.sock", "ping"], limit: 60),
                    try runTool("/bin/bash", [sendScript, "ping"], environment: ["PRUNED_SOCKET": base + "/pruned/control.sock"], limit: 60)]
        if !FileManager.default.fileExists(atPath: SocketLocator.systemPath) {
            runs.append(try runTool("/bin/bash", [sendScript, "ping"], environment: ["XDG_RUNTIME_DIR": base], unset: ["PRUNED_SOCKET"], limit: 60))
        }
        for r in runs {
            #expect(r.status == 2, "\(r.out) \(r.err)")
            #expect(r.err.contains("refusing the socket directory \(base)/pruned: owned by uid 65534 (nobody) with mode 0777"), "\(r.err)")
        }
        // A socket of another user in a good directory.
        try makeDirectory(base + "/pruned", mode: 0o700)
        #expect(chown(base + "/pruned/control.sock", 65534, 65534) == 0)
        let r = try runTool("/bin/bash", [sendScript, "ping"], environment: ["XDG_RUNTIME_DIR": base], unset: ["PRUNED_SOCKET"], limit: 60)
        if !FileManager.default.fileExists(atPath: SocketLocator.systemPath) {
            #expect(r.status == 2 && r.err.contains("refusing the socket \(base)/pruned/control.sock: owned by uid 65534"), "\(r.err)")
        }
        #expect(!fake.accepted(), "pruned-send.sh talked to the fake daemon")
    }
}
