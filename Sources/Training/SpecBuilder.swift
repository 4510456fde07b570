// The one way a run spec is built from where it comes from (a preset, or a spec's JSON) and
// overrides of its fields: the daemon's submit, set and fork, `pruned run` (its flags are
// overrides) and `pruned schedule` all build here, then read the result with RunSpec(json:).
import PrunedJSON

/// Where a spec comes from, or an override of it, is wrong (the spec's own fields are checked
/// by RunSpec and fail with a SpecError).
public struct SpecSourceError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No preset of that name.
        case unknownPreset
        /// Neither a preset nor a spec was given.
        case noSource
        /// An override cannot be applied (a path into a non-object, an array index out of
        /// range, a preset's epoch count out of range).
        case badOverride
    }

    public let kind: Kind
    public let message: String
    public var description: String { message }
}

public enum SpecBuilder {
    /// A field of the spec to set: a dotted path (numeric segments index arrays) and its value.
    public typealias Override = (path: String, value: JSON)

    /// The spec JSON a preset or a spec's JSON (`base`) makes with `overrides` applied in
    /// order, before the spec is read and validated. A preset's `epochs` override scales its
    /// schedule keeping its shape (ScheduleScaling.swift); `notes` then says what of the shape
    /// the scaling could not keep. A preset's spec is named after it.
    public static func compose(base: JSON?, preset: String?, overrides: [Override]) throws -> (json: JSON, notes: [String]) {
        var json: JSON
        var notes: [String] = []
        var rest = overrides
        if let preset {
            guard let p = Presets.named(preset) else {
                throw SpecSourceError(kind: .unknownPreset, message: "no preset '\(preset.prefix(60))'; `pruned presets` lists them")
            }
            var s = p.spec
            if let i = rest.firstIndex(where: { $0.path == "epochs" }) {
                guard let n = rest[i].value.intValue, (1 ... RunSpec.maxEpochs).contains(n) else {
                    throw SpecSourceError(kind: .badOverride, message: "run spec field 'epochs': must be an integer in 1…\(RunSpec.maxEpochs)")
                }
                (s, notes) = Presets.scale(s, toEpochs: n)
                rest.remove(at: i)
            }
            s.name = s.name.isEmpty ? preset : s.name
            json = s.json
        } else if let base {
            json = base
        } else {
            throw SpecSourceError(kind: .noSource, message: "name a preset or give spec={...}")
        }
        for o in rest { json = try set(json, path: o.path, to: o.value) }
        return (json, notes)
    }

    /// `json` with `value` at the dotted `path`, objects created on the way; numeric segments
    /// index arrays.
    public static func set(_ json: JSON, path: String, to value: JSON) throws -> JSON {
        try set(json, path.split(separator: ".").map(String.init)[...], value, full: path)
    }

    static func set(_ json: JSON, _ path: ArraySlice<String>, _ value: JSON, full: String) throws -> JSON {
        guard let key = path.first else { return value }
        let rest = path.dropFirst()
        switch json {
        case .object(var pairs):
            if let i = pairs.firstIndex(where: { $0.0 == key }) {
                pairs[i].1 = try set(pairs[i].1, rest, value, full: full)
            } else {
                pairs.append((key, try set(.object([]), rest, value, full: full)))
            }
            return .object(pairs)
        case .array(var items):
            guard key.utf8.allSatisfy({ (48 ... 57).contains($0) }), let i = Int(key), items.indices.contains(i) else {
                throw SpecSourceError(kind: .badOverride, message: "override \(full): '\(key)' is not an index of the array"
                                      + (items.isEmpty ? " (it is empty)" : " (0…\(items.count - 1))"))
            }
            items[i] = try set(items[i], rest, value, full: full)
            return .array(items)
        default:
            throw SpecSourceError(kind: .badOverride, message: "override \(full): '\(key)' goes inside \(json.typeName)")
        }
    }
}
