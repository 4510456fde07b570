// PruningPlan.validate, the one home of the rules a pruning plan obeys without a model: each
// rule's field and message, and Pruner.init refusing through it before its checks against
// the network. The score properties the checks ask instead of naming scores.
import Engine
import Testing

@Suite struct PruningPlanTests {
    static func plan(_ layers: [LayerPlan]) -> PruningPlan { PruningPlan(layers: layers) }
    static let conv8 = LayerPlan(name: "features.conv8", fraction: 0.5, start: 1, end: 3, period: 1)

    func problem(_ plan: PruningPlan, epochs: Int = 10) -> PruningPlanError? {
        do { try plan.validate(epochs: epochs); return nil } catch let e as PruningPlanError { return e } catch { return nil }
    }

    @Test func validPlansPass() {
        #expect(problem(Self.plan([Self.conv8])) == nil)
        var scratch = Self.plan([LayerPlan(name: "a", fraction: 0.9, start: 0, end: 0, period: 40)])
        scratch.scratch = true
        #expect(problem(scratch) == nil)
    }

    @Test func everyRuleNamesItsField() {
        func layer(_ f: Double = 0.5, _ s: Int = 1, _ e: Int = 3, _ p: Int = 1, name: String = "a") -> LayerPlan {
            LayerPlan(name: name, fraction: f, start: s, end: e, period: p)
        }
        let cases: [(PruningPlan, String, String)] = [
            (Self.plan([]), "layers", "is required: a non-empty array of {name, fraction, start, end[, period]}"),
            (Self.plan([layer(1)]), "layers[0].fraction", "must be in (0, 1), got 1"),
            (Self.plan([layer(.nan)]), "layers[0].fraction", "must be in (0, 1), got null"),
            (Self.plan([layer(0.5, -1)]), "layers[0].start", "must be an epoch in 0…9 (0-based), got -1"),
            (Self.plan([layer(0.5, 10, 10)]), "layers[0].start", "must be an epoch in 0…9 (0-based), got 10"),
            (Self.plan([layer(0.5, 3, 2)]), "layers[0].end", "must be ≥ start (3), got 2"),
            (Self.plan([layer(0.5, 3, 10)]), "layers[0].end", "epoch 10 is not before the end of training (epochs = 10; epochs are 0-based)"),
            (Self.plan([layer(0.5, 1, 3, 0)]), "layers[0].period", "must be a number of epochs in 1…100000, got 0"),
            (Self.plan([layer(), layer()]), "layers[1].name", "a is listed twice"),
        ]
        for (plan, field, message) in cases {
            #expect(problem(plan)?.description == "\(field): \(message)", "\(String(describing: problem(plan)))")
        }
        var scratch = Self.plan([layer(0.5, 0, 2)])
        scratch.scratch = true
        #expect(problem(scratch)?.description == "layers[0].start: scratch pruning happens at epoch 0: start and end must be 0")
        var unstructured = Self.plan([layer()])
        unstructured.granularity = .unstructured
        unstructured.score = .ebn
        #expect(problem(unstructured)?.field == "score")
        var noisy = Self.plan([layer()])
        noisy.noise = NoisePlan(mode: .iter, kind: .zeroing, batches: 1, restore: false)
        noisy.score = .activations
        #expect(problem(noisy)?.description == "noise: noise targets filters by weight norm: use score l1 or l2")
        noisy.score = .l1
        noisy.granularity = .unstructured
        #expect(problem(noisy)?.description == "noise: noise injection is defined for structured (filter) targets")
    }

    @Test func prunerRefusesThroughValidateThenChecksTheModel() {
        let net = ModelFactory.make(.vgg11_bn, width: 1.0 / 16, seed: 0)
        func prunerProblem(_ plan: PruningPlan) -> String? {
            do { _ = try Pruner(plan: plan, network: net, seed: 0, epochs: 10); return nil } catch { return "\(error)" }
        }
        let late = Self.plan([LayerPlan(name: "features.conv8", fraction: 0.5, start: 3, end: 10, period: 1)])
        #expect(prunerProblem(late) == problem(late)?.description)
        #expect(prunerProblem(Self.plan([Self.conv8])) == nil)
        let unknown = Self.plan([LayerPlan(name: "features.conv9", fraction: 0.5, start: 1, end: 3, period: 1)])
        #expect(prunerProblem(unknown)?.hasPrefix("layers[0].name: no prunable layer \"features.conv9\" in vgg11_bn; prunable layers: ") == true)
        var activations = Self.plan([Self.conv8])
        activations.score = .activations
        #expect(prunerProblem(activations) == "score: activations is defined for residual-block convolutions, not features.conv8")
        let resnet = ModelFactory.make(.resnet18, width: 1.0 / 16, seed: 0)
        #expect(!resnet.prunableLayers().contains { $0.name == "conv1" }, "a ResNet's stem convolution is not prunable")
        #expect(net.prunableLayers().first?.name == "features.conv1")
    }

    @Test func scoreProperties() {
        #expect(PruneScore.allCases.filter(\.scoresWeights) == [.l2, .l1])
        #expect(PruneScore.allCases.filter(\.needsBatchNorm) == [.ebn, .ebn_alt])
        #expect(PruneScore.allCases.filter(\.prunesThroughBatchNorm) == [.ebn, .ebn_alt])
        #expect(PruneScore.allCases.filter(\.usesSignedGamma) == [.ebn_alt])
        #expect(PruneScore.allCases.filter(\.needsActivations) == [.activations])
        #expect(PruneScore.allCases.filter(\.needsResidualBlock) == [.activations])
        #expect(Architecture.allCases.filter(\.isResNet) == [.resnet18, .resnet20, .resnet56])
    }
}
