// pruned: the training daemon's executable. Its commands, one file per family:
//   run            one run in the foreground, resumable from its checkpoints (RunCommand.swift)
//   presets, schedule, layers
//                  the paper's presets, what a spec will do, a model's prunable layers (SpecCommands.swift)
//   daemon         the queue daemon controlled over a Unix socket (DaemonCommand.swift)
//   report         the report over run directories, without a daemon (ReportCommand.swift)
//   bench, daemon-bench
//                  training throughput; control-socket latency under load (BenchCommands.swift)
//   ckpt inspect, ckpt verify, ckpt export, ckpt bench
//                  checkpoint tools (CheckpointCommands.swift)
//   slurm-script   the Slurm array task script (SlurmCommand.swift)
// Kept to argument parsing; the work lives in Training, Checkpointing, Daemon and Results.
import ArgumentParser
import Control
import Foundation

struct Pruned: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pruned",
        abstract: "Train and prune CNNs for generalization-stability experiments.",
        version: ProtocolInfo.softwareVersion,
        subcommands: [DaemonCommand.self, DaemonBench.self, Run.self, Bench.self, PresetsCommand.self, ScheduleCommand.self, Layers.self,
                      Ckpt.self, SlurmScript.self, ReportCommand.self])
}

/// One line on standard error.
func printErr(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8) ?? Data()) }

Pruned.main()
