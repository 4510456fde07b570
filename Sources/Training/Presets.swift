// Every configuration of the paper's experiment matrix (docs/EXPERIMENTS.md §1) by name, plus the poster's
// Conv4 conditions, and the scaling of a preset to another epoch count that keeps the
// schedule's shape (ScheduleScaling.swift).
import Engine
import Foundation

public struct Preset: Sendable {
    public let name: String
    public let summary: String
    public let spec: RunSpec
}

public enum Presets {
    static let vggLayers = ["features.conv5", "features.conv6", "features.conv7", "features.conv8"]
    static let vggFractions = [0.3, 0.3, 0.3, 0.9]
    static let vggStarts = [3, 4, 5, 6], vggEnds = [150, 150, 150, 275]
    static let rnLayers = ["layer4.0.conv1", "layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"]
    static let rnEnds = [150, 150, 170, 275]

    static func base(_ arch: Architecture, epochs: Int = 325, kind: DatasetKind = .cifar10) -> RunSpec {
        let path = kind == .cifar100 ? "data/cifar-100-binary" : "data/cifar-10-batches-bin"
        var s = RunSpec(architecture: arch, data: DataSpec(kind: kind, path: path), epochs: epochs, seed: 0)
        s.milestones = [150, 300]
        return s
    }

    static func sgd(_ arch: Architecture) -> RunSpec {
        var s = base(arch, epochs: 165)
        s.optimizer.kind = .sgd
        s.optimizer.lr = 0.1
        s.optimizer.momentum = 0.9
        s.optimizer.weightDecay = 1e-4
        s.milestones = [83, 125]
        s.augment = true
        return s
    }

    static func plan(_ names: [String], _ fractions: [Double], _ starts: [Int], _ ends: [Int], period: Int,
                     score: PruneScore, target: PruneTarget) -> PruningPlan {
        var p = PruningPlan(layers: names.indices.map {
            LayerPlan(name: names[$0], fraction: fractions[$0], start: starts[$0], end: ends[$0], period: period)
        })
        p.score = score
        p.target = target
        return p
    }

    static func vgg(_ r: Int, _ target: PruneTarget, score: PruneScore = .l2) -> PruningPlan {
        plan(vggLayers, vggFractions, vggStarts, vggEnds, period: r, score: score, target: target)
    }

    static func blockConvs(_ arch: Architecture) -> [String] {
        let net = ModelFactory.make(arch, width: 1.0 / 16, seed: 0)
        return net.prunableLayers().filter { $0.block != nil }.map(\.name)
    }

    /// All presets, in the order of the spec's experiment matrix.
    public static let all: [Preset] = {
        var out: [Preset] = []
        func add(_ name: String, _ summary: String, _ spec: RunSpec) {
            var s = spec
            s.name = name
            out.append(Preset(name: name, summary: summary, spec: s))
        }
        func with(_ s: RunSpec, _ p: PruningPlan?) -> RunSpec { var c = s; c.pruning = p; return c }
        let vggBase = base(.vgg11_bn), rnBase = base(.resnet18)

        add("F2_VGG_0", "Fig 2: VGG11, no pruning (baseline for Fig 5, B2, D2)", vggBase)
        add("F2_VGG_1", "Fig 2: VGG11 Prune_S 1% (L2, smallest, r=4)", with(vggBase, vgg(4, .smallest)))
        add("F2_VGG_2", "Fig 2: VGG11 Prune_S 13% (L2, smallest, r=40)", with(vggBase, vgg(40, .smallest)))
        add("F2_VGG_3", "Fig 6/E: VGG11 Prune_R 13% (random, r=40)", with(vggBase, vgg(40, .random)))
        add("F2_VGG_4", "Fig 2: VGG11 Prune_L 13% (L2, largest, r=40)", with(vggBase, vgg(40, .largest)))
        var scratch = vgg(40, .smallest)
        scratch.scratch = true
        scratch.layers = scratch.layers.map { LayerPlan(name: $0.name, fraction: $0.fraction, start: 0, end: 0, period: 40) }
        add("F2_VGG_5", "Fig 2: VGG11 scratch pruning (L2 smallest, all at epoch 0 before training)", with(vggBase, scratch))

        func rn(_ r: Int, _ t: PruneTarget, score: PruneScore = .activations, fractions: [Double] = [0.25, 0.4, 0.25, 0.95],
                starts: [Int] = [7, 8, 9, 10]) -> PruningPlan {
            plan(rnLayers, fractions, starts, rnEnds, period: r, score: score, target: t)
        }
        add("F2_RN_0", "Fig 2: ResNet18, no pruning", rnBase)
        add("F2_RN_1", "Fig 2: ResNet18 Prune_S 1% (activations, smallest, r=4)", with(rnBase, rn(4, .smallest)))
        add("F2_RN_2", "Fig 2: ResNet18 Prune_S 14% (activations, smallest, r=40)", with(rnBase, rn(40, .smallest)))
        add("F2_RN_3", "Fig 2: ResNet18 Prune_L 14% (activations, largest, r=40)", with(rnBase, rn(40, .largest)))

        for (letter, target) in [("S", PruneTarget.smallest), ("R", .random), ("L", .largest)] {
            for r in [4, 20, 40, 60, 100, 200, 300] {
                add("F3_\(letter)_\(r)", "Fig 3: VGG11 iterative rate sweep, target \(target.rawValue), r=\(r) (5 runs)",
                    with(vggBase, vgg(r, target)))
            }
        }

        for (arch, label) in [(Architecture.resnet18, "18"), (.resnet20, "20"), (.resnet56, "56")] {
            let convs = blockConvs(arch)
            for (suffix, r) in [("0", 30), ("1", 60)] {
                let p = plan(convs, convs.map { _ in 0.1 }, convs.map { _ in 40 }, convs.map { _ in 100 }, period: r,
                             score: .l1, target: .smallest)
                add("F4_\(label)_\(suffix)", "Fig 4: ResNet\(label) SGD+augment, every block conv 10%, L1 smallest, r=\(r)",
                    with(sgd(arch), p))
            }
        }

        var f5 = vggBase
        f5.testBatchSize = 128
        var f50 = vgg(40, .largest)
        f50.maskBatchNorm = false
        add("F5_0", "Fig 5: VGG11 Prune_L without BN masking (BN β passes through), test batch 128", with(f5, f50))
        for (i, (kind, n)) in [(NoisePlan.Kind.zeroing, 0), (.zeroing, 129), (.zeroing, 1500), (.gaussian, 0), (.gaussian, 129),
                                (.gaussian, 1500)].enumerated() {
            var p = vgg(40, .largest)
            p.noise = NoisePlan(mode: .iter, kind: kind, batches: n, restore: false)
            add("F5_\(i + 1)", "Fig 5: VGG11 iter_\(n)_\(kind.rawValue) noise on Prune_L targets, test batch 128", with(f5, p))
        }

        for (i, (r, t)) in [(4, PruneTarget.smallest), (40, .smallest), (40, .largest)].enumerated() {
            add("FB2_VGG_\(i + 1)", "Fig B2: VGG11 E[BN] scores, \(t.rawValue), r=\(r)", with(vggBase, vgg(r, t, score: .ebn)))
        }
        for (i, (r, t)) in [(4, PruneTarget.smallest), (40, .smallest), (40, .largest)].enumerated() {
            add("FB2_RN_\(i + 1)", "Fig B2: ResNet18 E[BN]_alt scores, \(t.rawValue), r=\(r), starts 3-6",
                with(rnBase, rn(r, t, score: .ebn_alt, starts: [3, 4, 5, 6])))
        }
        for (i, (r, t)) in [(4, PruneTarget.smallest), (40, .smallest), (40, .largest)].enumerated() {
            add("TC1_\(i + 1)", "Table C1: ResNet18 activations, layer4.0.conv2 at 80%, \(t.rawValue), r=\(r)",
                with(rnBase, rn(r, t, fractions: [0.25, 0.8, 0.25, 0.95])))
        }

        let rn18Convs = blockConvs(.resnet18)
        for (i, frac) in [0.1, 0.06].enumerated() {
            let p = plan(rn18Convs, rn18Convs.map { _ in frac }, rn18Convs.map { _ in 24 }, rn18Convs.map { _ in 100 }, period: 1,
                         score: .l1, target: .smallest)
            add("FC3_\(i)", "Fig C3: ResNet18 SGD+augment, all 16 block convs \(Int(frac * 100))%, L1 smallest, r=1", with(sgd(.resnet18), p))
        }
        add("FC3_2", "Fig C3: ResNet18 SGD+augment, no pruning", sgd(.resnet18))

        for (i, n) in [129, 750, 1500, 3000].enumerated() {
            var p = vgg(40, .largest)
            p.noise = NoisePlan(mode: .cumu, kind: .zeroing, batches: n, restore: true)
            add("FD2_\(i)", "Fig D2: VGG11 cumu_\(n)_zeroing_restore on Prune_L targets", with(vggBase, p))
        }

        var tf = base(.resnet18, epochs: 4000, kind: .cifar100)
        tf.optimizer.lr = 1e-4
        tf.milestones = [2000]
        tf.augment = true
        add("TF1_0", "Table F1: ResNet18 CIFAR-100, no pruning", tf)
        let l412 = ["layer4.1.conv2"]
        add("TF1_1", "Table F1: Prune_L 15% (layer4.1.conv2 70%, L1, 2500→3500, r=750)",
            with(tf, plan(l412, [0.7], [2500], [3500], period: 750, score: .l1, target: .largest)))
        add("TF1_2", "Table F1: Prune_S 15% (layer4.1.conv2 70%, L1, 2500→3500, r=750)",
            with(tf, plan(l412, [0.7], [2500], [3500], period: 750, score: .l1, target: .smallest)))
        var tfScratch = plan(l412, [0.7], [0], [0], period: 750, score: .l2, target: .largest)
        tfScratch.scratch = true
        add("TF1_3", "Table F1: scratch 15% (layer4.1.conv2 70% at epoch 0, L2, largest)", with(tf, tfScratch))

        // The poster's Conv4 (not in the authors' code; schedule and epochs are our choice):
        // prune 10% of the largest dense layer, unstructured (U) or structured neurons (S).
        var c4 = base(.conv4, epochs: 40)
        c4.milestones = [30]
        add("C4_0", "Poster Fig 1: Conv4, no pruning (assumed setup: 40 epochs, Adam 1e-3)", c4)
        for (g, gl) in [(PruneGranularity.unstructured, "U"), (.structured, "S")] {
            for (t, tl) in [(PruneTarget.smallest, "S"), (.largest, "L"), (.random, "R")] {
                var p = plan(["classifier.fc1"], [0.1], [3], [30], period: 9, score: .l2, target: t)
                p.granularity = g
                add("C4_\(gl)_\(tl)", "Poster Fig 1: Conv4 fc1 10% \(g.rawValue), target \(t.rawValue) (assumed schedule 3→30, r=9)",
                    with(c4, p))
            }
        }
        return out
    }()

    public static func named(_ name: String) -> Preset? { all.first { $0.name == name } }

    /// The preset scaled to `epochs`, keeping its schedule's shape (ScheduleScaling.swift).
    /// Returns the spec, carrying a ScalingRecord with the notes, and a note per property of
    /// the shape it could not keep (empty when kept). The original epoch count is the identity.
    public static func scale(_ spec: RunSpec, toEpochs epochs: Int) -> (RunSpec, [String]) {
        guard epochs != spec.epochs, epochs >= 1, spec.epochs >= 1 else { return (spec, []) }
        var (s, notes) = ScheduleScaling.scale(spec, toEpochs: epochs)
        s.scaling = ScalingRecord(fromEpochs: spec.scaling?.fromEpochs ?? spec.epochs, notes: notes)
        return (s, notes)
    }
}
