// Failed requests: the stable error codes (the first word after `ERR`) with their meanings,
// and the error a request is answered with.

/// Stable error codes: the first word after `ERR`. Clients branch on these, never on the text.
public enum ErrorCode: String, CaseIterable, Sendable, Error {
    case unknownCommand = "UNKNOWN_COMMAND"
    case badArgument = "BAD_ARGUMENT"
    case badSpec = "BAD_SPEC"
    case notFound = "NOT_FOUND"
    case badState = "BAD_STATE"
    case permissionDenied = "PERMISSION_DENIED"
    case lineTooLong = "LINE_TOO_LONG"
    case badEncoding = "BAD_ENCODING"
    case busy = "BUSY"
    case shuttingDown = "SHUTTING_DOWN"
    case storage = "STORAGE"
    case timeout = "TIMEOUT"
    case `internal` = "INTERNAL"

    public var meaning: String {
        switch self {
        case .unknownCommand: return "the first word is not a command"
        case .badArgument: return "an argument is missing, unknown or malformed; nothing was changed"
        case .badSpec: return "the run spec (preset, inline spec or overrides) is invalid; the message names the field"
        case .notFound: return "no such run, preset or checkpoint"
        case .badState: return "the run's state does not allow this (e.g. pause a queued run)"
        case .permissionDenied: return "only the run's owner, root or the admin group may change it"
        case .lineTooLong: return "the request exceeded the maximum line length; the connection is closed"
        case .badEncoding: return "the request is not valid UTF-8 or contains control characters"
        case .busy: return "too many connections; the connection is closed"
        case .shuttingDown: return "the daemon is stopping and accepts no new work"
        case .storage: return "the daemon could not make the change durable (disk full, I/O error); nothing was changed"
        case .timeout: return "the connection was idle longer than the idle timeout; it is closed (subscribers are exempt)"
        case .internal: return "a bug; the message says what failed"
        }
    }
}

/// A request that is answered with an error reply.
public struct ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue) \(message)" }
}
