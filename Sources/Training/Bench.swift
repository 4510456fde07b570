// The throughput benchmark behind `pruned bench`: training steps (forward + loss + backward +
// optimizer) at a training batch and evaluation at an evaluation batch, on synthetic
// normalised inputs, warm-up excluded, median over repetitions; optional per-layer profile.
// GFLOP/s counts the direct convolution's multiply-adds (2 per MAC, training = 3× forward),
// whatever the algorithm: with Winograd it is an effective rate, not the hardware's; of a
// pruned network it counts those executed (Network.executedForwardMACs). Each row also carries
// the process's peak resident set during that measurement (Linux; the high-water mark is reset
// before it): memory still held from an earlier measurement in the same process counts, so
// `modes` lets a caller measure one mode per process.
import Engine
import Foundation
import PrunedJSON

public struct BenchResult: Sendable {
    public var model: String
    public var mode: String
    public var threads: Int
    public var batch: Int
    public var imagesPerSecond: Double
    public var gflops: Double
    public var secondsPerBatch: Double
    /// The convolution algorithm setting the run used.
    public var convolution: String = ConvAlgorithm.automatic.rawValue
    /// Preset benchmarks (PresetBench.swift): the preset, the model's state (`dense` or
    /// `final`) and the fraction of the dense forward multiply-adds that state executes.
    public var preset: String?
    public var state: String?
    public var macFraction: Double?
    /// Preset benchmarks: the process's CPU seconds per batch (all threads; median), which
    /// load from other processes on a shared machine does not inflate as it does wall time.
    public var cpuSecondsPerBatch: Double?
    /// Peak resident set of the process during this measurement (warm-up included), in bytes;
    /// nil where the high-water mark cannot be reset and read (ResidentSet).
    public var peakRSSBytes: Int?

    public var json: JSON {
        var pairs: [(String, JSON)] = [
            ("model", .string(model)), ("mode", .string(mode)), ("threads", .number(Double(threads))),
            ("batch", .number(Double(batch))), ("images_per_second", .number((imagesPerSecond * 10).rounded() / 10)),
            ("gflops", .number((gflops * 10).rounded() / 10)), ("seconds_per_batch", .number(secondsPerBatch)),
            ("convolution", .string(convolution))]
        if let preset { pairs.append(("preset", .string(preset))) }
        if let state { pairs.append(("state", .string(state))) }
        if let macFraction { pairs.append(("mac_fraction", .number((macFraction * 10000).rounded() / 10000))) }
        if let cpuSecondsPerBatch { pairs.append(("cpu_seconds_per_batch", .number(cpuSecondsPerBatch))) }
        if let peakRSSBytes { pairs.append(("peak_rss_bytes", .number(Double(peakRSSBytes)))) }
        return .object(pairs)
    }
}

/// CPU time of the whole process (every thread), in seconds.
func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// The process's peak resident set (Linux): `resetPeak` lowers the high-water mark (VmHWM) to
/// the current resident set by writing 5 to /proc/self/clear_refs, `peakBytes` reads it.
public enum ResidentSet {
    /// Whether the reset took effect (false where /proc/self/clear_refs is missing or read-only).
    @discardableResult
    public static func resetPeak() -> Bool {
        guard let f = fopen("/proc/self/clear_refs", "w") else { return false }
        let written = fputs("5", f) >= 0
        return fclose(f) == 0 && written
    }

    /// VmHWM of /proc/self/status in bytes, nil when unavailable.
    public static func peakBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 3, let kB = Int(fields[1]), fields[2] == "kB" else { return nil }
            return kB * 1024
        }
        return nil
    }
}

/// What `Benchmark.run` measures: training steps, evaluation batches, or both (in that order).
public enum BenchMode: String, CaseIterable, Sendable {
    case train, eval
}

final class TimingProfiler: LayerProfiler {
    var forward: [String: Double] = [:]
    var backward: [String: Double] = [:]
    var order: [String] = []
    func now() -> Double { Trainer.monotonicSeconds() }
    func record(_ layer: String, backward isBackward: Bool, seconds: Double) {
        if forward[layer] == nil && backward[layer] == nil { order.append(layer) }
        if isBackward { backward[layer, default: 0] += seconds } else { forward[layer, default: 0] += seconds }
    }
}

public enum Benchmark {
    /// Measures `network` (default: a fresh `architecture` with 10 classes, seed 1), as it is:
    /// a pruned network runs compacted (the GFLOP/s then count the multiply-adds executed).
    /// With `measureCPU` the rows also carry the median process CPU time per batch. `modes`
    /// selects the rows (the profile, if asked for, runs training steps either way).
    public static func run(architecture: Architecture, network: Network? = nil, threads: Int, batch: Int, evalBatch: Int,
                           repetitions: Int, convolution: ConvAlgorithm = .automatic, profile: Bool, measureCPU: Bool = false,
                           modes: Set<BenchMode> = Set(BenchMode.allCases), log: (String) -> Void) -> [BenchResult] {
        let net = network ?? ModelFactory.make(architecture, classes: 10, seed: 1)
        for c in net.convolutions { c.algorithm = convolution }
        let ctx = ExecutionContext(threads: threads)
        let opt = Optimizer(kind: .adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0), parameterCount: net.parameterCount)
        let loss = SoftmaxCrossEntropy()
        let maxBatch = max(batch, evalBatch)
        let input = FloatBuffer(count: maxBatch * 3 * 32 * 32)
        var rng = CounterRNG(seed: 7, purpose: .noise)
        for i in 0 ..< input.count { input[i] = Float(rng.normal()) }
        let labels = (0 ..< maxBatch).map { Int32($0 % net.classes) }
        let macs = Double(net.executedForwardMACs())
        var results: [BenchResult] = []

        func trainStep() {
            ctx.training = true
            let logits = net.forward(Activation(data: input.ptr, channels: 3, batch: batch, height: 32, width: 32), ctx)
            _ = labels.withUnsafeBufferPointer { loss.evaluate(logits, labels: $0.baseAddress!, computeGradient: true) }
            net.store.zeroGradients()
            net.backward(Activation(data: loss.gradient.ptr, channels: net.classes, batch: batch, height: 1, width: 1, layout: .rowMajor), ctx)
            opt.apply(net.store, lr: 1e-3, workers: ctx.workers)
        }
        func evalStep() {
            ctx.training = false
            let logits = net.forward(Activation(data: input.ptr, channels: 3, batch: evalBatch, height: 32, width: 32), ctx)
            _ = labels.withUnsafeBufferPointer { loss.evaluate(logits, labels: $0.baseAddress!, computeGradient: false) }
        }
        func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
        var cpu: [Double] = []
        func time(_ body: () -> Void) -> Double {
            let t = Trainer.monotonicSeconds(), c = processCPUSeconds()
            body()
            cpu.append(processCPUSeconds() - c)
            return Trainer.monotonicSeconds() - t
        }

        /// The peak resident set since `reset` (nil if the reset failed).
        func peak(after reset: Bool) -> Int? { reset ? ResidentSet.peakBytes() : nil }

        if modes.contains(.train) {
            let reset = ResidentSet.resetPeak()
            trainStep(); trainStep()   // warm-up: buffers allocated, pages touched
            let train = median((0 ..< repetitions).map { _ in time(trainStep) })
            var row = BenchResult(model: architecture.rawValue, mode: "train", threads: threads, batch: batch,
                                  imagesPerSecond: Double(batch) / train, gflops: 6 * macs * Double(batch) / train / 1e9,
                                  secondsPerBatch: train)
            row.peakRSSBytes = peak(after: reset)
            if measureCPU { row.cpuSecondsPerBatch = median(cpu) }
            results.append(row)
            cpu = []
        }
        if modes.contains(.eval) {
            let reset = ResidentSet.resetPeak()
            evalStep()
            let eval = median((0 ..< max(3, repetitions / 2)).map { _ in time(evalStep) })
            var row = BenchResult(model: architecture.rawValue, mode: "eval", threads: threads, batch: evalBatch,
                                  imagesPerSecond: Double(evalBatch) / eval, gflops: 2 * macs * Double(evalBatch) / eval / 1e9,
                                  secondsPerBatch: eval)
            row.peakRSSBytes = peak(after: reset)
            if measureCPU { row.cpuSecondsPerBatch = median(cpu) }
            results.append(row)
        }
        if profile {
            let p = TimingProfiler()
            if !modes.contains(.train) { trainStep() }   // warm-up
            net.profiler = p
            var steps: [Double] = []
            for _ in 0 ..< repetitions { steps.append(time(trainStep)) }
            net.profiler = nil
            let total = p.order.reduce(0.0) { $0 + p.forward[$1, default: 0] + p.backward[$1, default: 0] }
            log("per-layer profile, \(architecture.rawValue), \(threads) thread(s), batch \(batch), ms per step (forward / backward / share):")
            for name in p.order {
                let f = p.forward[name, default: 0] / Double(repetitions) * 1000
                let b = p.backward[name, default: 0] / Double(repetitions) * 1000
                let padded = name.count < 22 ? name + String(repeating: " ", count: 22 - name.count) : name
                log(String(format: "  %@ %8.2f %8.2f %6.1f%%", padded as NSString, f, b, 100 * (f + b) / 1000 * Double(repetitions) / max(total, 1e-12)))
            }
            log(String(format: "  layers total %.1f ms of a %.1f ms step (the rest: optimizer, loss, zeroing)",
                       total / Double(repetitions) * 1000, median(steps) * 1000))
        }
        for i in results.indices { results[i].convolution = convolution.rawValue }
        return results
    }
}
