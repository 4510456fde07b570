// What a run would be, before it runs: `pruned presets` (the paper's experiment presets),
// `pruned schedule` (a spec's per-epoch LR and pruning) and `pruned layers` (a model's prunable
// layers).
import ArgumentParser
import Control
import Engine
import Foundation
import PrunedJSON
import Training

struct PresetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "presets", abstract: "List the paper's experiment presets.")
    @Flag(name: .long, help: "Print each preset's full spec as JSON (one per line).") var json = false
    @Argument(help: "Show only this preset.") var name: String?

    func run() throws {
        let list = Presets.all.filter { name == nil || $0.name == name }
        if list.isEmpty { printErr("pruned: no preset \(name ?? "")"); throw ExitCode(2) }
        for p in list {
            if json { print(p.spec.json.rendered) } else { print(p.name.padding(toLength: 11, withPad: " ", startingAt: 0) + p.summary) }
        }
    }
}

struct ScheduleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Print what a run will do before it runs: per epoch the LR and each layer's units pruned and left, then totals.",
        discussion: """
        The spec is built as the daemon builds a submitted one (a preset's epochs=N scales its schedule keeping its shape, \
        and any note on what the scaling could not keep is printed); the amounts come from the trainer's pruning code. \
        Epochs are 0-based, as the spec's start/end. The dataset is not read.
        """)

    @Argument(help: "A preset name (see `pruned presets`).") var preset: String?
    @Option(name: .long, help: "Path of a JSON run spec instead of a preset.") var spec: String?
    @Option(name: .long, help: "Number of epochs (a preset's schedule is scaled, keeping its shape).") var epochs: Int?
    @Option(name: [.customShort("s"), .long], help: "Spec override PATH=VALUE (repeatable), as for submit.") var set: [String] = []
    @Flag(name: .long, help: "Print JSON: the canonical spec and the schedule.") var json = false

    func validate() throws {
        if (preset == nil) == (spec == nil) { throw ValidationError("name a preset or give --spec FILE (not both)") }
        if let epochs, !(1 ... 100_000).contains(epochs) { throw ValidationError("--epochs must be in 1…100000") }
    }

    func run() throws {
        var overrides: [SpecBuilder.Override] = []
        for item in set {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else { throw ValidationError("--set '\(item)' is not PATH=VALUE") }
            let token = Token(key: String(item[..<eq]), value: String(item[item.index(after: eq)...]))
            do { overrides.append((String(item[..<eq]), try token.jsonValue())) } catch let e as ProtocolError { throw ValidationError(e.message) }
        }
        if let epochs { overrides.removeAll { $0.path == "epochs" }; overrides.append(("epochs", .number(Double(epochs)))) }
        do {
            var base: JSON?
            if let spec {
                guard let text = try? String(contentsOfFile: spec, encoding: .utf8) else {
                    printErr("pruned: cannot read the spec file \(spec)")
                    throw ExitCode(2)
                }
                do { base = try JSON.parse(text) } catch let e as JSONParseError { throw SpecError(field: "", message: e.description) }
            }
            let s = try RunSpec(json: try SpecBuilder.compose(base: base, preset: preset, overrides: overrides).json)
            try s.validateAgainstModel(classes: s.data.kind.classes, memoryLimit: nil)
            let preview = try SchedulePreview(spec: s)
            if json {
                print(JSON.object([("spec", s.json), ("schedule", preview.json)]).rendered)
            } else {
                print("\(preset ?? spec ?? ""): \(s.architecture.rawValue), \(s.epochs) epochs, "
                      + (s.pruning.map { "\($0.target.rawValue) \($0.score.rawValue) \($0.granularity.rawValue) pruning" } ?? "no pruning"))
                print(preview.text(), terminator: "")
            }
        } catch let e as SpecSourceError {
            printErr("pruned: \(e.message)")
            throw ExitCode(2)
        } catch let e as SpecError {
            printErr("pruned: \(preset ?? spec ?? ""): \(e)")
            throw ExitCode(2)
        }
    }
}

struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a model's prunable layers (names for the spec's pruning.layers).")
    @Option(name: .long, help: "Model: conv4, vgg11_bn, resnet18, resnet20, resnet56.") var model: String
    @Option(name: .long, help: "Number of classes.") var classes = 10

    func run() throws {
        guard let arch = Architecture(rawValue: model) else {
            printErr("pruned: unknown model \(model); allowed: \(Architecture.allCases.map(\.rawValue).joined(separator: ", "))")
            throw ExitCode(2)
        }
        let net = ModelFactory.make(arch, classes: classes, seed: 0)
        for l in net.prunableLayers() {
            let bn = l.batchNorm.map { " (then \($0.name))" } ?? ""
            print("\(l.name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(l.kind)  \(l.structuredUnits) \(l.kind == "conv" ? "filters" : "neurons")\(bn)")
        }
    }
}
