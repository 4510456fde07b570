// pruned: the training daemon's executable. For now: `run` (one run in the foreground) and
// `bench` (the throughput benchmark). Kept to argument parsing; the work lives in Training.
import ArgumentParser
import Engine
import Foundation
import PrunedJSON
import Training

@main
struct Pruned: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pruned",
        abstract: "Train and prune CNNs for generalization-stability experiments.",
        version: "0.1.0",
        subcommands: [Run.self, Bench.self])
}

func printErr(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8) ?? Data()) }

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train one run in the foreground from a JSON run spec.")

    @Option(name: .long, help: "Path of the JSON run spec.") var spec: String
    @Option(name: .long, help: "Output directory (spec.json, metrics.jsonl, summary.json).") var out: String
    @Option(name: .long, help: "Worker threads (results are bit-identical for a given count).") var threads: Int = 2
    @Option(name: .long, help: "Override the spec's seed.") var seed: Int?
    @Option(name: .long, help: "Override the spec's number of epochs.") var epochs: Int?
    @Option(name: .long, help: "Override the spec's dataset path.") var data: String?

    func validate() throws {
        guard (1 ... 256).contains(threads) else { throw ValidationError("--threads must be in 1…256") }
        if let seed, seed < 0 { throw ValidationError("--seed must be non-negative") }
        if let epochs, !(1 ... 100_000).contains(epochs) { throw ValidationError("--epochs must be in 1…100000") }
    }

    func run() throws {
        guard let text = try? String(contentsOfFile: spec, encoding: .utf8) else {
            printErr("pruned: cannot read spec file \(spec)")
            throw ExitCode(2)
        }
        do {
            var s = try RunSpec.parse(text)
            if let seed { s.seed = UInt64(seed) }
            if let epochs { s.epochs = epochs }
            if let data { s.data.path = data }
            try s.validateAgainstModel()
            let summary = try ForegroundRun.execute(spec: s, outDir: out, threads: threads) { print($0); fflush(stdout) }
            if let st = RunStatistics(summary.records) {
                print(String(format: "done: best test accuracy %.2f%% at epoch %d, mean stability %.2f%% (%@); results in %@",
                             st.bestTestAccuracy, st.bestEpoch, st.meanStability, s.data.kind.rawValue as NSString, out as NSString))
            }
        } catch let e as SpecError {
            printErr("pruned: \(spec): \(e)")
            throw ExitCode(2)
        } catch let e as DatasetError {
            printErr("pruned: dataset: \(e)")
            throw ExitCode(2)
        } catch let e as FileError {
            printErr("pruned: \(e)")
            throw ExitCode(1)
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measure training and evaluation throughput (use a release build).")

    @Option(name: .long, help: "Comma-separated models: conv4, vgg11_bn, resnet18, resnet20, resnet56.") var models = "conv4,vgg11_bn,resnet18"
    @Option(name: .long, help: "Comma-separated thread counts.") var threads = "1,2"
    @Option(name: .long, help: "Training batch size.") var batch = 128
    @Option(name: .long, help: "Evaluation batch size.") var evalBatch = 1000
    @Option(name: .long, help: "Timed repetitions per measurement (median reported).") var repetitions = 5
    @Flag(name: .long, help: "Print one JSON object per measurement.") var json = false
    @Flag(name: .long, help: "Print a per-layer time profile of the training step.") var profile = false

    func run() throws {
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
        guard batch >= 1, evalBatch >= 1, repetitions >= 1 else { throw ValidationError("sizes must be positive") }
        if !json { print("model      mode   threads batch  images/s   GFLOP/s") }
        for a in archs {
            for t in counts {
                let results = Benchmark.run(architecture: a, threads: t, batch: batch, evalBatch: evalBatch,
                                            repetitions: repetitions, profile: profile) { json ? printErr($0) : print($0) }
                for r in results {
                    if json { print(r.json.rendered) } else {
                        print(String(format: "%-10@ %-6@ %7d %5d %9.1f %9.1f", r.model as NSString, r.mode as NSString,
                                     r.threads, r.batch, r.imagesPerSecond, r.gflops))
                    }
                    fflush(stdout)
                }
            }
        }
    }
}
