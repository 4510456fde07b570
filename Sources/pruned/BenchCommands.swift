// The benchmarks (use a release build): `pruned bench` (training and evaluation throughput per
// model and thread count) and `pruned daemon-bench` (control-socket latency and the training
// slowdown polling clients cause).
import ArgumentParser
import Daemon
import Engine
import Foundation
import Training

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measure training and evaluation throughput (use a release build).")

    @Option(name: .long, help: "Comma-separated models: conv4, vgg11_bn, resnet18, resnet20, resnet56.") var models = "conv4,vgg11_bn,resnet18"
    @Option(name: .long, help: "Comma-separated thread counts.") var threads = "1,2"
    @Option(name: .long, help: "Training batch size.") var batch = 128
    @Option(name: .long, help: "Evaluation batch size.") var evalBatch = 1000
    @Option(name: .long, help: "Timed repetitions per measurement (median reported).") var repetitions = 5
    @Flag(name: .long, help: "Print one JSON object per measurement (with the process CPU seconds per batch).") var json = false
    @Flag(name: .long, help: "Print a per-layer time profile of the training step.") var profile = false
    @Option(name: .long, help: "Convolution algorithm: \(ConvAlgorithm.choices).")
    var conv = "automatic"
    @Option(name: .long, help: "Comma-separated presets: measure each preset's model dense and in its final pruned state (rows with state and mac_fraction); replaces --models.")
    var preset: String?
    @Option(name: .long, help: "With --preset: rounds measuring the two states alternately (each row is the median round).")
    var rounds = 3
    @Option(name: .long, help: "Comma-separated modes to measure: train, eval. A row's peak_rss_bytes counts what the process still holds from earlier rows: measure one mode per process to compare memory.")
    var modes = "train,eval"

    func run() throws {
        guard let algorithm = ConvAlgorithm(rawValue: conv) else {
            throw ValidationError("unknown convolution algorithm \(conv); allowed: \(ConvAlgorithm.choices)")
        }
        let archs = try models.split(separator: ",").map { name -> Architecture in
            let n = name == "vgg11" ? "vgg11_bn" : String(name)
            guard let a = Architecture(rawValue: n) else {
                throw ValidationError("unknown model \(name); allowed: \(Architecture.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return a
        }
        let counts = try threads.split(separator: ",").map { t -> Int in
            guard let n = Int(t), (1 ... 256).contains(n) else { throw ValidationError("bad thread count \(t)") }
            return n
        }
        guard batch >= 1, evalBatch >= 1, repetitions >= 1, rounds >= 1 else { throw ValidationError("sizes must be positive") }
        let measured = try Set(modes.split(separator: ",").map { name -> BenchMode in
            guard let m = BenchMode(rawValue: String(name)) else {
                throw ValidationError("unknown mode \(name); allowed: \(BenchMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return m
        })
        guard !measured.isEmpty else { throw ValidationError("--modes names no mode") }
        if let preset {
            let presets = try preset.split(separator: ",").map { name -> Preset in
                guard let p = Presets.named(String(name)) else { throw ValidationError("unknown preset \(name) (pruned presets lists them)") }
                return p
            }
            try runPresets(presets, threads: counts, algorithm: algorithm, modes: measured)
            return
        }
        if !json { print("model      mode   threads batch  images/s   GFLOP/s  peak RSS MB") }
        for a in archs {
            for t in counts {
                let results = Benchmark.run(architecture: a, threads: t, batch: batch, evalBatch: evalBatch,
                                            repetitions: repetitions, convolution: algorithm, profile: profile, measureCPU: json,
                                            modes: measured) { json ? printErr($0) : print($0) }
                for r in results {
                    if json { print(r.json.rendered) } else {
                        print(String(format: "%-10@ %-6@ %7d %5d %9.1f %9.1f %12@", r.model as NSString, r.mode as NSString,
                                     r.threads, r.batch, r.imagesPerSecond, r.gflops, megabytes(r.peakRSSBytes) as NSString))
                    }
                    fflush(stdout)
                }
            }
        }
    }
}

extension Bench {
    func runPresets(_ presets: [Preset], threads counts: [Int], algorithm: ConvAlgorithm, modes: Set<BenchMode>) throws {
        if !json { print("preset     state mode   threads batch  images/s   GFLOP/s  MACs  CPU s/batch") }
        for p in presets {
            for t in counts {
                let results = try Benchmark.runPreset(p, threads: t, batch: batch, evalBatch: evalBatch, repetitions: repetitions,
                                                      rounds: rounds, convolution: algorithm, profile: profile,
                                                      modes: modes) { json ? printErr($0) : print($0) }
                for r in results {
                    if json { print(r.json.rendered) } else {
                        let label = p.name.padding(toLength: 10, withPad: " ", startingAt: 0) + " "
                            + (r.state ?? "").padding(toLength: 5, withPad: " ", startingAt: 0) + " "
                            + r.mode.padding(toLength: 6, withPad: " ", startingAt: 0)
                        print(label + String(format: " %7d %5d %9.1f %9.1f %5.3f %12.3f", r.threads, r.batch, r.imagesPerSecond, r.gflops,
                                             r.macFraction ?? 1, r.cpuSecondsPerBatch ?? 0))
                    }
                    fflush(stdout)
                }
            }
        }
    }
}

/// Bytes as whole megabytes (10⁶), "-" when unknown.
private func megabytes(_ bytes: Int?) -> String {
    bytes.map { String(format: "%.0f", Double($0) / 1e6) } ?? "-"
}

struct DaemonBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon-bench",
        abstract: "Measure control-socket latency and the training slowdown caused by polling clients (release build).")

    @Option(name: .long, help: "Fashion-MNIST directory.") var data = "/usr/share/datasets/fashion-mnist"
    @Option(name: .long, help: "Model trained meanwhile.") var model = "conv4"
    @Option(name: .long, help: "Training threads.") var threads = 2
    @Option(name: .long, help: "Polling clients in the loaded windows.") var clients = 100
    @Option(name: .long, help: "Seconds between requests of one client.") var pollInterval = 0.1
    @Option(name: .long, help: "Seconds per window.") var window = 20.0
    @Option(name: .long, help: "Quiet/loaded window pairs.") var pairs = 2
    @Option(name: .long, help: "Instead: status round trips while this many forks of a full-width checkpoint are made.") var forks: Int?
    @Option(name: .long, help: "With --forks: the model whose checkpoint is forked.") var forkModel = "vgg11_bn"
    @Flag(name: .long, help: "Print JSON lines.") var json = false

    func run() throws {
        var b = DaemonBenchmark()
        b.dataPath = data; b.model = model; b.threads = threads; b.clients = clients
        b.pollInterval = pollInterval; b.window = window; b.pairs = pairs
        if let forks {
            for line in try b.forkLatency(model: forkModel, forks: max(1, min(forks, 1000))) { printErr($0) } {
                print(json ? line.rendered : line.pretty)
            }
            return
        }
        let r = try b.run { printErr($0) }
        for line in DaemonBenchmark.report(r, clients: clients, pollInterval: pollInterval) {
            print(json ? line.rendered : line.pretty)
        }
    }
}

extension ConvAlgorithm {
    /// The --conv values of `pruned bench` and `pruned run`, explained (in ASCII: the manual
    /// page generator drops other characters).
    static var choices: String {
        let size = "\(Conv2D.winograd4MinimumSize)x\(Conv2D.winograd4MinimumSize)"
        return "automatic (Winograd for 3x3 stride-1 convolutions with at least \(Conv2D.winogradMinimumChannels) input channels: "
            + "F(4x4) on planes of at least \(size), F(2x2) on smaller ones; im2col otherwise), "
            + "im2col, winograd (F(2x2) wherever it applies), winograd4 (F(4x4) wherever it applies), "
            + "automatic2 (automatic with F(2x2) on every plane: the default of builds before F(4x4))"
    }
}
