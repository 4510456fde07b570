// submit and sweep: expand seeds and grids into one `submit` request per run, all in one group,
// each tagged with its grid values and seed; print the ids (one per line, or JSON).
import ArgumentParser
import Control
import ControlClient
import Foundation
import PrunedJSON

/// Where runs go: --slurm and its options, or --local (submit, sweep and fork).
struct ExecutorOptions: ParsableArguments {
    @Flag(name: .long, help: "Run on Slurm: the runs of one command become one sbatch array job.") var slurm = false
    @Flag(name: .long, help: "Run locally on the daemon's machine (when the daemon's default is Slurm).") var local = false
    @Option(name: .long, help: "Slurm partition (implies --slurm).") var partition: String?
    @Option(name: .long, help: "Slurm time limit per task, e.g. 2:00:00 (implies --slurm).") var time: String?
    @Option(name: .long, help: "CPUs, and threads, per Slurm task (implies --slurm).") var cpusPerTask: String?
    @Option(name: .long, help: "Memory per Slurm task, e.g. 4G (implies --slurm).") var mem: String?
    @Option(name: .long, help: "Tasks of the array running at once (implies --slurm).") var maxConcurrent: String?
    @Option(name: .long, help: "Slurm account (implies --slurm).") var account: String?
    @Option(name: .long, help: "Further sbatch option --NAME[=VALUE] (repeatable; implies --slurm).") var sbatchArg: [String] = []

    /// --slurm and its options; all runs of one command share a batch name, so one array job.
    func applySlurm(to e: inout RunEdits) throws {
        var o = SlurmOptions()
        let pairs: [(String, String?)] = [("partition", partition), ("time", time), ("cpus_per_task", cpusPerTask), ("mem", mem),
                                          ("max_concurrent", maxConcurrent), ("account", account)]
        do {
            for (k, v) in pairs { if let v { try o.set(k, v) } }
            for a in sbatchArg { try o.set("sbatch_arg", a) }
        } catch let err as ProtocolError {
            throw ValidationError("--" + err.message.dropFirst("slurm.".count).replacingOccurrences(of: "_", with: "-"))
        }
        let any = o != SlurmOptions()
        if local && (slurm || any) { throw ValidationError("--local cannot go with --slurm or Slurm options") }
        if local { e.executor = .local; return }
        guard slurm || any else { return }
        var bytes = [UInt8](repeating: 0, count: 4)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0 ... 255) }
        o.batch = "prunectl-" + bytes.map { String(format: "%02x", $0) }.joined()
        e.executor = .slurm
        e.slurm = o
    }
}

/// What submit and sweep share: the base spec and where the runs go.
struct SpecOptions: ParsableArguments {
    @Argument(help: "A preset name (see `pruned presets`).") var positionalPreset: String?
    @Option(name: .long, help: "A preset name (the same as giving it as the first argument).") var preset: String?
    @Option(name: .long, help: "A JSON run spec file instead of a preset.") var spec: String?
    @Option(name: [.customShort("s"), .long], help: "Spec override PATH=VALUE (repeatable), e.g. --set epochs=30 --set dataset.path=/data/fmnist.") var set: [String] = []
    @Option(name: .long, help: "Seeds: N, A..B or a comma list (each becomes a run tagged seed:N).") var seeds: String?
    @Option(name: .long, help: "Group of the new runs.") var group: String?
    @Option(name: .long, help: "Tag (repeatable).") var tag: [String] = []
    @Option(name: .long, help: "Priority (higher first).") var priority: Int?
    @Flag(name: .long, help: "Queue the runs held (release them later).") var hold = false
    @OptionGroup var executor: ExecutorOptions

    func baseEdits() throws -> RunEdits {
        var e = RunEdits()
        if positionalPreset != nil && preset != nil && positionalPreset != preset {
            throw ValidationError("two different presets: \(positionalPreset ?? "") and --preset \(preset ?? "")")
        }
        let preset = self.preset ?? positionalPreset
        switch (preset, spec) {
        case (nil, nil): throw ValidationError("name a preset or give --spec FILE")
        case (.some, .some): throw ValidationError("give a preset or --spec, not both")
        case (let p?, nil): e.preset = p
        case (nil, let path?):
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(path)") }
            do { e.spec = try JSON.parse(text) } catch { throw ValidationError("\(path): \(error)") }
            if case .object = e.spec {} else { throw ValidationError("\(path): a run spec is a JSON object") }
        }
        e.overrides = try set.map(parseOverride)
        e.group = group
        e.tags = tag.isEmpty ? nil : tag
        e.priority = priority
        e.hold = hold ? true : nil
        try executor.applySlurm(to: &e)
        return e
    }


    func seedList() throws -> [Int]? {
        guard let seeds else { return nil }
        return try SeedRange.parse(seeds)
    }
}

enum SeedRange {
    /// `7`, `1..10` (inclusive), `1,3,5`, or a mix `1..3,10`.
    static func parse(_ s: String) throws -> [Int] {
        var out: [Int] = []
        for part in s.split(separator: ",") {
            let bounds = part.components(separatedBy: "..")
            if bounds.count == 2, let a = Int(bounds[0]), let b = Int(bounds[1]), a >= 0, b >= a, b - a < 10_000 {
                out += Array(a ... b)
            } else if bounds.count == 1, let n = Int(part), n >= 0 {
                out.append(n)
            } else {
                throw ValidationError("--seeds: '\(part)' is not N or A..B (non-negative, A ≤ B)")
            }
        }
        guard !out.isEmpty else { throw ValidationError("--seeds is empty") }
        return out
    }
}

/// Submits each edit set; prints ids. Stops at the first rejection (earlier runs stay queued).
func submitAll(_ g: Global, _ all: [RunEdits]) throws {
    let c = try g.connect()
    var ids: [String] = []
    for e in all {
        do {
            let j = try c.call(.submit(e))
            if e.dryRun {
                // Nothing was queued: the daemon's canonical spec and the schedule it implies.
                if g.json { print(j.rendered) } else {
                    let dry = try DryRunReply(json: j)
                    let spec = dry.spec
                    print("would queue \(spec["name"]?.stringValue ?? "") (seed \(spec["seed"]?.intValue ?? 0), \(spec["model"]?.stringValue ?? ""), "
                          + "\(spec["epochs"]?.intValue ?? 0) epochs); nothing submitted")
                    print(dry.scheduleText, terminator: "")
                }
                continue
            }
            let id = try SubmitReply(json: j).id.description
            ids.append(id)
            if g.json { print(j.rendered) } else { print(id) }
        } catch let err as ProtocolError {
            if !ids.isEmpty { printErr("prunectl: submitted \(ids.count) of \(all.count) runs (\(ids.first ?? "")…\(ids.last ?? "")) before this error:") }
            throw err
        }
    }
}

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue runs from a preset or a spec file, one per seed.",
        discussion: "Example: prunectl submit F2_VGG_4 --seeds 1..10 --group vgg-L13 --set dataset.path=/data/cifar-10-batches-bin")
    @OptionGroup var g: Global
    @OptionGroup var s: SpecOptions
    @Flag(name: .long, help: "Validate and show each run's canonical spec and schedule (per epoch LR, units pruned and left) without queuing it.")
    var dryRun = false

    func run() throws {
        try guarded {
            var base = try s.baseEdits()
            base.dryRun = dryRun
            var all: [RunEdits] = []
            if let seeds = try s.seedList() {
                for seed in seeds {
                    var e = base
                    e.overrides.removeAll { $0.path == "seed" }
                    e.overrides.append(Override("seed", .number(Double(seed))))
                    e.tags = (e.tags ?? []) + ["seed:\(seed)"]
                    all.append(e)
                }
            } else {
                all = [base]
            }
            try submitAll(g, all)
        }
    }
}

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue the cartesian product of grids × seeds as one group, each run tagged with its values.",
        discussion: """
        Example: prunectl sweep F2_VGG_4 --grid pruning.target=smallest,largest --grid pruning.period=4,40 --seeds 1..5 --group rate
        Each --grid is PATH=V1,V2,… (values typed like overrides: numbers, true/false, strings; a JSON value in [...] or {...} \
        counts as one value). Runs get tags PATH:VALUE and seed:N.
        """)
    @OptionGroup var g: Global
    @OptionGroup var s: SpecOptions
    @Option(name: .long, help: "PATH=V1,V2,… (repeatable).") var grid: [String] = []
    @Flag(name: .long, help: "Print the runs that would be submitted, without submitting.") var dryRun = false

    func run() throws {
        try guarded {
            guard !grid.isEmpty || s.seeds != nil else { throw ValidationError("give at least one --grid or --seeds") }
            guard s.group != nil else { throw ValidationError("a sweep needs --group (reports and waits work per group)") }
            var axes: [(String, [JSON])] = []
            for spec in grid {
                guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else { throw ValidationError("--grid '\(spec)' is not PATH=V1,V2") }
                let path = String(spec[..<eq])
                let rest = String(spec[spec.index(after: eq)...])
                let values: [JSON]
                if rest.hasPrefix("[") || rest.hasPrefix("{") {
                    values = [try parseOverride(path + "=" + rest).value]
                } else {
                    values = try rest.split(separator: ",").map { try parseOverride(path + "=" + $0).value }
                }
                guard !values.isEmpty else { throw ValidationError("--grid \(path) has no values") }
                axes.append((path, values))
            }
            // Each value carries its tag: the value itself, or its position for JSON objects/arrays.
            var combos: [[(String, JSON, String)]] = [[]]
            for (path, values) in axes {
                combos = combos.flatMap { c in values.enumerated().map { i, v in
                    let label: String
                    switch v {
                    case .object, .array: label = "\(path):\(i + 1)"
                    default: label = "\(path):\(v.stringValue ?? v.rendered)"
                    }
                    return c + [(path, v, RunLabel.sanitized(label))]
                } }
            }
            let seeds: [Int] = try s.seedList() ?? []
            let base = try s.baseEdits()
            var all: [RunEdits] = []
            for combo in combos {
                for seed in seeds.isEmpty ? [nil] : seeds.map(Optional.some) {
                    var e = base
                    var tags = e.tags ?? []
                    for (path, v, tag) in combo {
                        e.overrides.removeAll { $0.path == path }
                        e.overrides.append(Override(path, v))
                        tags.append(tag)
                    }
                    if let seed {
                        e.overrides.removeAll { $0.path == "seed" }
                        e.overrides.append(Override("seed", .number(Double(seed))))
                        tags.append("seed:\(seed)")
                    }
                    e.tags = tags
                    all.append(e)
                }
            }
            if dryRun {
                for e in all { print(Request.submit(e).rendered) }
                printErr("prunectl: \(all.count) runs (dry run, nothing submitted)")
                return
            }
            try submitAll(g, all)
        }
    }
}
