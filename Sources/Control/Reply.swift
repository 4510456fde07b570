// The control protocol's reply lines. Every line the daemon sends starts with one marker:
//   HELLO {json}   once, on connect        OK {json}   success of one request
//   ERR CODE text  failure of one request  EVENT {json} only on subscribed connections
import PrunedJSON

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

public enum Reply: Equatable, Sendable {
    case hello(JSON)
    case ok(JSON)
    case error(ProtocolError)
    case event(JSON)

    /// One line, without the terminating newline. Messages never contain a newline.
    public var rendered: String {
        switch self {
        case .hello(let j): return "HELLO " + j.rendered
        case .ok(let j): return "OK " + j.rendered
        case .event(let j): return "EVENT " + j.rendered
        case .error(let e):
            let text = String(e.message.unicodeScalars.map { $0.value < 0x20 ? " " : Character($0) })
            return "ERR " + e.code.rawValue + (text.isEmpty ? "" : " " + text)
        }
    }

    /// Parses a reply line (clients). Unknown error codes are reported as `.internal` with the
    /// original code kept in the message.
    public static func parse(_ line: String) throws -> Reply {
        var s = Substring(line)
        if s.hasSuffix("\r") { s = s.dropLast() }
        let marker = s.prefix { $0 != " " }
        let rest = s.dropFirst(marker.count).drop { $0 == " " }
        func payload() throws -> JSON {
            do { return try JSON.parse(String(rest)) } catch { throw ProtocolError(.internal, "malformed \(marker) payload: \(error)") }
        }
        switch marker {
        case "HELLO": return .hello(try payload())
        case "OK": return .ok(rest.isEmpty ? .object([]) : try payload())
        case "EVENT": return .event(try payload())
        case "ERR":
            let code = rest.prefix { $0 != " " }
            let message = String(rest.dropFirst(code.count).drop { $0 == " " })
            if let c = ErrorCode(rawValue: String(code)) { return .error(ProtocolError(c, message)) }
            return .error(ProtocolError(.internal, "\(code) \(message)"))
        default:
            throw ProtocolError(.internal, "not a protocol reply: \(line.prefix(80))")
        }
    }
}

/// Protocol constants shared by the daemon and its clients.
public enum ProtocolInfo {
    /// Bumped only for incompatible changes; fields are only ever added within a version.
    public static let version = 1
    /// The version of pruned itself (daemon, `pruned`, `prunectl`): the one place it is written.
    public static let softwareVersion = "0.1.0"
    public static let defaultMaxLineBytes = 65_536
    /// Tags of one run (`tag=` in one `submit`, `set` or `fork`).
    public static let maxTags = 64
    /// Spec overrides (`PATH=VALUE`) in one `submit`, `set` or `fork`.
    public static let maxOverrides = 64
    /// Dot-separated segments of one override path (`pruning.layers.0.fraction` has 4).
    public static let maxOverrideSegments = 8
    /// Bytes of one override path.
    public static let maxOverridePathBytes = 256
    /// Nesting of arrays and objects in one override's value (`pruning.layers=[{…}]` is 2).
    /// An inline `spec={…}` may nest up to `JSON.maxDepth` (64) levels.
    public static let maxOverrideValueDepth = 16
}
