// Temporary directories for tests. The paths are short (directly under /tmp) because daemon
// tests put Unix sockets inside them, and a socket path has at most 107 bytes.
import Foundation

/// A fresh path /tmp/pdt-TAG-N that does not exist yet (N random).
public func temporaryPath(_ tag: String) -> String {
    "/tmp/pdt-\(tag)-\(UInt32.random(in: 0 ... .max))"
}

/// A new empty directory /tmp/pdt-TAG-N; the caller removes it.
public func makeTempDir(_ tag: String) -> String {
    let path = temporaryPath(tag)
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
