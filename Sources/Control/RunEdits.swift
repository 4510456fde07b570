// What `submit`, `set` and `fork` change about a run: spec overrides by dotted path and the
// run's own labels, priority, hold and executor.
import PrunedJSON

/// A change to one field of a run spec, by dotted path (`optimizer.lr`, `dataset.path`).
public struct Override: Equatable, Sendable {
    public var path: String
    public var value: JSON
    public init(_ path: String, _ value: JSON) { self.path = path; self.value = value }
}

/// What `submit`, `set` and `fork` carry besides the run id.
public struct RunEdits: Equatable, Sendable {
    public var preset: String?
    /// A complete spec given inline (`spec={...}`).
    public var spec: JSON?
    public var overrides: [Override] = []
    public var group: String?
    /// nil: unchanged (set) / none (submit).
    public var tags: [String]?
    public var priority: Int?
    public var hold: Bool?
    /// Where the run executes (submit and fork only); nil: the daemon's default.
    public var executor: Executor?
    /// sbatch options (`slurm.KEY=VALUE`); nil when none were given.
    public var slurm: SlurmOptions?
    /// `submit dry_run=true`: validate and answer with the canonical spec and its schedule,
    /// creating no run.
    public var dryRun = false
    public init() {}

    public var isEmpty: Bool { self == RunEdits() }
}
