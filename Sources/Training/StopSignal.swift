// Stop and checkpoint requests by signal for foreground runs (`pruned run`, Slurm tasks).
import Foundation
import Synchronization

/// SIGTERM/SIGINT handling for foreground runs: the handler only sets a flag; the training
/// loop checks it between steps, checkpoints and returns. A second SIGINT exits at once.
/// SIGUSR1 asks for a checkpoint at the next step boundary without stopping.
public enum StopSignal {
    static let flag = Atomic<Bool>(false)
    static let checkpointFlag = Atomic<Bool>(false)

    public static func install() {
        _ = flag.load(ordering: .relaxed)
        _ = checkpointFlag.load(ordering: .relaxed)
        // A parent may have left the signals blocked (the mask survives exec): unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGUSR1)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        signal(SIGUSR1) { _ in StopSignal.checkpointFlag.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in StopSignal.flag.store(true, ordering: .relaxed) }
        signal(SIGINT) { _ in
            if StopSignal.flag.exchange(true, ordering: .relaxed) { _exit(130) }
        }
    }

    public static var requested: Bool { flag.load(ordering: .relaxed) }
    public static func request() { flag.store(true, ordering: .relaxed) }
    public static func reset() { flag.store(false, ordering: .relaxed); checkpointFlag.store(false, ordering: .relaxed) }
    /// Whether a checkpoint was requested (SIGUSR1) since the last call.
    public static func takeCheckpointRequest() -> Bool { checkpointFlag.exchange(false, ordering: .relaxed) }
}
