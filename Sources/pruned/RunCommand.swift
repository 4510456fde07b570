// `pruned run`: one run in the foreground from a spec file or a preset, its flags applied as
// overrides through the spec builder the daemon uses; resumable from its checkpoints, stopped
// cleanly by SIGTERM/SIGINT, checkpointed on SIGUSR1.
import ArgumentParser
import Checkpointing
import Engine
import Foundation
import PrunedJSON
import Results
import Training

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train one run in the foreground from a JSON run spec.")

    @Option(name: .long, help: "Path of a JSON run spec, or a preset name (see `pruned presets`).") var spec: String
    @Option(name: .long, help: "Output directory (spec.json, metrics.jsonl, summary.json).") var out: String
    @Option(name: .long, help: "Worker threads (results are bit-identical for a given count).") var threads: Int = 2
    @Option(name: .long, help: "Override the spec's seed.") var seed: Int?
    @Option(name: .long, help: "Override the number of epochs (a preset is scaled, keeping its schedule's shape).") var epochs: Int?
    @Option(name: .long, help: "Override the dataset directory.") var data: String?
    @Option(name: .long, help: "Override the dataset kind: cifar10, cifar100, fashion_mnist, mnist.") var datasetKind: String?
    @Option(name: .long, help: "Override the model width multiplier (1 = the paper's model).") var width: Double?
    @Option(name: .long, help: "Use only the first N training images.") var trainLimit: Int?
    @Option(name: .long, help: "Use only the first N test images.") var testLimit: Int?
    @Flag(name: .long, help: "Resume from the directory's checkpoint even though the spec differs from the recorded one.") var fork = false
    @Option(name: .long, help: "Convolution algorithm (research; not recorded in the spec, resume with the same): \(ConvAlgorithm.choices).")
    var conv = ConvAlgorithm.automatic.rawValue

    func validate() throws {
        guard (1 ... 256).contains(threads) else { throw ValidationError("--threads must be in 1…256") }
        if let seed, seed < 0 { throw ValidationError("--seed must be non-negative") }
        if let epochs, !(1 ... 100_000).contains(epochs) { throw ValidationError("--epochs must be in 1…100000") }
        if ConvAlgorithm(rawValue: conv) == nil { throw ValidationError("unknown convolution algorithm \(conv); allowed: \(ConvAlgorithm.choices)") }
    }

    func run() throws {
        do {
            // The file's spec (read and checked as it stands) or the preset, with the flags as overrides.
            var base: JSON?
            if let text = try? String(contentsOfFile: spec, encoding: .utf8) {
                base = try RunSpec.parse(text).json
            } else if Presets.named(spec) == nil {
                printErr("pruned: \(spec) is neither a readable spec file nor a preset; `pruned presets` lists the presets")
                throw ExitCode(2)
            }
            var overrides: [SpecBuilder.Override] = []
            if let epochs { overrides.append(("epochs", .number(Double(epochs)))) }
            if let seed { overrides.append(("seed", .number(Double(seed)))) }
            if let data { overrides.append(("dataset.path", .string(data))) }
            if let datasetKind { overrides.append(("dataset.kind", .string(datasetKind))) }
            if let width { overrides.append(("width", .number(width))) }
            if let trainLimit { overrides.append(("dataset.train_limit", .number(Double(trainLimit)))) }
            if let testLimit { overrides.append(("dataset.test_limit", .number(Double(testLimit)))) }
            let built = try SpecBuilder.compose(base: base, preset: base == nil ? spec : nil, overrides: overrides)
            if let epochs { for n in built.notes { printErr("pruned: note: scaling \(spec) to \(epochs) epochs: \(n)") } }
            if let datasetKind, DatasetKind(rawValue: datasetKind) == nil {
                printErr("pruned: --dataset-kind \(datasetKind) is not one of: \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", "))")
                throw ExitCode(2)
            }
            // The overridden spec passes the same validation as a file.
            let s = try RunSpec(json: built.json)
            try s.validateAgainstModel()
            Provenance.buildName = "pruned-" + (Pruned.configuration.version.isEmpty ? "dev" : Pruned.configuration.version)
            StopSignal.install()
            var options = RunOptions(fork: fork, stopRequested: { StopSignal.requested })
            options.convolution = ConvAlgorithm(rawValue: conv) ?? .automatic
            options.checkpointRequested = { StopSignal.takeCheckpointRequest() }
            // Test hook: the process sends itself SIGTERM after its N-th optimizer step.
            if let n = ProcessInfo.processInfo.environment["PRUNED_TEST_SIGTERM_AT_STEP"].flatMap({ Int($0) }) {
                options.afterStep = { t in if t.optimizer.step == n { kill(getpid(), SIGTERM) } }
            }
            // DIR/progress.json (ProgressFile.swift): state, position, speed, host and Slurm ids.
            let progress = ProgressFile(directory: out)
            progress.onWriteError = { printErr("pruned: note: \($0)") }
            progress.attach(to: &options)
            let summary: RunSummary
            do {
                summary = try ForegroundRun.execute(spec: s, outDir: out, threads: threads, options: options) { print($0); fflush(stdout) }
            } catch {
                progress.failed("\(error)")
                throw error
            }
            progress.ended(summary)
            if summary.interrupted { return }
            let st = RunMetrics(records: summary.records)
            if let best = st.bestTestAccuracy, let bestEpoch = st.bestEpoch, let stability = st.meanStability {
                print(String(format: "done: best test accuracy %.2f%% at epoch %d, mean stability %.2f%% (%@); results in %@",
                             best, bestEpoch, stability, s.data.kind.rawValue as NSString, out as NSString))
            }
        } catch let e as SpecError {
            printErr("pruned: \(spec): \(e)")
            throw ExitCode(2)
        } catch let e as SpecSourceError {
            printErr("pruned: \(spec): \(e)")
            throw ExitCode(2)
        } catch let e as DatasetError {
            printErr("pruned: dataset: \(e)")
            throw ExitCode(2)
        } catch let e as FileError {
            printErr("pruned: \(e)")
            throw ExitCode(1)
        } catch let e as TrainingDiverged {
            printErr("pruned: \(e); no summary.json, the checkpoints before it are kept")
            throw ExitCode(1)
        } catch let e as FinalCheckpointFailed {
            printErr("pruned: \(e) (run the same command again)")
            throw ExitCode(1)
        }
    }
}
