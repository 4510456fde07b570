// The options of a foreground run: forking, stop and checkpoint requests, the convolution
// algorithm, and the hooks the daemon, ProgressFile and tests attach to it.
import Engine
import Foundation

/// How a foreground run treats an existing run directory and stop requests.
public struct RunOptions {
    /// Resume from a checkpoint even though the spec differs from the recorded one.
    public var fork = false
    /// Polled between training steps: true stops the run after a checkpoint.
    public var stopRequested: () -> Bool = { false }
    /// Polled between training steps: true writes a checkpoint now (and training continues).
    public var checkpointRequested: () -> Bool = { false }
    /// Called after each step (tests use it to stop at chosen points).
    public var afterStep: ((Trainer) -> Void)?
    /// Called after every checkpoint attempt with the file written, or the error (the previous
    /// checkpoint is then intact).
    public var onCheckpoint: ((_ file: String?, _ error: String?) -> Void)?
    /// Called when an epoch ends, after its metrics row is durable.
    public var onEpoch: ((EpochRecord) -> Void)?
    /// Called once the trainer is ready (data loaded, checkpoint restored): total epochs and
    /// steps per epoch, epochs already done, step within the current epoch.
    public var onStart: ((_ trainer: Trainer, _ resumedFrom: String?) -> Void)?
    /// Appended to the "stopped …; checkpoint written" line (the daemon says what happens next itself).
    public var stopHint = ", resume with the same command"
    /// Data already in memory (tests); nil loads the spec's dataset.
    public var data: PreparedData?
    /// The algorithm of every convolution (`pruned run --conv`). Not part of the spec: other
    /// algorithms than `automatic` change the results in rounding, so a run resumed without
    /// the same setting is no longer the same computation.
    public var convolution: ConvAlgorithm = .automatic
    /// Pauses in seconds before each retry of the checkpoint that ends the last epoch, which
    /// must be written before summary.json (one attempt, then one retry per delay).
    public var finalCheckpointRetryDelays: [Double] = [0.5, 1, 2]

    public init(fork: Bool = false, stopRequested: @escaping () -> Bool = { false }) {
        self.fork = fork
        self.stopRequested = stopRequested
    }
}
