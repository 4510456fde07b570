// The protocol's verbs with their usage lines and summaries: what `help` prints and
// docs/PROTOCOL.md quotes.

/// The protocol's verbs, with their usage lines (for `help` and the docs).
public enum Verb: String, CaseIterable, Sendable {
    case ping, version, help, status, submit, list, show, pause, resume, cancel, hold, release, priority, set, fork,
         metrics, checkpoint, logs, subscribe, unsubscribe, drain, quit

    public var usage: String {
        switch self {
        case .ping: return "ping"
        case .version: return "version"
        case .help: return "help [COMMAND]"
        case .status: return "status"
        case .submit: return "submit [PRESET] [spec={JSON}] [PATH=VALUE...] [group=G] [tag=T[,T...]] [priority=N] [hold=true] [executor=local|slurm] [slurm.KEY=VALUE...] [dry_run=true]"
        case .list: return "list [state=S[,S...]] [group=G] [tag=T] [owner=UID|NAME]"
        case .show: return "show ID"
        case .pause: return "pause ID"
        case .resume: return "resume ID"
        case .cancel: return "cancel ID"
        case .hold: return "hold ID"
        case .release: return "release ID"
        case .priority: return "priority ID N"
        case .set: return "set ID [PATH=VALUE...] [group=G] [tag=T[,T...]] [priority=N]  (group= and tag= with no value clear them)"
        case .fork: return "fork ID [checkpoint=FILE] [PATH=VALUE...] [group=G] [tag=T[,T...]] [priority=N] [hold=true] [executor=local|slurm] [slurm.KEY=VALUE...]"
        case .metrics: return "metrics ID [kind=epochs|prunes] [since=EPOCH]"
        case .checkpoint: return "checkpoint ID"
        case .logs: return "logs ID [tail=N]"
        case .subscribe: return "subscribe [since=SEQ] [run=ID] [group=G]"
        case .unsubscribe: return "unsubscribe"
        case .drain: return "drain [finish|now|off]"
        case .quit: return "quit"
        }
    }

    public var summary: String {
        switch self {
        case .ping: return "check that the daemon answers"
        case .version: return "protocol and daemon versions"
        case .help: return "list the commands, or show one command's usage"
        case .status: return "daemon overview: runs per state, running runs, draining"
        case .submit: return "queue a new run from a preset and/or an inline spec, with spec overrides by dotted path"
        case .list: return "list runs, optionally filtered"
        case .show: return "one run: spec, state, progress, last checkpoint, metrics summary"
        case .pause: return "checkpoint a running run at its next step and free it; answers once paused"
        case .resume: return "queue a paused, interrupted or failed run again; it continues from its newest checkpoint"
        case .cancel: return "cancel a run (a running run is checkpointed first)"
        case .hold: return "keep a queued run from being dispatched"
        case .release: return "let a held run be dispatched again"
        case .priority: return "change a run's priority (higher runs first; ties in submission order)"
        case .set: return "edit a queued or held run that has not started: spec overrides, group, tags, priority"
        case .fork: return "new run starting from a checkpoint of another run, with overrides"
        case .metrics: return "per-epoch rows, or the pruning events with their instability"
        case .checkpoint: return "write a checkpoint of a running run now; answers with its file"
        case .logs: return "the last N lines (default 100, at most 10000) of the run's log"
        case .subscribe: return "receive events (EVENT lines) on this connection, replaying from a sequence number"
        case .unsubscribe: return "stop receiving events"
        case .drain: return "stop dispatching; finish: exit once running runs complete; now: checkpoint them and exit; off: withdraw"
        case .quit: return "close this connection"
        }
    }
}
