// Shape-preserving scaling (issue 13): every preset scaled to a range of epoch counts keeps
// every property of its schedule's shape or carries a note naming the property lost. The
// properties are checked here by functions of their own over the scaled spec, written from the
// definitions, not from the scaler's code.
import Engine
import Foundation
import PrunedJSON
import Testing
import Training

@Suite struct ScalingTests {
    static func events(_ l: LayerPlan) -> [Int] {
        var out: [Int] = []
        var e = l.start
        while e <= l.end { out.append(e); e += l.period }
        return out
    }

    /// First events in the same order (ties kept), and last events likewise.
    static func keepsOrder(_ o: RunSpec, _ s: RunSpec) -> Bool {
        let a = o.pruning?.layers ?? [], b = s.pruning?.layers ?? []
        for i in a.indices {
            for j in a.indices where i < j {
                let ea = events(a[i]), eb = events(a[j]), fa = events(b[i]), fb = events(b[j])
                if (ea[0] < eb[0]) != (fa[0] < fb[0]) || (ea[0] == eb[0]) != (fa[0] == fb[0]) { return false }
                let la = ea[ea.count - 1], lb = eb[eb.count - 1], ma = fa[fa.count - 1], mb = fb[fb.count - 1]
                if (la < lb) != (ma < mb) || (la == lb) != (ma == mb) { return false }
            }
        }
        return true
    }

    /// No two events on distinct original epochs share a scaled epoch.
    static func keepsDistinct(_ o: RunSpec, _ s: RunSpec) -> Bool {
        let a = o.pruning?.layers ?? [], b = s.pruning?.layers ?? []
        var pairs: [(orig: Int, scaled: Int)] = []
        for i in a.indices { for (x, y) in zip(events(a[i]), events(b[i])) { pairs.append((x, y)) } }
        for p in pairs { for q in pairs where p.scaled == q.scaled && p.orig != q.orig { return false } }
        return true
    }

    static func keepsEventCounts(_ o: RunSpec, _ s: RunSpec) -> Bool {
        zip(o.pruning?.layers ?? [], s.pruning?.layers ?? []).allSatisfy { events($0).count == events($1).count }
    }

    /// Each layer's epochs after its last event at least the original's share, rounded down (≥ 1).
    static func keepsTail(_ o: RunSpec, _ s: RunSpec) -> Bool {
        zip(o.pruning?.layers ?? [], s.pruning?.layers ?? []).allSatisfy { a, b in
            let tail = o.epochs - (events(a).last ?? 0)
            let need = tail == 0 ? 0 : max(1, tail * s.epochs / o.epochs)
            return s.epochs - (events(b).last ?? 0) >= need
        }
    }

    /// Milestones increasing, inside the run, as many as the original had inside it, and each
    /// event preceded by as many milestones as in the original.
    static func keepsMilestones(_ o: RunSpec, _ s: RunSpec) -> Bool {
        let inside = o.milestones.filter { $0 < o.epochs }
        guard s.milestones.count == inside.count, s.milestones.allSatisfy({ $0 >= 1 && $0 < s.epochs }),
              s.milestones == s.milestones.sorted(), Set(s.milestones).count == s.milestones.count else { return false }
        for (a, b) in zip(o.pruning?.layers ?? [], s.pruning?.layers ?? []) {
            for (x, y) in zip(events(a), events(b)) where inside.filter({ $0 <= x }).count != s.milestones.filter({ $0 <= y }).count {
                return false
            }
        }
        return true
    }

    /// Any two events in order in the original keep that order.
    static func keepsSequence(_ o: RunSpec, _ s: RunSpec) -> Bool {
        let a = o.pruning?.layers ?? [], b = s.pruning?.layers ?? []
        var pairs: [(orig: Int, scaled: Int)] = []
        for i in a.indices { for (x, y) in zip(events(a[i]), events(b[i])) { pairs.append((x, y)) } }
        for p in pairs { for q in pairs where p.orig < q.orig && !(p.scaled < q.scaled) { return false } }
        return true
    }

    static let checks: [(String, (RunSpec, RunSpec) -> Bool)] = [
        ("order", keepsOrder), ("distinct", keepsDistinct), ("events", keepsEventCounts), ("tail", keepsTail),
        ("milestones", keepsMilestones), ("sequence", keepsSequence),
    ]

    @Test(arguments: [8, 16, 24, 40, 65, 100, 325])
    func everyPresetKeepsItsShapeOrSaysWhatItLost(_ epochs: Int) throws {
        for p in Presets.all {
            let (s, notes) = Presets.scale(p.spec, toEpochs: epochs)
            #expect(s.epochs == epochs)
            try s.validateAgainstModel(classes: p.spec.data.kind.classes)
            if epochs == p.spec.epochs { #expect(s == p.spec && notes.isEmpty, "\(p.name): not the identity") }
            for (property, keeps) in Self.checks where !keeps(p.spec, s) {
                #expect(notes.contains { $0.hasPrefix(property + ":") }, "\(p.name) at \(epochs): lost \(property) without a note: \(notes)")
            }
            // Every note names a property really lost (no false alarms) or the epoch count needed.
            for n in notes {
                if let (_, keeps) = Self.checks.first(where: { n.hasPrefix($0.0 + ":") }) {
                    #expect(!keeps(p.spec, s), "\(p.name) at \(epochs): note '\(n)' but the property holds")
                } else {
                    #expect(n.contains("epochs"), "\(p.name) at \(epochs): unexpected note '\(n)'")
                }
            }
            // The notes travel with the spec (spec.json) and survive its round trip.
            #expect(s.scaling == (epochs == p.spec.epochs ? nil : ScalingRecord(fromEpochs: p.spec.epochs, notes: notes)))
            #expect(try RunSpec(json: JSON.parse(s.json.rendered)) == s)
        }
    }

    /// The defect of issue 13: F2_VGG_4 at 24 epochs pruned conv5–8 all at epoch 1, at 100
    /// epochs at 1, 1, 2, 2. Staggered starts now stay staggered.
    @Test func theVGGStartsStayStaggered() throws {
        let f2 = try #require(Presets.named("F2_VGG_4")?.spec)
        for epochs in [24, 65, 100] {
            let (s, notes) = Presets.scale(f2, toEpochs: epochs)
            let starts = try #require(s.pruning?.layers.map(\.start))
            #expect(starts == starts.sorted() && Set(starts).count == 4, "\(epochs): \(starts)")
            #expect(Self.keepsOrder(f2, s) && Self.keepsDistinct(f2, s), "\(epochs): \(String(describing: s.pruning?.layers))")
            if epochs >= 65 { #expect(notes.isEmpty, "\(epochs): \(notes)") }
        }
    }

    /// A note names the smallest epoch count that keeps the whole shape, and that count does.
    @Test func aShortRunNamesTheEpochsItNeeds() throws {
        let f2 = try #require(Presets.named("F2_VGG_4")?.spec)
        let (_, notes) = Presets.scale(f2, toEpochs: 8)
        let last = try #require(notes.last)
        #expect(last.hasPrefix("the whole shape needs at least "), "\(notes)")
        let n = try #require(Int(last.split(separator: " ")[6]))
        let (s, kept) = Presets.scale(f2, toEpochs: n)
        #expect(kept.isEmpty && Self.checks.allSatisfy { $0.1(f2, s) })
        let (_, short) = Presets.scale(f2, toEpochs: n - 1)
        #expect(!short.isEmpty)
    }

    /// The notes reach spec.json.
    @Test func notesReachSpecJSON() throws {
        let (s, notes) = Presets.scale(try #require(Presets.named("F2_VGG_4")?.spec), toEpochs: 8)
        #expect(!notes.isEmpty)
        let json = s.json.rendered
        #expect(json.contains("\"scaling\"") && json.contains("from_epochs"))
    }
}
