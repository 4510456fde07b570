// What a Slurm run carries besides its spec: its sbatch options and what the daemon knows of its
// job (id, array index, node, Slurm's state and reason, restarts, the pending submission). The
// daemon's Slurm executor keeps it up to date; the run record stores it (`slurm`) in the ledger
// and in replies, where prunectl reads it back.
import PrunedJSON

/// A Slurm run's options and what the daemon knows of its job.
public struct SlurmRun: Equatable, Sendable {
    public var options: SlurmOptions
    public var jobID: String?
    public var arrayIndex: Int?
    public var node: String?
    /// Slurm's state of the task as last seen (PENDING, RUNNING, …).
    public var state: String?
    /// Slurm's reason for a pending task (Priority, Resources, JobHeldUser, …).
    public var slurmReason: String?
    /// True from a successful sbatch until the task is seen to have ended.
    public var active = false
    public var restarts = 0
    public var submitAttempts = 0
    /// Resubmissions after the task vanished without finishing.
    public var resubmits = 0
    /// Why the run is not submitted yet (the controller was unreachable …).
    public var note: String?
    /// The task's output file (sbatch --output).
    public var output: String?
    /// An sbatch whose answer has not been recorded: written to the ledger before sbatch runs
    /// and cleared when its answer is. Found set at start (the daemon died meanwhile) or after a
    /// timed-out sbatch, it makes the executor look for a job of that name and re-attach to it
    /// instead of submitting the run a second time.
    public var submission: Submission?

    public struct Submission: Equatable, Sendable {
        /// The job name, unique per submission: pruned-STATEID-FIRSTRUN-ATTEMPT.
        public var jobName: String
        /// The batch directory (runs.txt and the tasks' output files).
        public var directory: String
        /// When sbatch was started (seconds since 1970).
        public var since: Double

        public init(jobName: String, directory: String, since: Double) {
            self.jobName = jobName
            self.directory = directory
            self.since = since
        }
    }

    public init(options: SlurmOptions) { self.options = options }

    public var taskID: String? { jobID.flatMap { j in arrayIndex.map { "\(j)_\($0)" } } }

    public var json: JSON {
        func s(_ v: String?) -> JSON { v.map { .string($0) } ?? .null }
        return .object([
            ("job_id", s(jobID)), ("array_index", arrayIndex.map { .number(Double($0)) } ?? .null), ("task", s(taskID)),
            ("node", s(node)), ("state", s(state)), ("reason", s(slurmReason)), ("active", .bool(active)),
            ("restarts", .number(Double(restarts))), ("submit_attempts", .number(Double(submitAttempts))),
            ("resubmits", .number(Double(resubmits))), ("note", s(note)), ("output", s(output)), ("options", options.json),
            ("submission", submission.map { .object([("job_name", .string($0.jobName)), ("directory", .string($0.directory)),
                                                     ("since", .number($0.since))]) } ?? .null),
        ])
    }

    /// Reads it back from `json` (a ledger record or a reply). Options are validated as a
    /// request's are: invalid ones throw that BAD_ARGUMENT ProtocolError.
    public init(json j: JSON) throws {
        options = try SlurmOptions(json: j["options"] ?? .object([]))
        jobID = j["job_id"]?.stringValue
        arrayIndex = j["array_index"]?.intValue
        node = j["node"]?.stringValue
        state = j["state"]?.stringValue
        slurmReason = j["reason"]?.stringValue
        active = j["active"]?.boolValue ?? false
        restarts = j["restarts"]?.intValue ?? 0
        submitAttempts = j["submit_attempts"]?.intValue ?? 0
        resubmits = j["resubmits"]?.intValue ?? 0
        note = j["note"]?.stringValue
        output = j["output"]?.stringValue
        if let sub = j["submission"], let name = sub["job_name"]?.stringValue, let dir = sub["directory"]?.stringValue {
            submission = Submission(jobName: name, directory: dir, since: sub["since"]?.doubleValue ?? 0)
        }
    }
}
