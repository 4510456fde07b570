// Configurations: runs that differ only in their seed (and name) are repeats of one
// configuration. Runs are grouped by their canonical spec without "seed", "name" and
// "checkpoint" (checkpoint cadence does not change what a run computes); everything else,
// including dataset.train_limit / test_limit, separates configurations. Each configuration gets
// a short label built from the spec fields that differ between the configurations present.
import PrunedJSON

/// The runs of one configuration.
public struct Configuration: Sendable {
    /// Canonical text of the stripped spec (object keys sorted), equal for all its runs.
    public var key: String
    /// The spec without the ignored keys.
    public var spec: JSON
    /// e.g. "pruning.target=smallest, pruning.period=4"; "all" when it is the only configuration.
    public var label: String
    /// Its runs, ordered by seed, then id.
    public var runs: [RunResult]

    /// Iterative pruning rate (% per event) of the configuration; nil without pruning.
    public var iterativeRate: Double? { IterativeRate.percent(spec: spec) }
}

public enum Configurations {
    /// Top-level spec keys that do not distinguish configurations.
    public static let ignoredKeys: Set<String> = ["seed", "name", "checkpoint"]

    /// The spec without the ignored top-level keys.
    public static func strip(_ spec: JSON) -> JSON {
        guard case .object(let pairs) = spec else { return spec }
        return .object(pairs.filter { !ignoredKeys.contains($0.0) })
    }

    /// Canonical grouping key: the stripped spec rendered with object keys sorted.
    public static func key(_ spec: JSON) -> String { sortedKeys(strip(spec)).rendered }

    /// Groups runs into configurations, labelled, in a stable order that does not depend on the
    /// order of `runs`: by the differing fields' values, field by field (absent first, numbers
    /// numerically, otherwise as text).
    public static func group(_ runs: [RunResult]) -> [Configuration] {
        var byKey: [String: [RunResult]] = [:]
        var specs: [String: JSON] = [:]
        for r in runs {
            let k = key(r.spec)
            byKey[k, default: []].append(r)
            if specs[k] == nil { specs[k] = strip(r.spec) }
        }
        let keys = byKey.keys.sorted()
        let ordered = order(keys.map { specs[$0]! })
        let labels = label(ordered.map { specs[keys[$0]]! })
        return ordered.enumerated().map { position, i in
            let k = keys[i]
            let members = byKey[k]!.sorted {
                let a = $0.spec["seed"]?.doubleValue ?? 0, b = $1.spec["seed"]?.doubleValue ?? 0
                return a != b ? a < b : $0.id < $1.id
            }
            return Configuration(key: k, spec: specs[k]!, label: labels[position], runs: members)
        }
    }

    /// One label per spec (ignored keys are stripped first), from the fields that differ between
    /// the distinct specs given, in spec order, joined with ", ":
    /// - a field with at least two different values among the specs that have it: "path=value";
    /// - a section missing from a spec: "section=none" once (e.g. "pruning=none" for an unpruned
    ///   baseline); a field that only differs by being absent elsewhere is not repeated in the
    ///   labels of the specs that have it, unless the label would otherwise be empty.
    /// Equal specs get equal labels; "all" when there is only one distinct spec.
    public static func label(_ specs: [JSON]) -> [String] {
        let flat = specs.map { fields(strip($0)) }
        let distinctMaps = distinctByKey(specs).map { Dictionary(fields(strip($0)), uniquingKeysWith: { a, _ in a }) }
        let paths = differingPaths(distinctByKey(specs).map { fields(strip($0)) })
        if paths.isEmpty { return specs.map { _ in "all" } }
        let informative = Set(paths.filter { p in Set(distinctMaps.compactMap { $0[p] }).count >= 2 })
        return flat.map { f in
            let values = Dictionary(f, uniquingKeysWith: { a, _ in a })
            var parts: [String] = []
            for p in paths {
                if let v = values[p] {
                    if informative.contains(p) { parts.append("\(p)=\(v)") }
                    continue
                }
                // Absent: name the outermost missing section once.
                let comps = p.split(separator: ".").map(String.init)
                var missing = p
                for n in 1 ... comps.count {
                    let prefix = comps[0 ..< n].joined(separator: ".")
                    if !f.contains(where: { $0.0 == prefix || $0.0.hasPrefix(prefix + ".") }) { missing = prefix; break }
                }
                let part = "\(missing)=none"
                if !parts.contains(part) { parts.append(part) }
            }
            if parts.isEmpty { parts = paths.compactMap { p in values[p].map { "\(p)=\($0)" } } }
            return parts.joined(separator: ", ")
        }
    }

    /// Dotted leaf paths and their display values. An array of objects (e.g. pruning.layers) is
    /// folded field-wise: a field equal in every element appears once under the parent's path
    /// (pruning.layers[].period = 4 for all layers reads "pruning.period=4"), a field that varies
    /// appears as the list of its values ("pruning.start=[3,4,5,6]"); if the parent has its own
    /// key of that name the path is "parent.array[].field". Other arrays are values: "[150,300]".
    public static func fields(_ spec: JSON) -> [(String, String)] {
        var out: [(String, String)] = []
        flatten(spec, prefix: "", into: &out)
        return out
    }

    // MARK: internals

    static func flatten(_ json: JSON, prefix: String, into out: inout [(String, String)]) {
        func join(_ p: String, _ k: String) -> String { p.isEmpty ? k : p + "." + k }
        guard case .object(let pairs) = json else { out.append((prefix, display(json))); return }
        if pairs.isEmpty { out.append((prefix, "{}")); return }
        let own = Set(pairs.map(\.0))
        for (k, v) in pairs {
            if case .array(let items) = v, !items.isEmpty, items.allSatisfy({ if case .object = $0 { return true }; return false }) {
                var fieldNames: [String] = []
                for item in items {
                    if case .object(let ps) = item { for (f, _) in ps where !fieldNames.contains(f) { fieldNames.append(f) } }
                }
                for f in fieldNames {
                    let values = items.map { $0[f] ?? .null }
                    let path = own.contains(f) ? join(prefix, k + "[]." + f) : join(prefix, f)
                    if values.allSatisfy({ $0 == values[0] }) { flatten(values[0], prefix: path, into: &out) }
                    else { out.append((path, display(.array(values)))) }
                }
            } else {
                flatten(v, prefix: join(prefix, k), into: &out)
            }
        }
    }

    /// Strings bare, numbers in shortest form, arrays as [a,b] with bare strings.
    static func display(_ json: JSON) -> String {
        switch json {
        case .string(let s): return s
        case .number(let d): return JSON.format(d)
        case .array(let items): return "[" + items.map(display).joined(separator: ",") + "]"
        default: return sortedKeys(json).rendered
        }
    }

    static func sortedKeys(_ json: JSON) -> JSON {
        switch json {
        case .object(let pairs): return .object(pairs.sorted { $0.0 < $1.0 }.map { ($0.0, sortedKeys($0.1)) })
        case .array(let items): return .array(items.map(sortedKeys))
        default: return json
        }
    }

    static func distinctByKey(_ specs: [JSON]) -> [JSON] {
        var seen: [String: JSON] = [:]
        for s in specs { let k = key(s); if seen[k] == nil { seen[k] = s } }
        return seen.keys.sorted().map { seen[$0]! }
    }

    /// Paths whose value (or presence) is not the same in all the flattened specs, in order of
    /// first appearance.
    static func differingPaths(_ flats: [[(String, String)]]) -> [String] {
        var order: [String] = []
        var seen = Set<String>()
        for f in flats { for (p, _) in f where !seen.contains(p) { seen.insert(p); order.append(p) } }
        let maps = flats.map { Dictionary($0, uniquingKeysWith: { a, _ in a }) }
        return order.filter { p in
            let first = maps.first?[p]
            return maps.contains { $0[p] != first }
        }
    }

    /// Indices of `specs` (stripped, distinct) sorted by their differing fields' values.
    static func order(_ specs: [JSON]) -> [Int] {
        let flats = specs.map { fields($0) }
        let paths = differingPaths(flats)
        let maps = flats.map { Dictionary($0, uniquingKeysWith: { a, _ in a }) }
        func less(_ a: String?, _ b: String?) -> Bool? {
            switch (a, b) {
            case (nil, nil): return nil
            case (nil, _): return true
            case (_, nil): return false
            case let (x?, y?):
                if x == y { return nil }
                if let dx = Double(x), let dy = Double(y), dx != dy { return dx < dy }
                return x < y
            }
        }
        return specs.indices.sorted { i, j in
            for p in paths { if let r = less(maps[i][p], maps[j][p]) { return r } }
            return i < j
        }
    }
}
