// The one place a `sockaddr_un` is filled in: the daemon's bind and probe, the clients'
// connect and the tests' sockets all go through `UnixSocketAddress.withAddress`.
import Foundation

/// The `sockaddr_un` for a path, shared by the daemon's bind and the clients' connect.
public enum UnixSocketAddress {
    /// The longest path a `sockaddr_un` holds (with its terminating NUL).
    public static let maxPathBytes = 107

    /// Calls `body` with the address of `path` and its length; -1 with errno ENAMETOOLONG when the
    /// path does not fit (callers check the length first, to give a better message).
    public static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        let bytes = Array(path.utf8)
        guard bytes.count <= maxPathBytes else {
            errno = ENAMETOOLONG
            return -1
        }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
