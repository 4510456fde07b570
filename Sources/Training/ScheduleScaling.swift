// Scaling a run's schedule to another number of epochs while keeping the experiment's shape
// (issue 13). The shape is five properties of the original schedule, checked by
// `ScheduleScaling.lost(original:scaled:)`:
//   order      the order (and ties) of the layers' first events and of their last events;
//   distinct   two events on distinct epochs in the original stay on distinct epochs;
//   events     every layer keeps its number of pruning events;
//   tail       every layer's recovery tail (epochs from its last event to the end of training)
//              is at least the original's in proportion, rounded down, and ≥ 1 when it was;
//   milestones the LR milestones stay in order, inside the run, and every event keeps its LR
//              phase (the number of milestones at or before it), so milestones stay after the
//              events they followed and at or before the ones they preceded;
//   sequence   every event stays before every event that came later in the original (the
//              layers' events stay interleaved as they were), the lowest priority.
// The scaler searches the scaled periods and starts for a schedule that keeps all five, in
// that order of priority, nearest to the proportional one. When the shorter run has no room,
// the schedule is still produced (never refused: a short exploratory run is legitimate) and
// every lost property is named in a note, together with the smallest epoch count that keeps
// the whole shape; the notes go to the command's output, the run's log and spec.json
// ("scaling": {"from_epochs", "notes"}).
import Engine
import Foundation

/// Where a spec came from when its schedule was scaled: the original epoch count and what the
/// scaling could not keep (empty when the shape was kept). Carried in spec.json as "scaling".
public struct ScalingRecord: Sendable, Equatable {
    public var fromEpochs: Int
    public var notes: [String]
    public init(fromEpochs: Int, notes: [String]) {
        self.fromEpochs = fromEpochs
        self.notes = notes
    }
}

public enum ScheduleScaling {
    public enum Property: String, CaseIterable, Sendable { case order, distinct, events, tail, milestones, sequence }

    /// A property the scaled schedule lost, with what exactly differs.
    public struct Loss: Sendable, Equatable, CustomStringConvertible {
        public let property: Property
        public let detail: String
        public var description: String { "\(property.rawValue): \(detail)" }
    }

    /// Above this many original events the search is skipped (proportional scaling, then the
    /// same check): only hand-written specs get there, never a preset.
    static let searchLimit = 4000

    // MARK: the check

    /// The properties `scaled` loses against `original` (see the file comment). Layers are
    /// paired by position.
    public static func lost(original: RunSpec, scaled: RunSpec) -> [Loss] {
        var out: [Loss] = []
        let T = original.epochs, N = scaled.epochs
        let ol = original.pruning?.layers ?? [], sl = scaled.pruning?.layers ?? []
        let origMilestones = original.milestones.filter { $0 < T }
        if zip(scaled.milestones, scaled.milestones.dropFirst()).contains(where: { $0 >= $1 })
            || scaled.milestones.contains(where: { $0 >= N }) || scaled.milestones.count != origMilestones.count {
            out.append(Loss(property: .milestones, detail: "\(origMilestones.count) milestones \(origMilestones) became \(scaled.milestones)"))
        }
        guard ol.count == sl.count, !ol.isEmpty else { return out }
        let oe = ol.map(\.events), se = sl.map(\.events)
        func sign(_ a: Int, _ b: Int) -> Int { a < b ? -1 : (a > b ? 1 : 0) }
        var orderBroken: [String] = []
        for i in ol.indices {
            for j in ol.indices where j > i {
                if let a = oe[i].first, let b = oe[j].first, let c = se[i].first, let d = se[j].first, sign(a, b) != sign(c, d) {
                    orderBroken.append("first events of \(ol[i].name) and \(ol[j].name) (\(a), \(b) → \(c), \(d))")
                }
                if let a = oe[i].last, let b = oe[j].last, let c = se[i].last, let d = se[j].last, sign(a, b) != sign(c, d) {
                    orderBroken.append("last events of \(ol[i].name) and \(ol[j].name) (\(a), \(b) → \(c), \(d))")
                }
            }
        }
        if let first = orderBroken.first {
            out.append(Loss(property: .order, detail: first + (orderBroken.count > 1 ? " and \(orderBroken.count - 1) more" : "")))
        }
        // Scaled events sharing an epoch must come from events sharing one in the original.
        var seen: [Int: (orig: Int, layer: Int)] = [:]
        var merged: [String] = []
        for (l, events) in se.enumerated() {
            for (k, e) in events.enumerated() where k < oe[l].count {
                if let prior = seen[e], prior.orig != oe[l][k] {
                    merged.append("\(ol[prior.layer].name)@\(prior.orig) and \(ol[l].name)@\(oe[l][k]) both at epoch \(e)")
                } else if seen[e] == nil {
                    seen[e] = (oe[l][k], l)
                }
            }
        }
        if let first = merged.first {
            out.append(Loss(property: .distinct, detail: first + (merged.count > 1 ? " and \(merged.count - 1) more merged events" : "")))
        }
        for l in ol.indices where se[l].count != oe[l].count {
            out.append(Loss(property: .events, detail: "\(ol[l].name): \(se[l].count) pruning events instead of \(oe[l].count)"))
        }
        for l in ol.indices {
            guard let last = oe[l].last, let scaledLast = se[l].last else { continue }
            let need = minimumTail(T - last, from: T, to: N)
            if N - scaledLast < need {
                out.append(Loss(property: .tail, detail: "\(ol[l].name): \(N - scaledLast) epochs after its last event, "
                                + "\(need) needed (\(T - last) of \(T) in the original)"))
            }
        }
        // Grouped by original epoch, in order: each group's scaled events all before the next's.
        var byOrig: [Int: (lo: Int, hi: Int)] = [:]
        for (l, events) in se.enumerated() {
            for (k, e) in events.enumerated() where k < oe[l].count {
                let o = oe[l][k]
                byOrig[o] = byOrig[o].map { (min($0.lo, e), max($0.hi, e)) } ?? (e, e)
            }
        }
        let keys = byOrig.keys.sorted()
        if let i = keys.indices.dropLast().first(where: { (byOrig[keys[$0]]?.hi ?? 0) >= (byOrig[keys[$0 + 1]]?.lo ?? 0) }) {
            let a = keys[i], b = keys[i + 1]
            out.append(Loss(property: .sequence, detail: "events at \(a) and \(b) in the original are no longer in that order "
                            + "(the layers' events are not interleaved as in the original)"))
        }
        if !out.contains(where: { $0.property == .milestones }) {
            for l in ol.indices {
                for (k, e) in se[l].enumerated() where k < oe[l].count {
                    let before = origMilestones.filter { $0 <= oe[l][k] }.count
                    let after = scaled.milestones.filter { $0 <= e }.count
                    if before != after {
                        out.append(Loss(property: .milestones, detail: "\(ol[l].name)'s event at \(oe[l][k]) follows \(before) LR milestones "
                                        + "in the original, its scaled event at \(e) follows \(after)"))
                        return out
                    }
                }
            }
        }
        return out
    }

    /// The tail a layer must keep: the original's in proportion, rounded down, at least 1 when
    /// the original had one.
    public static func minimumTail(_ tail: Int, from T: Int, to N: Int) -> Int {
        guard tail > 0, T > 0 else { return 0 }
        let proportional = Int((Double(min(tail, T)) * Double(N) / Double(T)).rounded(.down))
        return max(1, proportional)
    }

    // MARK: the scaler

    /// `spec` with its schedule scaled to `epochs`, and a note per lost property (empty when
    /// the whole shape is kept). The same epoch count returns the spec unchanged.
    public static func scale(_ spec: RunSpec, toEpochs epochs: Int) -> (RunSpec, [String]) {
        guard epochs != spec.epochs, epochs >= 1, spec.epochs >= 1 else { return (spec, []) }
        let s = build(spec, epochs)
        let losses = lost(original: spec, scaled: s)
        if losses.isEmpty { return (s, []) }
        var notes = losses.map(\.description)
        if epochs < spec.epochs {
            if let n = smallestKeepingShape(spec, above: epochs) {
                notes.append("the whole shape needs at least \(n) epochs")
            } else {
                notes.append("no shorter run keeps the whole shape (only the original \(spec.epochs) epochs)")
            }
        }
        return (s, notes)
    }

    /// The smallest epoch count above `epochs` (and below the original) whose scaled schedule
    /// keeps every property, or nil.
    public static func smallestKeepingShape(_ spec: RunSpec, above epochs: Int) -> Int? {
        let total = (spec.pruning?.layers ?? []).reduce(0) { $0 + $1.events.count }
        guard total <= searchLimit, epochs + 1 < spec.epochs else { return nil }
        for n in (epochs + 1) ..< spec.epochs where lost(original: spec, scaled: build(spec, n)).isEmpty { return n }
        return nil
    }

    /// The best scaled schedule: fewest lost properties by priority, then nearest proportional.
    static func build(_ spec: RunSpec, _ N: Int) -> RunSpec {
        var s = spec
        s.epochs = N
        let T = spec.epochs
        let f = Double(N) / Double(T)
        guard let plan = spec.pruning, !plan.layers.isEmpty else {
            s.milestones = placeMilestones(spec, N, events: [])
            return s
        }
        let total = plan.layers.reduce(0) { $0 + $1.events.count }
        let pref = plan.layers.map(\.period).max() ?? 1
        let ideal = max(1, Int(min((Double(pref) * f).rounded(), Double(N))))
        var candidates: Set<Int> = [ideal]
        if total <= searchLimit {
            let hi = min(N, ideal + plan.layers.count + 2)
            if hi <= 400 {
                for q in 1 ... max(1, hi) { candidates.insert(q) }
            } else {
                for d in -64 ... 64 where ideal + d >= 1 && ideal + d <= N { candidates.insert(ideal + d) }
                var q = ideal
                while q > 1 { q /= 2; candidates.insert(max(q, 1)) }
            }
        }
        var best: (key: [Int], cost: Double, spec: RunSpec)?
        for q in candidates.sorted() {
            for keepTail in total <= searchLimit ? [true, false] : [false] {
                var c = s
                var p = plan
                p.layers = placeLayers(plan.layers, T: T, N: N, q: q, pref: pref, keepTail: keepTail, search: total <= searchLimit)
                c.pruning = p
                c.milestones = placeMilestones(spec, N, events: zip(plan.layers, p.layers).map { ($0.events, $1.events) })
                let losses = lost(original: spec, scaled: c)
                // Lost event counts weigh by the events lost, not the layers losing some.
                let eventsLost = zip(plan.layers, p.layers).reduce(0) { $0 + max(0, $1.0.events.count - $1.1.events.count) }
                let key = Property.allCases.map { prop in prop == .events ? eventsLost : losses.filter { $0.property == prop }.count }
                let cost = Double(abs(q - ideal)) + zip(plan.layers, p.layers).reduce(0.0) { $0 + abs(Double($1.1.start) - Double($1.0.start) * f) }
                if let b = best, !(key.lexicographicallyPrecedes(b.key) || (key == b.key && cost < b.cost)) { continue }
                best = (key, cost, c)
            }
        }
        return best?.spec ?? s
    }

    /// Layers with period ≈ q·period/pref, starts in the original order (ties kept), shifted
    /// later where an event would land on another layer's event, and as many events as fit
    /// before `N − tail` (keepTail) or before the end of training.
    static func placeLayers(_ layers: [LayerPlan], T: Int, N: Int, q: Int, pref: Int, keepTail: Bool, search: Bool) -> [LayerPlan] {
        let f = Double(N) / Double(T)
        var out = layers
        var taken: [Int: Int] = [:]    // scaled epoch → original epoch of the event there
        let order = layers.indices.sorted { (layers[$0].start, $0) < (layers[$1].start, $1) }
        var previous: (orig: Int, scaled: Int)?
        for i in order {
            let l = layers[i]
            let events = l.events
            let n = events.count
            let period = max(1, Int(min((Double(l.period) * Double(q) / Double(max(pref, 1))).rounded(), Double(N))))
            let floor = l.start == 0 ? 0 : min(1, N - 1)
            var start = min(max(Int(min((Double(l.start) * f).rounded(), Double(N))), floor), N - 1)
            if let p = previous {
                if p.orig == l.start { start = p.scaled } else { start = min(max(start, p.scaled + 1), N - 1) }
            }
            let lastOrig = events.last ?? l.start
            let limit = keepTail ? max(start, N - minimumTail(T - lastOrig, from: T, to: N)) : N - 1
            func count(_ s: Int) -> Int { s > limit ? 1 : min(n, (limit - s) / period + 1) }
            func collides(_ s: Int) -> Bool {
                for k in 0 ..< count(s) {
                    if let o = taken[s + k * period], o != events[k] { return true }
                }
                return false
            }
            if search && !(previous?.orig == l.start) {
                var s = start
                while s < N - 1 && collides(s) && s - start < 2 * period + layers.count { s += 1 }
                if !collides(s) { start = s }
            }
            let c = count(start)
            for k in 0 ..< c where taken[start + k * period] == nil { taken[start + k * period] = events[k] }
            out[i] = LayerPlan(name: l.name, fraction: l.fraction, start: start, end: start + (c - 1) * period, period: period)
            previous = (l.start, start)
        }
        return out
    }

    /// Milestones scaled by the factor, then moved into the gap between the scaled events that
    /// keeps every event's LR phase where there is such a gap.
    static func placeMilestones(_ spec: RunSpec, _ N: Int, events: [([Int], [Int])]) -> [Int] {
        let T = spec.epochs
        let f = Double(N) / Double(T)
        var out: [Int] = []
        for m in spec.milestones where m < T {
            var low = max(1, (out.last ?? 0) + 1), high = N - 1
            for (orig, scaled) in events {
                for (k, e) in scaled.enumerated() where k < orig.count {
                    if orig[k] < m { low = max(low, e + 1) } else { high = min(high, e) }
                }
            }
            let target = Int(min((Double(m) * f).rounded(), Double(N)))
            let placed = low <= high ? min(max(target, low), high) : min(max(target, (out.last ?? 0) + 1), N - 1)
            if placed >= 1 && N > placed && placed > (out.last ?? 0) { out.append(placed) }
        }
        return out
    }
}
