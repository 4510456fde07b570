// The daemon's face to the two kinds of thread that are not its own: the control loop
// (ControlServer, the socket transport) and the run workers (RunWorker). They call these
// methods and never touch the daemon's lock or fields. Here too lives the lifecycle the control
// loop used to decide: when to stop accepting and exit (SIGTERM, `drain`), and what to tell
// systemd (STOPPING=1, EXTEND_TIMEOUT_USEC, WATCHDOG=1, STATUS=).
import Control
import Foundation
import PrunedJSON
import Training

/// What the control loop does next.
enum LoopAction: Equatable {
    /// Serve connections; accept new ones only when `accepting`.
    case serve(accepting: Bool)
    /// Every run is stopped or finished: deliver what is owed, flush and return.
    case exit
}

/// The lifecycle's own state. Only the control thread touches it (through `tick`).
struct LifecycleState {
    var accepting = true
    var lastWatchdog = 0.0
    var lastStatus = ""
    var lastStatusTime = 0.0
    var lastExtend = 0.0
    /// systemd's watchdog interval for this process (WATCHDOG_USEC), or nil.
    let watchdogInterval: Double? = Notify.watchdogInterval()
}

extension Daemon {
    // MARK: for the control loop

    /// One turn of the lifecycle, called by the control loop before each poll: decides whether
    /// to keep accepting or to exit, and sends systemd its notifications.
    func tick() -> LoopAction {
        let t = Trainer.monotonicSeconds()
        let (stop, running, drain, alive) = lock.withLock { (stopping, workers.count, draining, workersAliveLocked()) }
        if stop != nil || drain == .finish {
            if lifecycle.accepting && stop != nil {
                lifecycle.accepting = false
                Notify.send("STOPPING=1")
            }
            if running == 0 {
                if lifecycle.accepting { Notify.send("STOPPING=1") }
                return .exit
            }
            if stop != nil && t - lifecycle.lastExtend > 10 {
                lifecycle.lastExtend = t
                Notify.send("EXTEND_TIMEOUT_USEC=30000000")
            }
        }
        // The watchdog is fed only while the loop turns and every running run steps.
        if let w = lifecycle.watchdogInterval, t - lifecycle.lastWatchdog >= w / 3 {
            if alive {
                Notify.send("WATCHDOG=1")
            } else {
                logger.log(.error, "a run has made no progress for \(Int(config.stallLimit)) s: withholding the watchdog ping")
            }
            lifecycle.lastWatchdog = t
        }
        // STATUS= at most once a second, and only when it changed.
        if t - lifecycle.lastStatusTime >= 1 {
            let line = lock.withLock { () -> String? in
                guard statusDirty else { return nil }
                statusDirty = false
                return statusLineLocked()
            }
            if let line, line != lifecycle.lastStatus {
                Notify.send("STATUS=" + line)
                lifecycle.lastStatus = line
                lifecycle.lastStatusTime = t
            }
        }
        return .serve(accepting: lifecycle.accepting)
    }

    /// How long the control loop may sleep in poll (shorter with a watchdog to feed).
    var pollTimeoutMilliseconds: Int32 { Int32(min(1000, (lifecycle.watchdogInterval ?? 4) / 4 * 1000)) }

    /// Deferred replies that became ready (token, reply), in the order they did.
    func takeCompletions() -> [(Int, Reply)] {
        lock.withLock {
            let done = completions
            completions = []
            return done
        }
    }

    /// Events with a sequence number ≥ `cursor`, oldest first.
    func events(from cursor: UInt64) -> [Event] {
        lock.withLock { Array(ring.events(from: cursor)) }
    }

    /// The control loop's wake pipe: workers and handlers write a byte to it when there is
    /// something to deliver (-1 detaches).
    func attachWakeup(_ fd: Int32) {
        lock.withLock { wakeWrite = fd }
    }

    // MARK: for run workers

    /// Whether the run's worker should checkpoint and stop at this step boundary.
    func stopRequested(_ id: RunID) -> Bool {
        lock.withLock { workers[id]?.stop != nil }
    }

    /// Whether a `checkpoint` request waits for the run's worker; it is then in flight.
    func takeCheckpointRequest(_ id: RunID) -> Bool {
        lock.withLock {
            guard let w = workers[id], !w.checkpointWaiters.isEmpty else { return false }
            w.checkpointInFlight += w.checkpointWaiters
            w.checkpointWaiters = []
            return true
        }
    }
}
