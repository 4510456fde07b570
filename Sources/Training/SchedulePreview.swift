// What a run will do before it runs (`pruned schedule`, `submit dry_run=true`): per epoch the
// learning rate and, per layer, the units pruned and left at each event (or, with noise, the
// units targeted and the noise window), plus per-layer totals. Built from the trainer's own
// pieces: the spec's MultiStepSchedule for the LR, a Pruner over the spec's model for the
// layers (forward order, unit counts, validation) and PruneSchedule.toPrune — the function
// Pruner.prune calls — for the amounts.
import Engine
import Foundation
import PrunedJSON

public struct SchedulePreview: Sendable {
    public struct Event: Sendable, Equatable {
        public var layer: String
        public var pruned: Int
        public var left: Int
    }

    public struct Epoch: Sendable, Equatable {
        /// 0-based, as the spec's start/end (metrics.jsonl's epoch N is this N − 1).
        public var epoch: Int
        public var lr: Double
        public var events: [Event]
    }

    public struct Layer: Sendable, Equatable {
        public var name: String
        public var units: Int
        public var events: [Int]
        public var pruned: Int
        public var left: Int
        /// Epochs trained after the last event (the recovery tail).
        public var tail: Int
    }

    public var epochs: [Epoch]
    public var layers: [Layer]
    public var noise: NoisePlan?
    public var scaling: ScalingRecord?
    public var granularity: PruneGranularity?

    /// Throws the spec's own errors (SpecError) when the plan does not fit the model.
    public init(spec: RunSpec) throws {
        scaling = spec.scaling
        noise = spec.pruning?.noise
        granularity = spec.pruning?.granularity
        var byEpoch: [Int: [Event]] = [:]
        layers = []
        if let plan = spec.pruning {
            let net = ModelFactory.make(spec.architecture, classes: spec.data.kind.classes, width: spec.width, seed: spec.seed)
            let pruner: Pruner
            do { pruner = try Pruner(plan: plan, network: net, seed: spec.seed, epochs: spec.epochs) } catch let e as PruningPlanError {
                throw SpecError(e)
            }
            for (l, lp) in pruner.plans.enumerated() {
                let units = pruner.kept[l].count
                let events = lp.events
                var done = 0
                for (i, e) in events.enumerated() {
                    let k = PruneSchedule.toPrune(event: i + 1, of: events.count, units: units, fraction: lp.fraction, already: done)
                    guard k > 0 else { continue }
                    done += k
                    byEpoch[e, default: []].append(Event(layer: lp.name, pruned: k, left: units - done))
                }
                layers.append(Layer(name: lp.name, units: units, events: events, pruned: done, left: units - done,
                                    tail: spec.epochs - (events.last ?? spec.epochs)))
            }
        }
        epochs = (0 ..< spec.epochs).map { e in Epoch(epoch: e, lr: spec.schedule.rate(afterSteps: e), events: byEpoch[e] ?? []) }
    }

    static func lr(_ d: Double) -> String { String(format: "%g", d) }

    /// Text: the epochs where something happens (the LR changes or a layer has an event; runs of
    /// quiet epochs in one line), then the totals per layer.
    public func text() -> String {
        var out: [String] = []
        if let s = scaling {
            out.append("scaled from \(s.fromEpochs) to \(epochs.count) epochs" + (s.notes.isEmpty ? ": shape kept" : ""))
            for n in s.notes { out.append("  note: \(n)") }
        }
        let unit = granularity == .unstructured ? "weights" : "units"
        if let n = noise {
            out.append("noise instead of masking: \(n.mode.rawValue) \(n.kind.rawValue), \(n.batches) batches after each event"
                       + (n.restore ? ", BatchNorm restored" : "") + " (the targeted \(unit) are zeroed at the end)")
        }
        out.append("epoch (0-based)  lr        events (layer -pruned → left)")
        var i = 0
        while i < epochs.count {
            let e = epochs[i]
            if e.events.isEmpty {
                var j = i
                while j + 1 < epochs.count && epochs[j + 1].events.isEmpty && epochs[j + 1].lr == e.lr { j += 1 }
                let span = j == i ? "\(e.epoch)" : "\(e.epoch)–\(epochs[j].epoch)"
                out.append(span.padding(toLength: 17, withPad: " ", startingAt: 0) + Self.lr(e.lr).padding(toLength: 10, withPad: " ", startingAt: 0)
                           + "—")
                i = j + 1
                continue
            }
            let verb = noise == nil ? "-" : "noise "
            out.append("\(e.epoch)".padding(toLength: 17, withPad: " ", startingAt: 0) + Self.lr(e.lr).padding(toLength: 10, withPad: " ", startingAt: 0)
                       + e.events.map { "\($0.layer) \(verb)\($0.pruned) → \($0.left)" }.joined(separator: ", "))
            i += 1
        }
        if !layers.isEmpty {
            out.append("")
            out.append("layer".padding(toLength: 18, withPad: " ", startingAt: 0) + "\(unit)  events  first  last  pruned  left  tail (epochs)")
            for l in layers {
                out.append(l.name.padding(toLength: 18, withPad: " ", startingAt: 0)
                           + String(format: "%5d  %6d  %5d  %4d  %6d  %4d  %4d", l.units, l.events.count, l.events.first ?? 0,
                                    l.events.last ?? 0, l.pruned, l.left, l.tail))
            }
            let units = layers.reduce(0) { $0 + $1.units }, pruned = layers.reduce(0) { $0 + $1.pruned }
            out.append("total".padding(toLength: 18, withPad: " ", startingAt: 0)
                       + String(format: "%5d  %6d  %5@  %4@  %6d  %4d", units, layers.reduce(0) { $0 + $1.events.count }, "" as NSString, "" as NSString,
                                pruned, units - pruned))
        } else {
            out.append("no pruning")
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// JSON: {epochs: [{epoch, lr, events: [{layer, pruned, left}]}], layers: [{name, units,
    /// events, pruned, left, tail}], totals: {units, pruned, left, events}, noise, scaling}.
    public var json: JSON {
        let units = layers.reduce(0) { $0 + $1.units }, pruned = layers.reduce(0) { $0 + $1.pruned }
        func n(_ i: Int) -> JSON { .number(Double(i)) }
        return .object([
            ("epochs", .array(epochs.map { e in
                .object([("epoch", n(e.epoch)), ("lr", .number(e.lr)),
                         ("events", .array(e.events.map { .object([("layer", .string($0.layer)), ("pruned", n($0.pruned)), ("left", n($0.left))]) }))])
            })),
            ("layers", .array(layers.map { l in
                .object([("name", .string(l.name)), ("units", n(l.units)), ("events", .array(l.events.map(n))), ("pruned", n(l.pruned)),
                         ("left", n(l.left)), ("tail", n(l.tail))])
            })),
            ("totals", .object([("units", n(units)), ("pruned", n(pruned)), ("left", n(units - pruned)),
                                ("events", n(layers.reduce(0) { $0 + $1.events.count }))])),
            ("noise", noise.map { p in .object([("mode", .string(p.mode.rawValue)), ("kind", .string(p.kind.rawValue)),
                                                 ("batches", n(p.batches)), ("restore", .bool(p.restore))]) } ?? .null),
            ("scaling", scaling.map { s in .object([("from_epochs", n(s.fromEpochs)), ("notes", .array(s.notes.map { .string($0) }))]) } ?? .null),
        ])
    }
}
