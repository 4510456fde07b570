// Strict reading of JSON objects into typed fields: every error names the dotted field path,
// what was expected and what was found; keys nobody asked for are rejected with the list of
// allowed keys, so a typo never silently falls back to a default.
import PrunedJSON

public struct SpecError: Error, CustomStringConvertible, Equatable {
    public let field: String
    public let message: String
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
    public var description: String { field.isEmpty ? "run spec: \(message)" : "run spec field '\(field)': \(message)" }
}

final class FieldReader {
    let path: String
    private let pairs: [(String, JSON)]
    private var allowed: [String] = []

    init(_ json: JSON, path: String) throws {
        guard case .object(let p) = json else {
            throw SpecError(field: path, message: "must be an object, got \(json.typeName)")
        }
        self.path = path
        pairs = p
    }

    func field(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    func raw(_ key: String) -> JSON? {
        if !allowed.contains(key) { allowed.append(key) }
        guard let v = pairs.first(where: { $0.0 == key })?.1 else { return nil }
        if case .null = v { return nil }
        return v
    }

    func has(_ key: String) -> Bool { pairs.contains { $0.0 == key } }

    func double(_ key: String, default d: Double? = nil, _ check: ((Double) -> Bool)? = nil, _ rule: String = "") throws -> Double {
        guard let v = raw(key) else {
            if let d { return d }
            throw SpecError(field: field(key), message: "is required (a number\(rule.isEmpty ? "" : ", " + rule))")
        }
        guard let x = v.doubleValue else { throw SpecError(field: field(key), message: "must be a number, got \(v.typeName)") }
        if let check, !check(x) { throw SpecError(field: field(key), message: "must be \(rule), got \(JSON.format(x))") }
        return x
    }

    func int(_ key: String, default d: Int? = nil, _ check: ((Int) -> Bool)? = nil, _ rule: String = "") throws -> Int {
        guard let v = raw(key) else {
            if let d { return d }
            throw SpecError(field: field(key), message: "is required (an integer\(rule.isEmpty ? "" : ", " + rule))")
        }
        guard let x = v.intValue else {
            // A whole number too large for an exact integer (|x| ≥ 9e15) is out of range, not a fraction.
            if let d = v.doubleValue, d.rounded() == d, !rule.isEmpty {
                throw SpecError(field: field(key), message: "must be \(rule), got \(JSON.format(d))")
            }
            throw SpecError(field: field(key), message: "must be an integer, got \(v.doubleValue.map(JSON.format) ?? v.typeName)")
        }
        if let check, !check(x) { throw SpecError(field: field(key), message: "must be \(rule), got \(x)") }
        return x
    }

    func optionalInt(_ key: String, _ check: @escaping (Int) -> Bool, _ rule: String) throws -> Int? {
        guard raw(key) != nil else { return nil }
        return try int(key, check, rule)
    }

    func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let v = raw(key) else { return d }
        guard let b = v.boolValue else { throw SpecError(field: field(key), message: "must be true or false, got \(v.typeName)") }
        return b
    }

    func string(_ key: String, default d: String? = nil) throws -> String {
        guard let v = raw(key) else {
            if let d { return d }
            throw SpecError(field: field(key), message: "is required (a string)")
        }
        guard let s = v.stringValue else { throw SpecError(field: field(key), message: "must be a string, got \(v.typeName)") }
        return s
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type, default d: T? = nil) throws -> T where T.RawValue == String {
        let allowedValues = T.allCases.map(\.rawValue).joined(separator: ", ")
        guard raw(key) != nil else {
            if let d { return d }
            throw SpecError(field: field(key), message: "is required (one of: \(allowedValues))")
        }
        let s = try string(key)
        guard let v = T(rawValue: s) else {
            throw SpecError(field: field(key), message: "unknown value \"\(s)\"; allowed: \(allowedValues)")
        }
        return v
    }

    func intArray(_ key: String, default d: [Int], maxCount: Int, _ check: (Int) -> Bool, _ rule: String) throws -> [Int] {
        guard let v = raw(key) else { return d }
        guard let items = v.arrayValue else { throw SpecError(field: field(key), message: "must be an array of integers, got \(v.typeName)") }
        guard items.count <= maxCount else {
            throw SpecError(field: field(key), message: "has \(items.count) entries; at most \(maxCount)")
        }
        return try items.enumerated().map { i, item in
            guard let x = item.intValue else {
                if let d = item.doubleValue, d.rounded() == d {
                    throw SpecError(field: "\(field(key))[\(i)]", message: "must be \(rule), got \(JSON.format(d))")
                }
                throw SpecError(field: "\(field(key))[\(i)]", message: "must be an integer, got \(item.doubleValue.map(JSON.format) ?? item.typeName)")
            }
            guard check(x) else { throw SpecError(field: "\(field(key))[\(i)]", message: "must be \(rule), got \(x)") }
            return x
        }
    }

    func object(_ key: String) throws -> FieldReader? {
        guard let v = raw(key) else { return nil }
        return try FieldReader(v, path: field(key))
    }

    func objects(_ key: String) throws -> [FieldReader]? {
        guard let v = raw(key) else { return nil }
        guard let items = v.arrayValue else { throw SpecError(field: field(key), message: "must be an array of objects, got \(v.typeName)") }
        return try items.enumerated().map { try FieldReader($1, path: "\(field(key))[\($0)]") }
    }

    /// Rejects keys that were never asked for.
    func finish() throws {
        for (k, _) in pairs where !allowed.contains(k) {
            throw SpecError(field: field(k), message: "unknown key; allowed keys here: \(allowed.joined(separator: ", "))")
        }
    }
}
