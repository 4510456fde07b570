// `pruned bench --preset NAME`: the throughput benchmark (Bench.swift) of a preset's model in
// two states, `dense` (as initialised, nothing pruned) and `final` (every pruning event of the
// preset's schedule applied at initialisation, so the model runs with the final pruned channel
// counts, compacted). Rows carry `state` and `mac_fraction`, the executed forward multiply-adds
// relative to the dense model's. Both states are measured in the same process one after the
// other, so on a shared machine their ratio is the number to read.
import Engine
import Foundation

extension Benchmark {
    /// The preset's network (its architecture, width, classes and seed) with every pruning
    /// event of its schedule performed, in order, on the initial weights.
    public static func finalState(of preset: Preset) throws -> (Network, Pruner?) {
        let spec = preset.spec
        let classes = spec.data.kind == .cifar100 ? 100 : 10
        let net = ModelFactory.make(spec.architecture, classes: classes, width: spec.width, seed: spec.seed)
        guard let plan = spec.pruning else { return (net, nil) }
        let pruner = try Pruner(plan: plan, network: net, seed: spec.seed, epochs: spec.epochs)
        let optimizer = Optimizer(kind: spec.optimizer.engineKind, parameterCount: net.parameterCount)
        for epoch in 0 ..< spec.epochs where pruner.hasEvent(at: epoch) {
            _ = pruner.prune(epoch: epoch, optimizer: optimizer)
        }
        return (net, pruner)
    }

    /// Dense and final-state rows for `preset` (train and eval each), dense first.
    public static func runPreset(_ preset: Preset, threads: Int, batch: Int, evalBatch: Int, repetitions: Int,
                                 convolution: ConvAlgorithm = .automatic, profile: Bool,
                                 log: (String) -> Void) throws -> [BenchResult] {
        let spec = preset.spec
        let (final, pruner) = try finalState(of: preset)
        let dense = ModelFactory.make(spec.architecture, classes: final.classes, width: spec.width, seed: spec.seed)
        let denseMACs = Double(dense.forwardMACs())
        var rows: [BenchResult] = []
        for (state, net) in [("dense", dense), ("final", final)] {
            if profile { log("state \(state):") }
            var results = run(architecture: spec.architecture, network: net, threads: threads, batch: batch, evalBatch: evalBatch,
                              repetitions: repetitions, convolution: convolution, profile: profile, log: log)
            for i in results.indices {
                results[i].preset = preset.name
                results[i].state = state
                results[i].macFraction = Double(net.executedForwardMACs()) / max(denseMACs, 1)
            }
            rows += results
        }
        withExtendedLifetime(pruner) {}
        return rows
    }
}
