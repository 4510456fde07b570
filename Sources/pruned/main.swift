// pruned: the training daemon's executable. For now: `run` (one run in the foreground, resumable
// from its checkpoints), `bench` (the throughput benchmark) and `ckpt` (checkpoint tools). Kept
// to argument parsing; the work lives in Training and Checkpointing.
import ArgumentParser
import Checkpointing
import Control
import Daemon
import Engine
import Foundation
import PrunedJSON
import Results
import RunLayout
import Training

@main
struct Pruned: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pruned",
        abstract: "Train and prune CNNs for generalization-stability experiments.",
        version: ProtocolInfo.softwareVersion,
        subcommands: [DaemonCommand.self, DaemonBench.self, Run.self, Bench.self, PresetsCommand.self, ScheduleCommand.self, Layers.self,
                      Ckpt.self, SlurmScript.self, ReportCommand.self])
}

struct DaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run the queue daemon: a persistent queue of runs controlled over a Unix socket (see docs/PROTOCOL.md).",
        discussion: """
        Paths: the state directory is --state-dir, else $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/pruned, else         ~/.local/state/pruned. The socket comes from systemd (LISTEN_FDS, named 'control'), else --socket, else         $RUNTIME_DIRECTORY/control.sock, else $XDG_RUNTIME_DIR/pruned/control.sock, else /tmp/pruned-UID/control.sock.
        """)

    @Option(name: .long, help: "State directory (ledger, runs/).") var stateDir: String?
    @Option(name: .long, help: "Socket path to bind when systemd passes none.") var socket: String?
    @Option(name: .long, help: "Runs trained at the same time.") var runs = 1
    @Option(name: .long, help: "Threads per run (default: cores / runs).") var threads: Int?
    @Option(name: .long, help: "What to do at start with runs a stop or crash interrupted: resume or hold.") var onStart = "resume"
    @Option(name: .long, help: "Only this group's members (and root and the daemon's user) may connect.") var allowedGroup: String?
    @Option(name: .long, help: "This group's members may change anybody's runs and drain the daemon.") var adminGroup: String?
    @Option(name: .long, help: "Maximum simultaneous connections.") var maxConnections = 128
    @Option(name: .long, help: "Maximum simultaneous connections of one user; root, the daemon's user and admins are exempt (default: a quarter of --max-connections, at most 32).") var maxConnectionsPerUser: Int?
    @Option(name: .long, help: "Connections that only root, the daemon's user and admins may use (default: an eighth of --max-connections, at most 16).") var reservedConnections: Int?
    @Option(name: .long, help: "Seconds before a silent connection is closed (subscribers excepted).") var idleTimeout: Double = 900
    @Option(name: .long, help: "Maximum request line length in bytes.") var maxLine = ProtocolInfo.defaultMaxLineBytes
    @Option(name: .long, help: "Relative dataset paths in specs resolve against this directory (default: the state directory).") var dataRoot: String?
    @Option(name: .long, help: "Seconds without a training step before the watchdog is starved.") var stallLimit: Double = 1800
    @Option(name: .long, help: "Where runs execute unless a submission says otherwise: local or slurm.") var executor = "local"
    @Option(name: .long, help: "Default Slurm partition of Slurm runs.") var slurmPartition: String?
    @Option(name: .long, help: "Default Slurm time limit of a task (sbatch --time).") var slurmTime: String?
    @Option(name: .long, help: "Default CPUs (and threads) per Slurm task (default: --threads).") var slurmCpusPerTask: String?
    @Option(name: .long, help: "Default memory per Slurm task (sbatch --mem, e.g. 4G).") var slurmMem: String?
    @Option(name: .long, help: "Default limit of an array's tasks running at once (the array's %K).") var slurmMaxConcurrent: String?
    @Option(name: .long, help: "Default Slurm account.") var slurmAccount: String?
    @Option(name: .long, help: "Default extra sbatch option --NAME[=VALUE] (repeatable).") var slurmSbatchArg: [String] = []
    @Option(name: .long, help: "The pruned executable Slurm tasks run (default: this daemon's own binary).") var slurmPrunedBin: String?
    @Option(name: .long, help: "Seconds between two looks at the Slurm runs (squeue and their run directories).") var slurmPoll: Double = 2
    @Option(name: .long, help: "Seconds before a task's time limit at which it checkpoints (sbatch --signal=B:USR1@N).") var slurmSignalMargin = 120
    @Option(name: .long, help: "Resubmissions of a Slurm task that vanished without finishing before its run fails.") var slurmRetries = 3

    /// The daemon's default Slurm options, validated as a request's would be.
    func slurmDefaults() throws -> SlurmOptions {
        var o = SlurmOptions()
        let pairs: [(String, String?)] = [("partition", slurmPartition), ("time", slurmTime), ("cpus_per_task", slurmCpusPerTask),
                                          ("mem", slurmMem), ("max_concurrent", slurmMaxConcurrent), ("account", slurmAccount)]
        do {
            for (k, v) in pairs { if let v { try o.set(k, v) } }
            for a in slurmSbatchArg { try o.set("sbatch_arg", a) }
        } catch let e as ProtocolError { throw ValidationError("--slurm-\(e.message.dropFirst("slurm.".count).replacingOccurrences(of: "_", with: "-"))") }
        return o
    }

    func validate() throws {
        guard (1 ... 64).contains(runs) else { throw ValidationError("--runs must be in 1…64") }
        if let threads, !(1 ... 256).contains(threads) { throw ValidationError("--threads must be in 1…256") }
        guard onStart == "resume" || onStart == "hold" else { throw ValidationError("--on-start must be resume or hold") }
        guard (1 ... 100_000).contains(maxConnections) else { throw ValidationError("--max-connections must be in 1…100000") }
        if let n = maxConnectionsPerUser, !(1 ... maxConnections).contains(n) {
            throw ValidationError("--max-connections-per-user must be in 1…\(maxConnections) (--max-connections)")
        }
        if let n = reservedConnections, !(0 ..< maxConnections).contains(n) {
            throw ValidationError("--reserved-connections must be in 0…\(maxConnections - 1) (below --max-connections)")
        }
        guard idleTimeout > 0, stallLimit > 0 else { throw ValidationError("timeouts must be positive") }
        guard (256 ... (64 << 20)).contains(maxLine) else { throw ValidationError("--max-line must be in 256…67108864") }
        guard Executor(rawValue: executor) != nil else { throw ValidationError("--executor must be local or slurm") }
        _ = try slurmDefaults()
        guard slurmPoll >= 0.1, slurmPoll <= 600 else { throw ValidationError("--slurm-poll must be in 0.1…600 seconds") }
        guard (10 ... 3600).contains(slurmSignalMargin) else { throw ValidationError("--slurm-signal-margin must be in 10…3600 seconds") }
        guard (0 ... 100).contains(slurmRetries) else { throw ValidationError("--slurm-retries must be in 0…100") }
    }

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        let home = env["HOME"] ?? NSHomeDirectory()
        let state = stateDir ?? env["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) }
            ?? (env["XDG_STATE_HOME"].map { $0 + "/pruned" } ?? home + "/.local/state/pruned")
        var config = DaemonConfiguration(stateDirectory: state)
        let logger = Logger()
        do {
            config.listenFD = try SocketActivation.listeningSocket()
        } catch {
            logger.log(.error, "\(error)")
            throw ExitCode(1)
        }
        if config.listenFD == nil {
            config.socketPath = socket ?? env["RUNTIME_DIRECTORY"].flatMap { $0.split(separator: ":").first.map { $0 + "/control.sock" } }
                ?? env["XDG_RUNTIME_DIR"].map { $0 + "/pruned/control.sock" } ?? "/tmp/pruned-\(getuid())/control.sock"
        }
        config.runs = runs
        config.threadsPerRun = threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / runs)
        config.resumeOnStart = onStart == "resume"
        config.allowedGroup = allowedGroup
        config.adminGroup = adminGroup
        config.maxConnections = maxConnections
        config.maxConnectionsPerUser = maxConnectionsPerUser ?? min(32, max(1, maxConnections / 4))
        config.reservedConnections = reservedConnections ?? min(16, maxConnections / 8)
        config.idleTimeout = idleTimeout
        config.maxLineBytes = maxLine
        config.dataRoot = dataRoot
        config.stallLimit = stallLimit
        config.version = Pruned.configuration.version
        config.executor = Executor(rawValue: executor) ?? .local
        config.slurmDefaults = try slurmDefaults()
        if let slurmPrunedBin { config.slurmPrunedBin = slurmPrunedBin }
        config.slurmPollInterval = slurmPoll
        config.slurmSignalMargin = slurmSignalMargin
        config.slurmRetries = slurmRetries
        Provenance.buildName = "pruned-" + config.version
        do {
            let daemon = try Daemon(configuration: config, logger: logger)
            try daemon.run()
        } catch {
            logger.log(.error, "\(error)")
            Notify.send("STATUS=failed: \(error)")
            throw ExitCode(1)
        }
    }
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

func printErr(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8) ?? Data()) }

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

    func validate() throws {
        guard (1 ... 256).contains(threads) else { throw ValidationError("--threads must be in 1…256") }
        if let seed, seed < 0 { throw ValidationError("--seed must be non-negative") }
        if let epochs, !(1 ... 100_000).contains(epochs) { throw ValidationError("--epochs must be in 1…100000") }
    }

    func run() throws {
        do {
            var s: RunSpec
            if let text = try? String(contentsOfFile: spec, encoding: .utf8) {
                s = try RunSpec.parse(text)
                if let epochs { s.epochs = epochs }
            } else if let preset = Presets.named(spec) {
                s = preset.spec
                if let epochs {
                    let (scaled, notes) = Presets.scale(s, toEpochs: epochs)
                    s = scaled
                    for n in notes { printErr("pruned: note: scaling \(spec) to \(epochs) epochs: \(n)") }
                }
            } else {
                printErr("pruned: \(spec) is neither a readable spec file nor a preset; `pruned presets` lists the presets")
                throw ExitCode(2)
            }
            if let seed { s.seed = UInt64(seed) }
            if let data { s.data.path = data }
            if let datasetKind {
                guard let k = DatasetKind(rawValue: datasetKind) else {
                    printErr("pruned: --dataset-kind \(datasetKind) is not one of: \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", "))")
                    throw ExitCode(2)
                }
                s.data.kind = k
            }
            if let width { s.width = width }
            if let trainLimit { s.data.trainLimit = trainLimit }
            if let testLimit { s.data.testLimit = testLimit }
            // Re-read the overridden spec so every field passes the same validation as a file.
            s = try RunSpec(json: s.json)
            try s.validateAgainstModel()
            Provenance.buildName = "pruned-" + (Pruned.configuration.version.isEmpty ? "dev" : Pruned.configuration.version)
            StopSignal.install()
            var options = RunOptions(fork: fork, stopRequested: { StopSignal.requested })
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
        } catch let e as TrainingDiverged {
            printErr("pruned: \(e); no summary.json, the checkpoints before it are kept")
            throw ExitCode(1)
        } catch let e as FinalCheckpointFailed {
            printErr("pruned: \(e) (run the same command again)")
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
    @Option(name: .long, help: "Convolution algorithm: automatic (Winograd for 3×3 stride-1 convolutions with ≥ 16 input channels), im2col or winograd.")
    var conv = "automatic"
    @Option(name: .long, help: "Comma-separated presets: measure each preset's model dense and in its final pruned state (rows with state and mac_fraction); replaces --models.")
    var preset: String?
    @Option(name: .long, help: "With --preset: rounds measuring the two states alternately (each row is the median round).")
    var rounds = 3

    func run() throws {
        guard let algorithm = ConvAlgorithm(rawValue: conv) else {
            throw ValidationError("unknown convolution algorithm \(conv); allowed: \(ConvAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))")
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
        if let preset {
            let presets = try preset.split(separator: ",").map { name -> Preset in
                guard let p = Presets.named(String(name)) else { throw ValidationError("unknown preset \(name) (pruned presets lists them)") }
                return p
            }
            try runPresets(presets, threads: counts, algorithm: algorithm)
            return
        }
        if !json { print("model      mode   threads batch  images/s   GFLOP/s") }
        for a in archs {
            for t in counts {
                let results = Benchmark.run(architecture: a, threads: t, batch: batch, evalBatch: evalBatch,
                                            repetitions: repetitions, convolution: algorithm, profile: profile) { json ? printErr($0) : print($0) }
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

extension Bench {
    func runPresets(_ presets: [Preset], threads counts: [Int], algorithm: ConvAlgorithm) throws {
        if !json { print("preset     state mode   threads batch  images/s   GFLOP/s  MACs  CPU s/batch") }
        for p in presets {
            for t in counts {
                let results = try Benchmark.runPreset(p, threads: t, batch: batch, evalBatch: evalBatch, repetitions: repetitions,
                                                      rounds: rounds, convolution: algorithm, profile: profile) { json ? printErr($0) : print($0) }
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

struct PresetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "presets", abstract: "List the paper's experiment presets.")
    @Flag(name: .long, help: "Print each preset's full spec as JSON (one per line).") var json = false
    @Argument(help: "Show only this preset.") var name: String?

    func run() throws {
        let list = Presets.all.filter { name == nil || $0.name == name }
        if list.isEmpty { printErr("pruned: no preset \(name ?? "")"); throw ExitCode(2) }
        for p in list {
            if json { print(p.spec.json.rendered) } else { print(p.name.padding(toLength: 11, withPad: " ", startingAt: 0) + p.summary) }
        }
    }
}

struct ScheduleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Print what a run will do before it runs: per epoch the LR and each layer's units pruned and left, then totals.",
        discussion: """
        The spec is built as the daemon builds a submitted one (a preset's epochs=N scales its schedule keeping its shape, \
        and any note on what the scaling could not keep is printed); the amounts come from the trainer's pruning code. \
        Epochs are 0-based, as the spec's start/end. The dataset is not read.
        """)

    @Argument(help: "A preset name (see `pruned presets`).") var preset: String?
    @Option(name: .long, help: "Path of a JSON run spec instead of a preset.") var spec: String?
    @Option(name: .long, help: "Number of epochs (a preset's schedule is scaled, keeping its shape).") var epochs: Int?
    @Option(name: [.customShort("s"), .long], help: "Spec override PATH=VALUE (repeatable), as for submit.") var set: [String] = []
    @Flag(name: .long, help: "Print JSON: the canonical spec and the schedule.") var json = false

    func validate() throws {
        if (preset == nil) == (spec == nil) { throw ValidationError("name a preset or give --spec FILE (not both)") }
        if let epochs, !(1 ... 100_000).contains(epochs) { throw ValidationError("--epochs must be in 1…100000") }
    }

    func run() throws {
        var overrides: [Override] = []
        for item in set {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else { throw ValidationError("--set '\(item)' is not PATH=VALUE") }
            let token = Token(key: String(item[..<eq]), value: String(item[item.index(after: eq)...]))
            do { overrides.append(Override(String(item[..<eq]), try token.jsonValue())) } catch let e as ProtocolError { throw ValidationError(e.message) }
        }
        if let epochs { overrides.removeAll { $0.path == "epochs" }; overrides.append(Override("epochs", .number(Double(epochs)))) }
        do {
            var base: JSON?
            if let spec {
                guard let text = try? String(contentsOfFile: spec, encoding: .utf8) else {
                    printErr("pruned: cannot read the spec file \(spec)")
                    throw ExitCode(2)
                }
                do { base = try JSON.parse(text) } catch let e as JSONParseError { throw SpecError(field: "", message: e.description) }
            }
            let composed = try Daemon.composeSpec(base: base, preset: preset, overrides: overrides)
            let s = try RunSpec(json: composed)
            try s.validateAgainstModel(classes: s.data.kind.classes, memoryLimit: nil)
            let preview = try SchedulePreview(spec: s)
            if json {
                print(JSON.object([("spec", s.json), ("schedule", preview.json)]).rendered)
            } else {
                print("\(preset ?? spec ?? ""): \(s.architecture.rawValue), \(s.epochs) epochs, "
                      + (s.pruning.map { "\($0.target.rawValue) \($0.score.rawValue) \($0.granularity.rawValue) pruning" } ?? "no pruning"))
                print(preview.text(), terminator: "")
            }
        } catch let e as ProtocolError {
            printErr("pruned: \(e.message)")
            throw ExitCode(2)
        } catch let e as SpecError {
            printErr("pruned: \(preset ?? spec ?? ""): \(e)")
            throw ExitCode(2)
        }
    }
}

struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a model's prunable layers (names for the spec's pruning.layers).")
    @Option(name: .long, help: "Model: conv4, vgg11_bn, resnet18, resnet20, resnet56.") var model: String
    @Option(name: .long, help: "Number of classes.") var classes = 10

    func run() throws {
        guard let arch = Architecture(rawValue: model) else {
            printErr("pruned: unknown model \(model); allowed: \(Architecture.allCases.map(\.rawValue).joined(separator: ", "))")
            throw ExitCode(2)
        }
        let net = ModelFactory.make(arch, classes: classes, seed: 0)
        for l in net.prunableLayers() {
            let bn = l.batchNorm.map { " (then \($0.name))" } ?? ""
            print("\(l.name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(l.kind)  \(l.structuredUnits) \(l.kind == "conv" ? "filters" : "neurons")\(bn)")
        }
    }
}

struct Ckpt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ckpt", abstract: "Inspect, verify and benchmark checkpoints.",
        subcommands: [CkptInspect.self, CkptVerify.self, CkptExport.self, CkptBench.self])
}

struct CkptInspect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show a checkpoint's header, tensors, sizes and checksum status.")
    @Argument(help: "A checkpoint file (.pck).") var file: String
    @Flag(name: .long, help: "Also print the metadata JSON.") var metadata = false

    func run() throws {
        do {
            let bytes = try CheckpointStore.readAll(file)
            let info = try CheckpointFile.inspect(bytes)
            print("file          \(file)")
            print("format        version \(info.version), flags \(info.flags)\(info.flags & CheckpointFile.flagShuffled != 0 ? " (f32 byte-shuffled)" : "")")
            print("size          \(info.fileBytes) bytes; payload \(info.payloadBytes) → \(info.compressedBytes) compressed "
                  + String(format: "(ratio %.3f)", info.compressionRatio))
            print(String(format: "checksum      CRC32 %08x (ok)", info.storedCRC))
            do { _ = try CheckpointFile.decode(bytes); print("zstd frame    ok (content checksum verified)") } catch {
                print("zstd frame    BAD: \(error)"); throw ExitCode(1)
            }
            if let run = info.metadata["run"] {
                print("position      \(run["epochs_completed"]?.intValue ?? -1) epochs done, step \(run["step_in_epoch"]?.intValue ?? -1) of the next")
            }
            if let p = info.metadata["provenance"] { print("provenance    \(p.rendered)") }
            print("tensors       \(info.entries.count)")
            for e in info.entries {
                print("  \(e.name.padding(toLength: 44, withPad: " ", startingAt: 0)) \(e.dtype.name) \(e.shape)  \(e.byteLength) B")
            }
            if metadata { print(info.metadata.pretty) }
        } catch let e as CheckpointError {
            printErr("pruned: \(file): \(e)")
            throw ExitCode(1)
        }
    }
}

struct CkptVerify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Verify every checkpoint of a run directory (read-only).")
    @Argument(help: "A run directory (or its checkpoints/ directory).") var dir: String

    func run() throws {
        let d = FileManager.default.fileExists(atPath: RunDirectory(dir).checkpoints) ? RunDirectory(dir).checkpoints : dir
        let store = CheckpointStore(directory: d)
        let results = store.verifyAll()
        if results.isEmpty { printErr("pruned: no checkpoints in \(d)"); throw ExitCode(1) }
        var bad = 0
        for r in results {
            if let e = r.error { bad += 1; print("BAD  \(r.file): \(e)") } else { print("ok   \(r.file)") }
        }
        let quarantined = ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).filter { $0.hasSuffix(".corrupt") }
        for q in quarantined.sorted() { print("quarantined  \(q)") }
        if let latest = store.latestPointer() {
            print("LATEST -> \(latest)\(results.contains { $0.file == latest } ? "" : " (missing)")")
        }
        if let newestGood = results.last(where: { $0.error == nil }) { print("a resume would use \(newestGood.file)") }
        if bad > 0 { throw ExitCode(1) }
    }
}

struct CkptBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Time checkpoint write and read for full-width models with Adam state (use a release build).")
    @Option(name: .long, help: "Comma-separated models.") var models = "vgg11_bn,resnet18"
    @Option(name: .long, help: "zstd level.") var level = 1
    @Option(name: .long, help: "Scratch directory (a checkpoints/ subdirectory is created and removed).") var dir = "/tmp"

    func run() throws {
        for name in models.split(separator: ",") {
            guard let arch = Architecture(rawValue: String(name)) else { throw ValidationError("unknown model \(name)") }
            for line in try CheckpointBenchmark.run(architecture: arch, level: level, directory: dir + "/pruned-ckpt-bench-\(getpid())") {
                print(line); fflush(stdout)
            }
        }
    }
}

struct CkptExport: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Export a checkpoint's weights and masks (safetensors) and metrics (CSV).")
    @Argument(help: "A checkpoint file (.pck).") var file: String
    @Option(name: .long, help: "Write weights, BatchNorm buffers and masks here (safetensors).") var safetensors: String?
    @Option(name: .long, help: "Write the epoch records here (CSV).") var csv: String?

    func run() throws {
        guard safetensors != nil || csv != nil else { throw ValidationError("give --safetensors and/or --csv") }
        do {
            let snap = try CheckpointFile.decode(try CheckpointStore.readAll(file))
            if let path = safetensors {
                try CheckpointStore.durableWrite(try CheckpointExport.safetensors(snap), to: path, crashHook: false)
                print("wrote \(path)")
            }
            if let path = csv {
                try CheckpointStore.durableWrite(Array(try CheckpointExport.csv(snap).utf8), to: path, crashHook: false)
                print("wrote \(path)")
            }
        } catch let e as CheckpointError {
            printErr("pruned: \(file): \(e)")
            throw ExitCode(1)
        }
    }
}

struct SlurmScript: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm-script",
        abstract: "Print the Slurm array task script (examples/slurm/pruned-array.sbatch): one run directory per task.",
        discussion: "Its header gives the sbatch options; README.md's \"Running on a Slurm cluster\" section the workflow.")

    func run() throws { print(SlurmTask.script, terminator: "") }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "The report of `prunectl report` over run directories, without a daemon.",
        discussion: """
        Each DIR is a run directory (spec.json, metrics.jsonl, summary.json) or a directory of run directories. \
        Runs without summary.json (unfinished, stopped or failed) are excluded and listed. Runs are grouped into \
        configurations by their spec without seed and name. --figures DIR writes accuracy-over-epochs.svg, \
        rate-sweep.svg, stability-vs-accuracy.svg and report.csv.
        """)

    @Argument(help: "Run directories, or directories of run directories.") var dirs: [String]
    @Option(name: .long, help: "table, csv or json.") var format = "table"
    @Option(name: .long, help: "Write the SVG figures and report.csv into this directory.") var figures: String?
    @Option(name: .long, help: "Bootstrap resamples.") var resamples = Statistics.defaultResamples
    @Option(name: .long, help: "Bootstrap seed (results are reproducible for a seed).") var seed: UInt64 = 0

    func validate() throws {
        guard !dirs.isEmpty else { throw ValidationError("name at least one run directory") }
        guard ReportFormat(rawValue: format) != nil else { throw ValidationError("--format must be table, csv or json") }
        guard (10 ... 1_000_000).contains(resamples) else { throw ValidationError("--resamples must be in 10…1000000") }
    }

    func run() throws {
        let fmt = ReportFormat(rawValue: format) ?? .table
        do {
            let found = try RunDirectories.load(dirs)
            guard !found.finished.isEmpty else {
                printErr("pruned: no finished runs (summary.json) in \(dirs.joined(separator: ", "))"
                         + (found.exclusionNote.map { "; " + $0 } ?? ""))
                throw ExitCode(1)
            }
            let report = Results.Report(runs: found.finished, resamples: resamples, seed: seed)
            if fmt == .json, case .object(var pairs) = report.json() {
                pairs.append(("unfinished", found.unfinishedJSON))
                print(JSON.object(pairs).rendered)
            } else {
                print(ReportOutput.text(report, runs: found.finished, format: fmt), terminator: "")
            }
            if let note = found.exclusionNote {
                if fmt == .table { print(note) } else { printErr("pruned: " + note) }
            }
            if let dir = figures {
                let files = try ReportOutput.writeFigures(found.finished, report: report, to: dir, resamples: resamples, seed: seed)
                printErr("pruned: wrote \(files.joined(separator: ", ")) to \(dir)")
            }
        } catch let e as ResultsError {
            printErr("pruned: \(e)")
            throw ExitCode(1)
        }
    }
}
