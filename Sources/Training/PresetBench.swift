// `pruned bench --preset NAME`: the throughput benchmark (Bench.swift) of a preset's model in
// two states, `dense` (as initialised, nothing pruned) and `final` (every pruning event of the
// preset's schedule applied at initialisation, so the model runs with the final pruned channel
// counts, compacted). Rows carry `state`, `mac_fraction` (the executed forward multiply-adds
// relative to the dense model's) and `cpu_seconds_per_batch`. Both states are measured in the
// same process, alternately, so on a shared machine their ratio is the number to read; the
// ratio of CPU times is the steadier one there (with one thread it excludes waiting for a core).
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

    /// Dense and final-state rows for `preset` (train and eval each), dense first. The two
    /// states are measured alternately `rounds` times; each row is the round with the median
    /// time (CPU time: the median over rounds), so a burst of load on a shared machine falls
    /// on both states alike.
    public static func runPreset(_ preset: Preset, threads: Int, batch: Int, evalBatch: Int, repetitions: Int, rounds: Int = 3,
                                 convolution: ConvAlgorithm = .automatic, profile: Bool, modes: Set<BenchMode> = Set(BenchMode.allCases),
                                 log: (String) -> Void) throws -> [BenchResult] {
        let spec = preset.spec
        let (final, pruner) = try finalState(of: preset)
        let dense = ModelFactory.make(spec.architecture, classes: final.classes, width: spec.width, seed: spec.seed)
        let denseMACs = Double(dense.forwardMACs())
        let states = [("dense", dense), ("final", final)]
        var measured = [[BenchResult]](repeating: [], count: states.count)
        for round in 0 ..< max(rounds, 1) {
            for (i, (state, net)) in states.enumerated() {
                let profiled = profile && round == 0
                if profiled { log("state \(state):") }
                measured[i] += run(architecture: spec.architecture, network: net, threads: threads, batch: batch, evalBatch: evalBatch,
                                   repetitions: repetitions, convolution: convolution, profile: profiled, measureCPU: true,
                                   modes: modes, log: log)
            }
        }
        withExtendedLifetime(pruner) {}
        var rows: [BenchResult] = []
        for (i, (state, net)) in states.enumerated() {
            for mode in ["train", "eval"] {
                let sorted = measured[i].filter { $0.mode == mode }.sorted { $0.secondsPerBatch < $1.secondsPerBatch }
                guard var r = sorted.isEmpty ? nil : sorted[sorted.count / 2] else { continue }
                let cpu = sorted.compactMap(\.cpuSecondsPerBatch).sorted()
                r.cpuSecondsPerBatch = cpu.isEmpty ? nil : cpu[cpu.count / 2]
                r.preset = preset.name
                r.state = state
                r.macFraction = Double(net.executedForwardMACs()) / max(denseMACs, 1)
                rows.append(r)
            }
        }
        return rows
    }
}
