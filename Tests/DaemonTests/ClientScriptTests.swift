// The clients in clients/ against the real daemon binary: the Python client's own test suite
// (clients/python/test_pruned_client.py, which also runs example_sweep.py), the client installed
// as a package (clients/python/pyproject.toml) into a fresh venv, offline, reading a group's
// metrics as table rows, and the shell scripts — pruned-send.sh's replies and exit codes, and
// night-pause.sh pausing a group's running run and resuming it with --resume.
import Foundation
import PrunedJSON
import Testing
import TestSupport

/// The first executable `name` on PATH (then the usual system directories).
private func clientToolPath(_ name: String) -> String? {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") where !dir.isEmpty {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

private let clientPython = clientToolPath("python3")
private let clientSocat = clientToolPath("socat")
private let clientBash = clientToolPath("bash")
private let clientBinaryExists = FileManager.default.isExecutableFile(atPath: prunedBinary)
private let clientScriptsRunnable = clientBash != nil && clientSocat != nil && clientBinaryExists && haveFashionMNIST
/// Debian's python3: offline, its setuptools and wheel (python3-pip) build the client package
/// (clients/python/README.md); a venv of another python3 has no `wheel` to build with.
private let debianPython = "/usr/bin/python3"

/// In a venv, installs the client, submits two seeds of `spec` to a group, waits and prints
/// {"module": where pruned_client came from, "states", "rows": group_metrics(...)} as JSON.
private let venvScript = """
import json, sys
import pruned_client
from pruned_client import Client

socket_path, spec, group = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
with Client(socket_path) as c:
    ids = [c.submit(spec=dict(spec, seed=s), group=group)["id"] for s in (1, 2)]
    states = c.wait(ids, timeout=240, poll=0.2)
    rows = c.group_metrics(group, spec_fields=["pruning.target"])
print(json.dumps({"module": pruned_client.__file__, "states": states, "rows": rows}))
"""

/// Runs a program in `directory` to completion (killed after `limit` seconds); returns its status
/// and combined output.
private func runClientTool(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           limit: Double = 300, in directory: String = packageRoot) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.currentDirectoryURL = URL(fileURLWithPath: directory)
    var env = ProcessInfo.processInfo.environment
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let watchdog = DispatchWorkItem { if p.isRunning { p.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + limit, execute: watchdog)
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    watchdog.cancel()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A `pruned daemon` process of the real binary on a temporary state directory.
private final class ClientTestDaemon {
    let dir: String
    let socket: String
    let process = Process()

    init() throws {
        dir = makeTempDir("cst")
        socket = dir + "/s"
        FileManager.default.createFile(atPath: dir + "/daemon.log", contents: nil)
        let log = FileHandle(forWritingAtPath: dir + "/daemon.log")
        process.executableURL = URL(fileURLWithPath: prunedBinary)
        process.arguments = ["daemon", "--state-dir", dir + "/state", "--socket", socket, "--threads", "2"]
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let path = socket
        guard waitFor(20, { (try? TestClient(path)) != nil }) else {
            throw ClientError(description: "the daemon did not answer on \(socket): \(logText)")
        }
    }

    var logText: String { (try? String(contentsOfFile: dir + "/daemon.log", encoding: .utf8)) ?? "" }

    func stop() {
        if process.isRunning { process.terminate() }   // SIGTERM: checkpoint, exit
        let p = process
        if !waitFor(60, { !p.isRunning }) { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

@Suite(.serialized)
struct ClientScriptTests {
    @Test(.enabled(if: clientPython != nil && clientBinaryExists && haveFashionMNIST))
    func pythonClientSuite() throws {
        let (status, output) = try runClientTool(try #require(clientPython), ["-m", "unittest", "clients/python/test_pruned_client.py"],
                                                 environment: ["PRUNED_BIN": prunedBinary, "PRUNED_FASHION_MNIST": fashionMNIST])
        #expect(status == 0, "python3 -m unittest clients/python/test_pruned_client.py:\n\(output)")
        #expect(output.contains("\nOK"), "\(output)")
        #expect(!output.contains("skipped"), "tests were skipped:\n\(output)")
    }

    /// `pip install` of clients/python into a fresh venv without a package index (as
    /// clients/python/README.md says), then the installed module and its `pruned-client` command
    /// against a real daemon: a group's per-epoch metrics as flat rows for pandas.DataFrame.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: debianPython) && clientBinaryExists && haveFashionMNIST))
    func installedClientInAFreshVenv() throws {
        let dir = makeTempDir("venv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Build from a copy: the build leaves build/ and an egg-info next to the sources.
        let source = dir + "/src"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        for file in ["pyproject.toml", "README.md", "pruned_client.py"] {
            try FileManager.default.copyItem(atPath: packageRoot + "/clients/python/" + file, toPath: source + "/" + file)
        }
        let venv = dir + "/venv"
        var r = try runClientTool(debianPython, ["-m", "venv", "--system-site-packages", venv], in: dir)
        try #require(r.status == 0, "python3 -m venv (apt-get install python3-venv): \(r.output)")
        r = try runClientTool(venv + "/bin/pip", ["install", "--disable-pip-version-check", "--no-index", "--no-build-isolation",
                                                  "--no-input", source], in: dir)
        try #require(r.status == 0, "pip install (offline; needs python3-pip's setuptools and wheel): \(r.output)")

        let d = try ClientTestDaemon()
        defer { d.stop() }
        let pruning = #","pruning":{"score":"l2","target":"smallest","layers":[{"name":"features.conv3","fraction":0.25,"start":0,"end":1}]}"#
        let spec = tinySpec(epochs: 2, everySteps: 100, trainLimit: 256, extra: pruning)
        r = try runClientTool(venv + "/bin/python", ["-c", venvScript, d.socket, spec, "venv"], limit: 300, in: dir)
        try #require(r.status == 0, "\(r.output)\ndaemon log: \(d.logText)")
        let out = try JSON.parse(String(r.output.split(separator: "\n").last ?? ""))
        #expect(out["module"]?.stringValue?.hasPrefix(venv + "/lib/") == true, "imported from \(out["module"] ?? .null), not the venv")
        #expect(out["states"]?["r-0001"]?.stringValue == "completed" && out["states"]?["r-0002"]?.stringValue == "completed")
        let rows = out["rows"]?.arrayValue ?? []
        #expect(rows.map { $0["run"]?.stringValue ?? "" } == ["r-0001", "r-0001", "r-0002", "r-0002"])
        #expect(rows.map { $0["epoch"]?.intValue ?? 0 } == [1, 2, 1, 2])
        #expect(rows.map { $0["seed"]?.intValue ?? 0 } == [1, 1, 2, 2])
        for row in rows {
            #expect(row["group"]?.stringValue == "venv" && row["pruning.target"]?.stringValue == "smallest")
            #expect(row["test_acc"]?.doubleValue != nil && row["pre_test_acc"]?.doubleValue != nil && row["pruned.features.conv3"]?.intValue != nil)
            // Flat: every value a scalar, as a DataFrame column wants.
            if case .object(let pairs) = row {
                #expect(!pairs.contains { if case .object = $0.1 { return true }; if case .array = $0.1 { return true }; return false }, "\(row)")
            }
        }
        #expect(rows.filter { $0["prune_event.stability"]?.doubleValue != nil }.count == 4, "events at epochs 0 and 1 of both runs")
        // The command the package installs.
        r = try runClientTool(venv + "/bin/pruned-client", ["-s", d.socket, "ping"], limit: 60, in: dir)
        #expect(r.status == 0 && r.output.contains("\"pong\": true"), "\(r.output)")
    }

    @Test(.enabled(if: clientScriptsRunnable))
    func shellScriptsSendAndNightPause() throws {
        let d = try ClientTestDaemon()
        defer { d.stop() }
        let env = ["PRUNED_SOCKET": d.socket]
        let send = packageRoot + "/clients/shell/pruned-send.sh"
        let night = packageRoot + "/clients/shell/night-pause.sh"
        let bash = try #require(clientBash)
        func sh(_ script: String, _ args: String...) throws -> (status: Int32, output: String) {
            try runClientTool(bash, [script] + args, environment: env, limit: 120)
        }

        // pruned-send.sh: one reply per request, exit 1 on any ERR, 2 without a daemon.
        var r = try sh(send, "ping", "version")
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.hasPrefix("OK {\"pong\":true"), "\(r.output)")
        #expect(r.output.split(separator: "\n").count == 2, "\(r.output)")
        r = try sh(send, "ping", "show r-9999", "status")
        #expect(r.status == 1, "\(r.output)")
        #expect(r.output.split(separator: "\n").map { String($0.prefix(16)) } == ["OK {\"pong\":true,", "ERR NOT_FOUND no", "OK {\"daemon\":\"0."],
                "\(r.output)")
        r = try runClientTool(bash, [send, "-s", d.dir + "/no-such-socket", "ping"], limit: 30)
        #expect(r.status == 2, "\(r.output)")

        // A long real run in the group; a held run in another group stays untouched.
        let group = "night-\(UInt16.random(in: 0 ... .max))"
        r = try sh(send, "submit spec=\(tinySpec(epochs: 50, everySteps: 4)) group=\(group) tag=long",
                   "submit spec=\(tinySpec()) group=day hold=true")
        #expect(r.status == 0, "\(r.output)")
        // A run record has one shape: the short form of submit's "run" and of list nests the
        // progress as show does.
        #expect(r.output.contains(#""run":{"id":"r-0002","state":"held","#) && r.output.contains(#""progress":{"epochs_done":0,"epochs":2,"#),
                "\(r.output)")
        let listed = try sh(send, "list group=day")
        #expect(listed.status == 0 && listed.output.contains(#""progress":{"epochs_done":0,"epochs":2,"step":0,"steps_per_epoch":0,"#)
                && !listed.output.contains(#""model":"conv4","epochs_done""#), "\(listed.output)")
        let c = try TestClient(d.socket)
        let run = "r-0001"
        #expect(try waitFor(30) { try c.state(run) == "running" }, "daemon log: \(d.logText)")

        r = try sh(night, group)
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("pause \(run): paused"), "\(r.output)")
        #expect(try c.state(run) == "paused")
        #expect(try c.state("r-0002") == "held")
        r = try sh(night, group)   // nothing left running: a no-op
        #expect(r.status == 0 && r.output.contains("no running runs"), "\(r.output)")

        r = try sh(night, "--resume", group)
        #expect(r.status == 0, "\(r.output)")
        #expect(["running", "queued"].contains(try c.state(run)), "\(r.output)")
        #expect(try c.ok("show \(run)")["starts"]?.intValue == 2)
        r = try sh(night, "--resume", group)
        #expect(r.status == 0 && r.output.contains("no paused runs"), "\(r.output)")
        r = try sh(night, "bad group!")
        #expect(r.status == 2, "\(r.output)")

        r = try sh(send, "cancel \(run)", "cancel r-0002")
        #expect(r.status == 0, "\(r.output)")
        #expect(try c.state(run) == "cancelled")
        #expect(try c.state("r-0002") == "cancelled")
    }
}
