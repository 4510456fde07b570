// The presets: every configuration of the experiment matrix exists, validates against its
// model, round-trips through JSON; scaling keeps the schedule's shape.
import Engine
import Foundation
import PrunedJSON
import Testing
import Training

@Suite struct PresetTests {
    @Test func everyMatrixConfigurationExists() {
        var expected = (0 ... 5).map { "F2_VGG_\($0)" } + (0 ... 3).map { "F2_RN_\($0)" }
        for t in ["S", "R", "L"] { for r in [4, 20, 40, 60, 100, 200, 300] { expected.append("F3_\(t)_\(r)") } }
        for m in ["18", "20", "56"] { for v in ["0", "1"] { expected.append("F4_\(m)_\(v)") } }
        expected += (0 ... 6).map { "F5_\($0)" } + (1 ... 3).map { "FB2_VGG_\($0)" } + (1 ... 3).map { "FB2_RN_\($0)" }
        expected += (1 ... 3).map { "TC1_\($0)" } + (0 ... 2).map { "FC3_\($0)" } + (0 ... 3).map { "FD2_\($0)" } + (0 ... 3).map { "TF1_\($0)" }
        expected += ["C4_0", "C4_U_S", "C4_U_L", "C4_U_R", "C4_S_S", "C4_S_L", "C4_S_R"]
        #expect(Set(Presets.all.map(\.name)) == Set(expected))
        #expect(Presets.all.count == expected.count)
    }

    @Test func everyPresetValidatesAndRoundTrips() throws {
        for p in Presets.all {
            try p.spec.validateAgainstModel(classes: p.spec.data.kind.classes)
            let again = try RunSpec(json: try JSON.parse(p.spec.json.rendered))
            #expect(again == p.spec, "\(p.name) does not round-trip")
        }
    }

    @Test func presetsMatchTheSpecMatrix() throws {
        let f2 = try #require(Presets.named("F2_VGG_4")?.spec)
        #expect(f2.epochs == 325 && f2.milestones == [150, 300] && f2.optimizer.kind == .adam && f2.optimizer.lr == 1e-3)
        #expect(f2.pruning?.target == .largest && f2.pruning?.score == .l2)
        #expect(f2.pruning?.layers.map(\.fraction) == [0.3, 0.3, 0.3, 0.9])
        #expect(f2.pruning?.layers.map(\.start) == [3, 4, 5, 6] && f2.pruning?.layers.map(\.end) == [150, 150, 150, 275])
        let rn = try #require(Presets.named("F2_RN_2")?.spec)
        #expect(rn.pruning?.score == .activations && rn.pruning?.layers.map(\.name) == ["layer4.0.conv1", "layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"])
        #expect(rn.pruning?.layers.map(\.fraction) == [0.25, 0.4, 0.25, 0.95])
        let f4 = try #require(Presets.named("F4_56_1")?.spec)
        #expect(f4.pruning?.layers.count == 54 && f4.optimizer.kind == .sgd && f4.augment && f4.epochs == 165 && f4.pruning?.layers.first?.period == 60)
        #expect(Presets.named("F4_18_0")?.spec.pruning?.layers.count == 16 && Presets.named("F4_20_0")?.spec.pruning?.layers.count == 18)
        let f5 = try #require(Presets.named("F5_2")?.spec)
        #expect(f5.testBatchSize == 128 && f5.pruning?.noise == NoisePlan(mode: .iter, kind: .zeroing, batches: 129, restore: false))
        #expect(Presets.named("F5_0")?.spec.pruning?.maskBatchNorm == false)
        #expect(Presets.named("FD2_3")?.spec.pruning?.noise == NoisePlan(mode: .cumu, kind: .zeroing, batches: 3000, restore: true))
        #expect(Presets.named("FB2_RN_1")?.spec.pruning?.layers.map(\.start) == [3, 4, 5, 6])
        #expect(Presets.named("TC1_2")?.spec.pruning?.layers.map(\.fraction) == [0.25, 0.8, 0.25, 0.95])
        let tf = try #require(Presets.named("TF1_3")?.spec)
        #expect(tf.data.kind == .cifar100 && tf.epochs == 4000 && tf.pruning?.scratch == true && tf.pruning?.target == .largest)
        #expect(Presets.named("F2_VGG_5")?.spec.pruning?.scratch == true)
        #expect(Presets.named("C4_U_L")?.spec.pruning?.granularity == .unstructured)
    }

    @Test func scalingKeepsTheShape() throws {
        let f2 = try #require(Presets.named("F2_VGG_4")?.spec)
        let (s, notes) = Presets.scale(f2, toEpochs: 65)  // factor 0.2
        #expect(notes.isEmpty, "\(notes)")
        #expect(s.epochs == 65 && s.milestones == [30, 60])
        let layers = try #require(s.pruning?.layers)
        // Staggered like the authors' 3, 4, 5, 6 (these were all 1 before issue 13); period 7
        // rather than 8 so that conv8's seventh event leaves it a proportional recovery tail.
        #expect(layers.map(\.start) == [1, 2, 3, 4])
        #expect(layers.map(\.period) == [7, 7, 7, 7])
        // Event counts preserved: 4, 4, 4, 7.
        #expect(layers.map { $0.events.count } == [4, 4, 4, 7])
        #expect(layers.allSatisfy { $0.end < 65 })
        try s.validateAgainstModel()
        // A very short run keeps as many events as it can, and says so.
        let (tiny, tinyNotes) = Presets.scale(try #require(Presets.named("F2_VGG_1")?.spec), toEpochs: 10)
        #expect(!tinyNotes.isEmpty)
        #expect(tiny.pruning?.layers.allSatisfy { $0.end < 10 && $0.period >= 1 } == true)
        try tiny.validateAgainstModel()
        // Every preset scales to 12 epochs into a valid spec.
        for p in Presets.all {
            let (scaled, _) = Presets.scale(p.spec, toEpochs: 12)
            try scaled.validateAgainstModel(classes: p.spec.data.kind.classes)
        }
    }
}
