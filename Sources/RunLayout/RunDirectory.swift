// The layout of a run directory, in one place. Everything that reads or writes a run's files
// (the run itself, the daemon, reports, Slurm tasks) names them through this type:
//
//   DIR/spec.json       the canonical spec (written at creation and when a run (re)starts)
//   DIR/origin.json     who created the run and how (written once by the daemon; lets a run
//                       be recovered when the ledger has lost it)
//   DIR/metrics.jsonl   one JSON object per finished epoch, appended and fsynced by the run
//   DIR/summary.json    written atomically when the run has finished (its final checkpoint is
//                       durable first): its presence is what "finished" means
//   DIR/progress.json   the run's live progress, rewritten atomically while it trains
//   DIR/run.log         human-readable log lines
//   DIR/checkpoints/    checkpoint files and the LATEST pointer (see Checkpointing)
//   DIR/slurm-cancel    present while a Slurm run's task is cancelled on purpose (pause,
//                       cancel): its task does not requeue itself (see SlurmTask)
public struct RunDirectory: Sendable, Hashable {
    public let path: String

    public init(_ path: String) { self.path = path }

    public var spec: String { path + "/spec.json" }
    public var origin: String { path + "/origin.json" }
    public var metrics: String { path + "/metrics.jsonl" }
    public var summary: String { path + "/summary.json" }
    public var progress: String { path + "/progress.json" }
    public var log: String { path + "/run.log" }
    public var checkpoints: String { path + "/checkpoints" }
    public var slurmCancel: String { path + "/slurm-cancel" }

    public func checkpoint(_ file: String) -> String { checkpoints + "/" + file }
}
