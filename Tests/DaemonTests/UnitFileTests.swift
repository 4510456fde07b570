// The systemd units as shipped: `make check-units` generates them for a temporary install
// prefix and runs `systemd-analyze verify` on the system and user units (any message fails).
import Foundation
import Testing
import TestSupport

@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")
                && FileManager.default.isExecutableFile(atPath: "/usr/bin/make")))
struct UnitFileTests {
    @Test func unitsVerify() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/make")
        p.arguments = ["-s", "-C", packageRoot, "check-units"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "make check-units: \(out)")
        for unit in ["pruned.service", "pruned.socket"] {
            let text = try String(contentsOfFile: packageRoot + "/systemd/" + (unit == "pruned.service" ? "pruned.service.in" : unit), encoding: .utf8)
            #expect(!text.isEmpty)
        }
        let service = try String(contentsOfFile: packageRoot + "/systemd/pruned.service.in", encoding: .utf8)
        for key in ["Type=notify", "WatchdogSec=", "StateDirectory=pruned", "RuntimeDirectory=pruned", "TimeoutStopSec=",
                    "ProtectSystem=strict", "NoNewPrivileges=yes", "RestrictAddressFamilies=AF_UNIX", "CapabilityBoundingSet="] {
            #expect(service.contains(key), "pruned.service lacks \(key)")
        }
        let socket = try String(contentsOfFile: packageRoot + "/systemd/pruned.socket", encoding: .utf8)
        for key in ["ListenStream=/run/pruned/control.sock", "SocketMode=0660", "SocketGroup=pruned", "FileDescriptorName=control"] {
            #expect(socket.contains(key), "pruned.socket lacks \(key)")
        }
    }
}
