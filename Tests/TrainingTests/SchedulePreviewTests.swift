// The schedule preview (`pruned schedule`, `submit dry_run=true`) says what the trainer will do:
// its amounts are compared with a real Pruner pruning a real network epoch by epoch, and the
// LR with the spec's schedule; the command itself is run as a process.
import Engine
import Foundation
import PrunedJSON
import Testing
import TestSupport
import Training

@Suite struct SchedulePreviewTests {
    @Test(arguments: ["F2_VGG_4", "F2_VGG_1", "F2_RN_2", "C4_U_L", "F5_2"])
    func previewMatchesWhatThePrunerDoes(_ name: String) throws {
        var (spec, _) = Presets.scale(try #require(Presets.named(name)).spec, toEpochs: 24)
        spec.width = 0.125
        let preview = try SchedulePreview(spec: spec)
        #expect(preview.epochs.count == 24)
        let plan = try #require(spec.pruning)
        let net = ModelFactory.make(spec.architecture, classes: spec.data.kind.classes, width: spec.width, seed: spec.seed)
        let pruner = try Pruner(plan: plan, network: net, seed: spec.seed, epochs: spec.epochs)
        let opt = Optimizer(kind: .adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0), parameterCount: net.parameterCount)
        for e in preview.epochs {
            #expect(e.lr == spec.schedule.rate(afterSteps: e.epoch))
            let done = pruner.prune(epoch: e.epoch, optimizer: opt) ?? []
            #expect(done.map(\.layer) == e.events.map(\.layer), "\(name) epoch \(e.epoch)")
            #expect(done.map(\.k) == e.events.map(\.pruned), "\(name) epoch \(e.epoch)")
            let left = Dictionary(uniqueKeysWithValues: zip(pruner.layers.map(\.name), pruner.kept.map { $0.filter { $0 }.count }))
            for ev in e.events { #expect(left[ev.layer] == ev.left, "\(name) epoch \(e.epoch) \(ev.layer)") }
        }
        for l in preview.layers {
            let i = try #require(pruner.layers.firstIndex { $0.name == l.name })
            #expect(l.left == pruner.kept[i].filter { $0 }.count && l.units == pruner.kept[i].count && l.pruned + l.left == l.units)
        }
        let json = preview.json
        #expect(json["epochs"]?.arrayValue?.count == 24 && json["scaling"]?["from_epochs"]?.intValue == 325 || name == "C4_U_L")
        #expect(preview.text().contains("total"))
    }

    @Test func aPlanThatDoesNotFitTheModelIsASpecError() throws {
        var spec = try #require(Presets.named("F2_VGG_4")).spec
        spec.pruning?.layers[0].name = "features.conv99"
        #expect(throws: SpecError.self) { try SchedulePreview(spec: spec) }
    }

    /// `pruned schedule` as a process: text with the scaling note, JSON, and clear errors.
    @Test func theCommand() throws {
        func run(_ args: [String]) throws -> (Int32, String, String) {
            let r = try runTool(prunedBinary, ["schedule"] + args)
            return (r.status, r.out, r.err)
        }
        let (code, text, _) = try run(["F2_VGG_4", "--epochs", "24"])
        #expect(code == 0)
        #expect(text.contains("scaled from 325 to 24 epochs") && text.contains("note: tail:") && text.contains("features.conv8"))
        let (jcode, jtext, _) = try run(["F2_VGG_4", "--set", "epochs=65", "--set", "width=0.25", "--json"])
        #expect(jcode == 0)
        let j = try JSON.parse(jtext)
        #expect(j["spec"]?["epochs"]?.intValue == 65 && j["spec"]?["scaling"]?["notes"] == .array([]))
        #expect(j["schedule"]?["layers"]?.arrayValue?.map { $0["units"]?.intValue } == [128, 128, 128, 128])
        let (bad, _, err) = try run(["F2_VGG_4", "--set", "pruning.layers.0.fraction=2"])
        #expect(bad == 2 && err.contains("fraction"), "\(err)")
        let (none, _, err2) = try run(["NO_SUCH"])
        #expect(none == 2 && err2.contains("no preset"), "\(err2)")
    }
}
