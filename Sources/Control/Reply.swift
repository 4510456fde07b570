// The control protocol's reply lines. Every line the daemon sends starts with one marker:
//   HELLO {json}   once, on connect        OK {json}   success of one request
//   ERR CODE text  failure of one request  EVENT {json} only on subscribed connections
import PrunedJSON

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
