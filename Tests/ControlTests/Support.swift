// Shared helpers for the control-protocol tests: compact builders for requests and JSON, and
// a small seeded generator so the randomised tests are deterministic.
@testable import Control
import PrunedJSON
import Results
import Testing

/// Builds `RunEdits` in one expression (tables stay one row per line).
func edits(preset: String? = nil, spec: JSON? = nil, _ overrides: [(String, JSON)] = [], group: String? = nil,
           tags: [String]? = nil, priority: Int? = nil, hold: Bool? = nil) -> RunEdits {
    var e = RunEdits()
    e.preset = preset
    e.spec = spec
    e.overrides = overrides.map { Override($0.0, $0.1) }
    e.group = group
    e.tags = tags
    e.priority = priority
    e.hold = hold
    return e
}

func filter(states: [RunState] = [], group: String? = nil, tag: String? = nil, owner: String? = nil) -> ListFilter {
    var f = ListFilter()
    f.states = states
    f.group = group
    f.tag = tag
    f.owner = owner
    return f
}

func id(_ n: Int) -> RunID { RunID(n) }

func obj(_ pairs: (String, JSON)...) -> JSON { .object(pairs) }

/// The error code `Request.parse` throws for a line, nil if it accepts it. Any other error
/// type is recorded as an issue: the parser must only ever throw `ProtocolError`.
func parseErrorCode(_ line: String) -> ErrorCode? {
    do {
        _ = try Request.parse(line)
        return nil
    } catch let e as ProtocolError {
        return e.code
    } catch {
        Issue.record("Request.parse threw a non-ProtocolError \(type(of: error)): \(error) for \(String(reflecting: line))")
        return nil
    }
}

/// The seeded SplitMix64 of Results: the same test inputs on every platform and run.
typealias SeededGenerator = SplitMix64
