// The engine's share of a checkpoint: parameters and BatchNorm buffers under their dotted
// names, optimizer moments and step, pruner state (bit-packed masks, schedule progress, noise
// counters and saved values) and activation-score averages. Restoring checks every tensor
// against the live model first and only then writes anything.
import Engine
import Foundation
import PrunedJSON

public enum ModelState {
    /// Adds the model, optimizer and pruner state to `s` and returns its metadata.
    public static func capture(network: Network, optimizer: Optimizer, pruner: Pruner?, into s: inout Snapshot) -> JSON {
        let store = network.store
        s.reserve(bytes: s.payload.count + 4 * (3 * store.parameterCount + store.bufferCount) + (1 << 20))
        for slot in store.parameters { s.add(slot.name, f32: store.value(slot), count: slot.count, shape: slot.shape) }
        for slot in store.buffers { s.add(slot.name, f32: store.stateValue(slot), count: slot.count, shape: slot.shape) }
        s.add("optimizer.moment1", f32: optimizer.moment1.ptr, count: optimizer.moment1Count(store))
        if case .adam = optimizer.kind { s.add("optimizer.moment2", f32: optimizer.moment2.ptr, count: store.parameterCount) }
        for b in blocks(network) {
            guard let a = b.activationScores else { continue }
            s.add("activations.\(b.name).conv1", f64: a.conv1)
            s.add("activations.\(b.name).conv2", f64: a.conv2)
            s.add("activations.\(b.name).training_forwards", i64: [Int64(b.trainingForwards)])
        }
        var meta: [(String, JSON)] = [
            ("architecture", .string(network.architecture.rawValue)), ("parameters", .number(Double(store.parameterCount))),
            ("optimizer", .string(optimizer.kindName)), ("optimizer_step", .number(Double(optimizer.step))),
        ]
        if let p = pruner {
            for (l, layer) in p.layers.enumerated() {
                s.add("pruner.mask.\(layer.name)", u8: pack(p.kept[l]), shape: [(p.kept[l].count + 7) / 8])
                s.add("pruner.newly_targeted.\(layer.name)", i64: p.newlyTargeted[l].map(Int64.init))
                s.add("pruner.saved.\(layer.name)", f32: p.saved[l])
            }
            s.add("pruner.events_done", i64: p.eventsDone.map(Int64.init))
            s.add("pruner.noise_counter", i64: p.noiseCounter.map(Int64.init))
            s.add("pruner.noise_event_epoch", i64: p.noiseEventEpoch.map(Int64.init))
            meta.append(("pruner", .object([
                ("layers", .array(p.layers.map { .string($0.name) })),
                ("units", .array(p.kept.map { .number(Double($0.count)) })),
            ])))
        }
        return .object(meta)
    }

    /// Checks `s` against the live model and returns the action that restores it. Nothing is
    /// modified until the returned closure runs.
    /// `fork`: the run continues under a different spec, so a dense checkpoint may start a run
    /// that prunes (its pruner starts fresh) and a pruned one may continue without pruning.
    public static func prepareRestore(_ s: Snapshot, network: Network, optimizer: Optimizer, pruner: Pruner?,
                                      fork: Bool = false) throws -> () -> Void {
        let store = network.store
        var actions: [() -> Void] = []
        for slot in store.parameters {
            let e = try s.require(slot.name, .f32, shape: slot.shape)
            actions.append { s.copy(e, into: store.value(slot)) }
        }
        for slot in store.buffers {
            let e = try s.require(slot.name, .f32, shape: slot.shape)
            actions.append { s.copy(e, into: store.stateValue(slot)) }
        }
        let m1 = try s.require("optimizer.moment1", .f32, shape: [optimizer.moment1Count(store)])
        actions.append { s.copy(m1, into: optimizer.moment1.ptr) }
        if case .adam = optimizer.kind {
            let m2 = try s.require("optimizer.moment2", .f32, shape: [store.parameterCount])
            actions.append { s.copy(m2, into: optimizer.moment2.ptr) }
        } else if s.entry("optimizer.moment2") != nil {
            throw CheckpointError.stateMismatch("the checkpoint holds Adam state, the run uses SGD")
        }
        let meta = s.metadata["model"]
        guard let arch = meta?["architecture"]?.stringValue, arch == network.architecture.rawValue else {
            throw CheckpointError.stateMismatch("architecture \(meta?["architecture"]?.stringValue ?? "?") in the checkpoint, \(network.architecture.rawValue) in the run")
        }
        guard let step = meta?["optimizer_step"]?.intValue, step >= 0, step < 1 << 53 else {
            throw CheckpointError.corruptMetadata("model.optimizer_step missing or out of range")
        }
        actions.append { optimizer.restore(step: step) }
        for b in blocks(network) where b.activationScores != nil {
            let c1 = try s.f64("activations.\(b.name).conv1", shape: [b.conv1.outChannels])
            let c2 = try s.f64("activations.\(b.name).conv2", shape: [b.conv2.outChannels])
            let n = try s.i64("activations.\(b.name).training_forwards", shape: [1])
            guard n[0] >= 0 && n[0] < 1 << 53 else { throw CheckpointError.stateMismatch("activations.\(b.name).training_forwards out of range") }
            actions.append { b.restoreActivationScores(conv1: c1, conv2: c2, trainingForwards: Int(n[0])) }
        }
        let hasPruningState = s.entry("pruner.events_done") != nil
        if let p = pruner, hasPruningState || !fork {
            let count = p.layers.count
            var kept: [[Bool]] = [], targeted: [[Int]] = [], saved: [[Float]] = []
            for (l, layer) in p.layers.enumerated() {
                let units = p.kept[l].count
                let bits = try s.u8("pruner.mask.\(layer.name)", shape: [(units + 7) / 8])
                kept.append(unpack(bits, units))
                let t = try s.i64("pruner.newly_targeted.\(layer.name)").map { Int($0) }
                guard t.allSatisfy({ $0 >= 0 && $0 < units }) else { throw CheckpointError.stateMismatch("pruner.newly_targeted.\(layer.name) out of range") }
                targeted.append(t)
                saved.append(try s.f32("pruner.saved.\(layer.name)"))
            }
            let done = try s.i64("pruner.events_done", shape: [count]).map { Int($0) }
            let counter = try s.i64("pruner.noise_counter", shape: [count]).map { Int($0) }
            let epochs = try s.i64("pruner.noise_event_epoch", shape: [count]).map { Int($0) }
            // Counters feed unsigned random-stream keys and are incremented: keep them in range.
            guard done.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }), counter.allSatisfy({ $0 >= 0 }), epochs.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }) else {
                throw CheckpointError.stateMismatch("pruner counters out of range")
            }
            actions.append {
                p.restore(kept: kept, eventsDone: done, noiseCounter: counter, newlyTargeted: targeted, noiseEventEpoch: epochs, saved: saved)
            }
        } else if hasPruningState && !fork {
            throw CheckpointError.stateMismatch("the checkpoint holds pruning state, the run has no pruning section")
        }
        return { for a in actions { a() } }
    }

    static func blocks(_ n: Network) -> [BasicBlock] { n.layers.compactMap { $0 as? BasicBlock } }

    public static func pack(_ bits: [Bool]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: (bits.count + 7) / 8)
        for (i, b) in bits.enumerated() where b { out[i >> 3] |= 1 << UInt8(i & 7) }
        return out
    }

    public static func unpack(_ bytes: [UInt8], _ n: Int) -> [Bool] {
        (0 ..< n).map { bytes[$0 >> 3] & (1 << UInt8($0 & 7)) != 0 }
    }
}

extension Optimizer {
    var kindName: String { if case .adam = kind { return "adam" }; return "sgd" }
    func moment1Count(_ store: ParameterStore) -> Int { store.parameterCount }
}

/// Where and how a checkpoint was made (informational; resume notes a different build).
public enum Provenance {
    /// Set by the executable (version string); tests leave the default.
    nonisolated(unsafe) public static var buildName = "pruned"

    /// The build: name plus the running executable's size and modification time.
    public static let buildID: String = {
        var st = stat()
        guard stat("/proc/self/exe", &st) == 0 else { return buildName }
        return "\(buildName)+\(st.st_size)-\(st.st_mtim.tv_sec)"
    }()

    public static let cpuModel: String = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") { return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
        }
        return "unknown"
    }()

    public static func json(threads: Int) -> JSON {
        .object([("format_version", .number(Double(CheckpointFile.version))), ("build_id", .string(buildID)),
                 ("threads", .number(Double(threads))), ("cpu", .string(cpuModel))])
    }
}
