// systemd glue on the real libsystemd: readiness/status/watchdog notifications (sd_notify) and
// socket activation (sd_listen_fds_with_names). Every call is harmless without systemd, so
// tests run it for real. The journal is written by Logger.
import CSystemd
import Foundation

public enum Notify {
    /// Sends `KEY=VALUE` lines to $NOTIFY_SOCKET; false when there is none (or it failed).
    @discardableResult
    public static func send(_ state: String) -> Bool {
        state.withCString { sd_notify(0, $0) } > 0
    }

    /// The watchdog interval systemd expects pings within (WATCHDOG_USEC for this PID), or nil.
    public static func watchdogInterval() -> Double? {
        var usec: UInt64 = 0
        return sd_watchdog_enabled(0, &usec) > 0 && usec > 0 ? Double(usec) / 1e6 : nil
    }
}

public enum SocketActivation {
    /// The listening socket passed by systemd (LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES): the fd
    /// named `control`, else the only one. Throws when fds were passed but none fits.
    public static func listeningSocket() throws -> Int32? {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let n = sd_listen_fds_with_names(1, &names)
        guard n > 0 else { return nil }
        var chosen: Int32?
        var seen: [String] = []
        for i in 0..<Int(n) {
            let fd = SD_LISTEN_FDS_START + Int32(i)
            let name = names?[i].map { String(cString: $0) } ?? "unknown"
            seen.append(name)
            if name == "control" || (n == 1 && chosen == nil) { chosen = fd }
            names?[i].map { free($0) }
        }
        free(names)
        guard let fd = chosen else { throw DaemonError("systemd passed \(n) sockets (\(seen.joined(separator: ", "))) but none is named 'control'") }
        guard sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
            throw DaemonError("the socket systemd passed (fd \(fd)) is not a listening Unix stream socket")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }
}
