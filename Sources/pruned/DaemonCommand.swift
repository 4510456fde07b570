// `pruned daemon`: the queue daemon's options (paths, slots, access, connection limits, Slurm
// defaults) turned into a DaemonConfiguration; the daemon itself is Sources/Daemon.
import ArgumentParser
import Checkpointing
import Control
import Daemon
import Foundation

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
