// Reading the fields of an OK payload with their types checked, for the typed replies (RunInfo,
// DaemonStatus, the payloads in ReplyPayloads.swift). A payload that lacks a field the protocol
// promises, or has one of another type, is an INTERNAL ProtocolError naming the field. Keys
// the reader does not ask for are ignored: within a protocol version payloads only gain keys
// (docs/PROTOCOL.md, Compatibility).
import PrunedJSON

struct PayloadReader {
    let json: JSON
    /// What is being read, for messages ("run record", "status reply").
    let what: String

    init(_ json: JSON, _ what: String) throws {
        guard case .object = json else {
            throw ProtocolError(.internal, "malformed \(what): expected a JSON object, got \(json.typeName)")
        }
        self.json = json
        self.what = what
    }

    func has(_ key: String) -> Bool { json[key] != nil }

    func malformed(_ key: String, _ expected: String) -> ProtocolError {
        ProtocolError(.internal, "malformed \(what): '\(key)' is not \(expected)")
    }

    /// nil when `key` is absent or null; an error when it is there but `convert` refuses it.
    func optional<T>(_ key: String, _ expected: String, _ convert: (JSON) -> T?) throws -> T? {
        guard let v = json[key], v != .null else { return nil }
        guard let t = convert(v) else { throw malformed(key, expected) }
        return t
    }

    func required<T>(_ key: String, _ expected: String, _ convert: (JSON) -> T?) throws -> T {
        guard let t = try optional(key, expected, convert) else {
            throw ProtocolError(.internal, "malformed \(what): '\(key)' is missing")
        }
        return t
    }

    func string(_ key: String) throws -> String { try required(key, "a string", \.stringValue) }
    func optionalString(_ key: String) throws -> String? { try optional(key, "a string", \.stringValue) }
    func int(_ key: String) throws -> Int { try required(key, "an integer", \.intValue) }
    func optionalInt(_ key: String) throws -> Int? { try optional(key, "an integer", \.intValue) }
    func double(_ key: String) throws -> Double { try required(key, "a number", \.doubleValue) }
    func optionalDouble(_ key: String) throws -> Double? { try optional(key, "a number", \.doubleValue) }
    func bool(_ key: String) throws -> Bool { try required(key, "a boolean", \.boolValue) }
    func optionalBool(_ key: String) throws -> Bool? { try optional(key, "a boolean", \.boolValue) }
    func uid(_ key: String) throws -> UInt32 { try required(key, "a uid", PayloadReader.uid) }
    func optionalUID(_ key: String) throws -> UInt32? { try optional(key, "a uid", PayloadReader.uid) }
    func runID(_ key: String) throws -> RunID { try required(key, "a run id", { $0.stringValue.flatMap(RunID.init) }) }
    func state(_ key: String) throws -> RunState {
        try required(key, "a run state", { $0.stringValue.flatMap(RunState.init(rawValue:)) })
    }
    func strings(_ key: String) throws -> [String] {
        try required(key, "an array of strings", { v in
            guard let items = v.arrayValue else { return nil }
            let strings = items.compactMap(\.stringValue)
            return strings.count == items.count ? strings : nil
        })
    }
    func array(_ key: String) throws -> [JSON] { try required(key, "an array", \.arrayValue) }
    /// Any JSON value but null (absent: missing).
    func value(_ key: String) throws -> JSON { try required(key, "a value", { $0 }) }

    static func uid(_ v: JSON) -> UInt32? { v.intValue.flatMap { UInt32(exactly: $0) } }
}
