// Where a run executes (`executor=local|slurm`) and the sbatch options of a Slurm run, as the
// protocol carries them: `slurm.partition=P slurm.time=T slurm.cpus_per_task=N slurm.mem=M
// slurm.max_concurrent=K slurm.account=A slurm.sbatch_arg=ARG… slurm.batch=B`. Every value is
// validated here, completely: the daemon passes them to sbatch as argv elements (never through
// a shell), and the character sets below keep them to what sbatch means by them.
import PrunedJSON

public enum Executor: String, CaseIterable, Sendable, Equatable {
    case local, slurm
}

/// The sbatch options of a Slurm run. Runs with equal options and the same `batch` that are
/// queued together are submitted as one array job.
public struct SlurmOptions: Equatable, Hashable, Sendable {
    public var partition: String?
    /// sbatch --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS.
    public var time: String?
    /// Also the run's thread count on the node.
    public var cpusPerTask: Int?
    /// sbatch --mem: a number with an optional K/M/G/T suffix.
    public var mem: String?
    /// The array's `%K`: tasks of the array running at once.
    public var maxConcurrent: Int?
    public var account: String?
    /// Further sbatch options, each one argv element starting with `--`.
    public var sbatchArgs: [String] = []
    /// Runs of one submission (one `prunectl sweep`) share a batch name and so one array job.
    public var batch: String?

    public init() {}

    public static let keys = ["partition", "time", "cpus_per_task", "mem", "max_concurrent", "account", "sbatch_arg", "batch"]
    public static let maxSbatchArgs = 16
    /// Options the daemon sets itself; an sbatch_arg may not override them.
    static let reservedArgs = ["--array", "--output", "--error", "--open-mode", "--requeue", "--no-requeue", "--signal",
                               "--parsable", "--job-name", "--wrap", "--export", "--cpus-per-task", "--partition", "--time",
                               "--mem", "--account", "--chdir", "--uid", "--gid", "--wait", "--test-only"]

    /// Fills `self` from the value of `slurm.KEY=VALUE`; throws BAD_ARGUMENT naming what is wrong.
    public mutating func set(_ key: String, _ value: String) throws {
        func bad(_ why: String) -> ProtocolError {
            let shown = value.count > 40 ? value.prefix(40) + "…" : Substring(value)
            return ProtocolError(.badArgument, "slurm.\(key) '\(shown)': \(why)")
        }
        func word(_ allowed: String, max: Int) throws -> String {
            guard !value.isEmpty, value.utf8.count <= max else { throw bad("must be 1–\(max) characters") }
            guard value.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                    || allowed.unicodeScalars.contains($0) }) else {
                throw bad("only letters, digits and \(allowed) are allowed")
            }
            return value
        }
        func count(_ range: ClosedRange<Int>) throws -> Int {
            guard value.utf8.count <= 6, value.utf8.allSatisfy({ (48 ... 57).contains($0) }), let n = Int(value), range.contains(n) else {
                throw bad("must be an integer in \(range.lowerBound)…\(range.upperBound)")
            }
            return n
        }
        switch key {
        case "partition": partition = try word("._-", max: 64)
        case "account": account = try word("._-", max: 64)
        case "batch": batch = try word("._-:", max: 64)
        case "time":
            guard value.utf8.count <= 16, value.utf8.allSatisfy({ (48 ... 57).contains($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "-") }),
                  let f = value.utf8.first, (48 ... 57).contains(f), let l = value.utf8.last, (48 ... 57).contains(l),
                  value.split(separator: "-").count <= 2, value.split(separator: ":", omittingEmptySubsequences: false).count <= 3,
                  !value.contains("::"), !value.contains("-:"), !value.contains(":-")
            else { throw bad("must be a Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS") }
            time = value
        case "mem":
            var digits = Substring(value)
            if let last = digits.last, "KMGTkmgt".contains(last) { digits = digits.dropLast() }
            guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }), Int(digits).map({ $0 > 0 }) == true else {
                throw bad("must be a positive number of megabytes with an optional K, M, G or T suffix (e.g. 4G)")
            }
            mem = value
        case "cpus_per_task": cpusPerTask = try count(1 ... 1024)
        case "max_concurrent": maxConcurrent = try count(1 ... 100_000)
        case "sbatch_arg":
            guard sbatchArgs.count < SlurmOptions.maxSbatchArgs else {
                throw ProtocolError(.badArgument, "slurm.sbatch_arg: at most \(SlurmOptions.maxSbatchArgs) per run")
            }
            guard value.hasPrefix("--"), value.utf8.count >= 3, value.utf8.count <= 256 else {
                throw bad("must be one long sbatch option of at most 256 bytes, written --NAME or --NAME=VALUE")
            }
            guard value.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
                throw bad("must be printable ASCII without spaces (it is one argv element of sbatch)")
            }
            let name = String(value.split(separator: "=", maxSplits: 1).first ?? "")
            guard !SlurmOptions.reservedArgs.contains(name) else {
                throw bad("\(name) is set by the daemon (or by its own slurm.* argument) and cannot be given as an sbatch_arg")
            }
            sbatchArgs.append(value)
        default:
            throw ProtocolError(.badArgument, "unknown Slurm option 'slurm.\(key.prefix(40))'; known: \(SlurmOptions.keys.map { "slurm." + $0 }.joined(separator: ", "))")
        }
    }

    /// The protocol arguments (`slurm.KEY=VALUE`) that `set` reads back to equal options.
    public var arguments: [String] {
        var out: [String] = []
        if let v = partition { out.append("slurm.partition=" + Lexer.quoteIfNeeded(v)) }
        if let v = time { out.append("slurm.time=" + Lexer.quoteIfNeeded(v)) }
        if let v = cpusPerTask { out.append("slurm.cpus_per_task=\(v)") }
        if let v = mem { out.append("slurm.mem=" + Lexer.quoteIfNeeded(v)) }
        if let v = maxConcurrent { out.append("slurm.max_concurrent=\(v)") }
        if let v = account { out.append("slurm.account=" + Lexer.quoteIfNeeded(v)) }
        for a in sbatchArgs { out.append("slurm.sbatch_arg=" + Lexer.quoteIfNeeded(a)) }
        if let v = batch { out.append("slurm.batch=" + Lexer.quoteIfNeeded(v)) }
        return out
    }

    /// `other`'s options where given, else these (daemon defaults under a request's options).
    public func overlaid(with other: SlurmOptions) -> SlurmOptions {
        var r = self
        if let v = other.partition { r.partition = v }
        if let v = other.time { r.time = v }
        if let v = other.cpusPerTask { r.cpusPerTask = v }
        if let v = other.mem { r.mem = v }
        if let v = other.maxConcurrent { r.maxConcurrent = v }
        if let v = other.account { r.account = v }
        if !other.sbatchArgs.isEmpty { r.sbatchArgs = other.sbatchArgs }
        if let v = other.batch { r.batch = v }
        return r
    }

    public var json: JSON {
        func s(_ v: String?) -> JSON { v.map { .string($0) } ?? .null }
        func n(_ v: Int?) -> JSON { v.map { .number(Double($0)) } ?? .null }
        return .object([("partition", s(partition)), ("time", s(time)), ("cpus_per_task", n(cpusPerTask)), ("mem", s(mem)),
                        ("max_concurrent", n(maxConcurrent)), ("account", s(account)),
                        ("sbatch_args", .array(sbatchArgs.map { .string($0) })), ("batch", s(batch))])
    }

    /// Reads options back from `json` (the ledger), validating them as a request would.
    public init(json j: JSON) throws {
        for key in ["partition", "time", "mem", "account", "batch"] {
            if let v = j[key]?.stringValue { try set(key, v) }
        }
        for key in ["cpus_per_task", "max_concurrent"] {
            if let v = j[key]?.intValue { try set(key, String(v)) }
        }
        for a in j["sbatch_args"]?.arrayValue ?? [] {
            if let v = a.stringValue { try set("sbatch_arg", v) }
        }
    }
}
