// The daemon's own failures (state directory, socket, ledger, systemd): a message for the log
// or the command line. Failures of a request are ProtocolErrors instead.

public struct DaemonError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
