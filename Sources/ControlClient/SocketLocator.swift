// Where a client looks for the daemon's socket when it is not told (prunectl, the benchmark).
import Foundation

/// Where the daemon's socket is: $PRUNED_SOCKET, else the systemd path when it exists, else the
/// user-mode path ($XDG_RUNTIME_DIR/pruned/control.sock), else /tmp/pruned-UID/control.sock.
/// ControlConnection checks the chosen path's directory (SocketDirectory) before connecting.
public enum SocketLocator {
    public static let systemPath = "/run/pruned/control.sock"

    public static func defaultPath(environment env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let p = env["PRUNED_SOCKET"], !p.isEmpty { return p }
        if FileManager.default.fileExists(atPath: systemPath) { return systemPath }
        if let r = env["XDG_RUNTIME_DIR"], !r.isEmpty {
            let p = r + "/pruned/control.sock"
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        let tmp = "/tmp/pruned-\(getuid())/control.sock"
        if FileManager.default.fileExists(atPath: tmp) { return tmp }
        return env["XDG_RUNTIME_DIR"].map { $0 + "/pruned/control.sock" } ?? tmp
    }
}
