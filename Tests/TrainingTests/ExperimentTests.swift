// Pruning and noise inside real training loops (synthetic images so the tests are fast):
// masks stay exactly zero across steps, random targets pick only unpruned filters, pruned
// conv2 channels drop their residual, scratch pruning, instability bookkeeping, noise restore.
import Engine
import Foundation
import PrunedJSON
import Results
import Testing
import TestSupport
import Training

func prunedSpec(_ json: String) throws -> RunSpec { try RunSpec.parse(json) }

@Suite struct ExperimentTests {
    let vggPruning = #"""
    {"model": "vgg11_bn", "width": 0.125, "dataset": {"kind": "cifar10", "path": "/unused"}, "epochs": 6, "batch_size": 32, "seed": 3,
     "pruning": {"score": "l2", "target": "smallest", "period": 2,
                 "layers": [{"name": "features.conv5", "fraction": 0.3, "start": 1, "end": 4},
                            {"name": "features.conv8", "fraction": 0.9, "start": 2, "end": 4}]}}
    """#

    @Test func prunedFiltersStayExactlyZero() throws {
        let spec = try prunedSpec(vggPruning)
        let t = try Trainer(spec: spec, data: syntheticData(), threads: 2)
        guard let pruner = t.pruner else { Issue.record("no pruner"); return }
        var records: [EpochRecord] = []
        for _ in 0 ..< spec.epochs { records.append(try t.runEpoch()) }
        // conv5 (64 filters at width 1/8): events at 1, 3 → ceil(.7·64)=45 kept ⇒ 19 pruned.
        // conv8: events 2, 4 → 64 − ceil(.1·64) = 57 pruned.
        #expect(pruner.prunedCounts.map(\.1) == [19, 57])
        // kept_1 = ceil(45 + 19·1/2) = 55 ⇒ 9, then 10; conv8 ceil(7 + 57/2) = 36 ⇒ 28, then 29.
        #expect(records.map { $0.pruning?.map(\.k) ?? [] } == [[], [9], [28], [10], [29], []])
        let store = t.network.store
        for (l, layer) in pruner.layers.enumerated() {
            guard let conv = layer.conv, let bn = layer.batchNorm else { continue }
            let w = store.value(conv.weight)
            for u in 0 ..< conv.outChannels where !pruner.kept[l][u] {
                #expect((0 ..< conv.fanIn).allSatisfy { w[u * conv.fanIn + $0] == 0 }, "\(layer.name) filter \(u) not zero")
                #expect(store.value(bn.gamma)[u] == 0 && store.value(bn.beta)[u] == 0)
                #expect((0 ..< conv.fanIn).allSatisfy { t.optimizer.moment1[conv.weight.offset + u * conv.fanIn + $0] == 0 })
            }
            // Unpruned filters kept training.
            let alive = (0 ..< conv.outChannels).first { pruner.kept[l][$0] } ?? 0
            #expect((0 ..< conv.fanIn).contains { w[alive * conv.fanIn + $0] != 0 })
        }
        // Instability is (pre − post)/pre of the recorded accuracies.
        for r in records where r.isPruningEpoch {
            #expect(r.instability == (r.pre.top1 - r.post.top1) / r.pre.top1)
            #expect(r.instabilityPoints == r.pre.top1 - r.post.top1)
        }
        #expect(records.filter { $0.pruning == nil }.allSatisfy { $0.pre == $0.post })
    }

    @Test func smallestTargetsTheSmallestNorms() throws {
        var spec = try prunedSpec(vggPruning)
        spec.epochs = 2
        spec.pruning?.layers = [LayerPlan(name: "features.conv5", fraction: 0.3, start: 0, end: 0, period: 1)]
        for target in [PruneTarget.smallest, .largest] {
            spec.pruning?.target = target
            let t = try Trainer(spec: spec, data: syntheticData(), threads: 1)
            _ = t.trainEpoch(0)
            guard let pruner = t.pruner else { return }
            let before = pruner.scores(0)
            _ = pruner.prune(epoch: 0, optimizer: t.optimizer)
            let pruned = (0 ..< before.count).filter { !pruner.kept[0][$0] }.map { before[$0] }
            let kept = (0 ..< before.count).filter { pruner.kept[0][$0] }.map { before[$0] }
            #expect(pruned.count == 19)
            if target == .smallest { #expect(pruned.max()! <= kept.min()!) } else { #expect(pruned.min()! >= kept.max()!) }
        }
    }

    @Test func randomTargetsPickOnlyUnprunedFilters() throws {
        var spec = try prunedSpec(vggPruning)
        spec.pruning?.target = .random
        spec.pruning?.layers = [LayerPlan(name: "features.conv8", fraction: 0.9, start: 0, end: 4, period: 1)]
        let t = try Trainer(spec: spec, data: syntheticData(train: 32, test: 32), threads: 1)
        guard let pruner = t.pruner else { return }
        var previously = Set<Int>()
        for epoch in 0 ..< 5 {
            guard let events = pruner.prune(epoch: epoch, optimizer: t.optimizer) else { continue }
            let now = Set((0 ..< 64).filter { !pruner.kept[0][$0] })
            #expect(now.isSuperset(of: previously), "masks never regrow")
            #expect(now.count - previously.count == events.first?.k)
            previously = now
        }
        #expect(previously.count == 57)
        // Deterministic for a seed, different for another seed.
        let again = try Trainer(spec: spec, data: syntheticData(train: 32, test: 32), threads: 1)
        for e in 0 ..< 5 { _ = again.pruner?.prune(epoch: e, optimizer: again.optimizer) }
        #expect(again.pruner?.kept == pruner.kept)
        spec.seed = 99
        let other = try Trainer(spec: spec, data: syntheticData(train: 32, test: 32), threads: 1)
        for e in 0 ..< 5 { _ = other.pruner?.prune(epoch: e, optimizer: other.optimizer) }
        #expect(other.pruner?.kept != pruner.kept)
    }

    @Test func resnetPrunedConv2DropsItsShortcut() throws {
        let spec = try prunedSpec(#"""
        {"model": "resnet18", "width": 0.0625, "dataset": {"kind": "cifar10", "path": "/u"}, "epochs": 3, "batch_size": 16, "seed": 1,
         "pruning": {"score": "activations", "target": "largest", "period": 1,
                     "layers": [{"name": "layer4.1.conv2", "fraction": 0.5, "start": 1, "end": 1},
                                {"name": "layer4.0.conv1", "fraction": 0.25, "start": 1, "end": 1}]}}
        """#)
        let t = try Trainer(spec: spec, data: syntheticData(train: 192, test: 32), threads: 2)
        guard let pruner = t.pruner, let block = pruner.layers.first(where: { $0.name == "layer4.1.conv2" })?.block else {
            Issue.record("layer4.1 missing"); return
        }
        _ = try t.runEpoch()
        // 192 samples / 16 = 12 training forwards ⇒ one activation-score update (the 10th).
        #expect(block.trainingForwards == 12)
        #expect(block.activationScores?.conv2.contains { $0 > 0 } == true)
        _ = try t.runEpoch()
        #expect(pruner.prunedCounts.map(\.1) == [8, 16])   // forward order: layer4.0.conv1, layer4.1.conv2
        let l = pruner.layers.firstIndex { $0.name == "layer4.1.conv2" } ?? 0
        for u in 0 ..< 32 { #expect(block.keep[u] == (pruner.kept[l][u] ? 1 : 0)) }
        // The block's output channel is exactly zero for every pruned conv2 filter, in both modes.
        let x = syntheticData(train: 8, test: 8)
        for training in [false, true] {
            let ctx = ExecutionContext(threads: 1)
            ctx.training = training
            let input = FloatBuffer(count: 8 * 3072)
            var labels = [Int32](repeating: 0, count: 8)
            labels.withUnsafeMutableBufferPointer { lp in
                Batcher.assemble(x.train, indices: ArraySlice(0 ..< 8), normalisation: .cifar10, augmentation: .none, seed: 0,
                                 epoch: 0, position: 0, into: input.ptr, labels: lp.baseAddress!)
            }
            var a = Activation(data: input.ptr, channels: 3, batch: 8, height: 32, width: 32)
            for layer in t.network.layers {
                a = layer.forward(a, ctx)
                if layer === block { break }
            }
            for u in 0 ..< 32 where !pruner.kept[l][u] {
                #expect((0 ..< a.perChannel).allSatisfy { a.data[u * a.perChannel + $0] == 0 }, "channel \(u) leaks the residual")
            }
            #expect((0 ..< a.count).contains { a.data[$0] != 0 })
        }
    }

    @Test func scratchPruningSkipsEpochZeroTrainingAndLRStep() throws {
        var spec = try prunedSpec(vggPruning)
        spec.epochs = 3
        spec.milestones = [1]
        spec.pruning?.scratch = true
        spec.pruning?.layers = [LayerPlan(name: "features.conv8", fraction: 0.9, start: 0, end: 0, period: 40)]
        let t = try Trainer(spec: spec, data: syntheticData(train: 32, test: 32), threads: 1)
        let r0 = try t.runEpoch(), r1 = try t.runEpoch(), r2 = try t.runEpoch()
        #expect(!r0.trained && r0.train.count == 0 && r0.train.top1 == 0)
        #expect(r0.pruning?.first?.k == 57)
        // The LR drop at milestone 1 happens one epoch later than without scratch pruning.
        #expect(r1.lr == 1e-3 && r2.lr == 1e-3 * 0.1)
        // Scratch only ⇒ no pruning epochs for the statistics: stability 100 %, best over all epochs.
        let st = RunMetrics(records: [r0, r1, r2])
        #expect(st.lastPruningEpoch == 0 && st.meanStability == 100)
    }

    @Test(arguments: [NoisePlan.Kind.zeroing, .gaussian])
    func noiseWithRestoreReturnsSavedValuesBitForBit(kind: NoisePlan.Kind) throws {
        var spec = try prunedSpec(vggPruning)
        spec.epochs = 3
        spec.testBatchSize = 16
        spec.pruning?.target = .largest
        spec.pruning?.layers = [LayerPlan(name: "features.conv8", fraction: 0.5, start: 0, end: 0, period: 40)]
        // 64 test images at batch 16 = 4 calls per evaluation; N = 5 ⇒ 6 calls: the post-prune
        // evaluation (4), then 2 training steps; the 6th call restores.
        spec.pruning?.noise = NoisePlan(mode: .cumu, kind: kind, batches: 5, restore: true)
        let t = try Trainer(spec: spec, data: syntheticData(train: 96, test: 64), threads: 1)
        guard let pruner = t.pruner, let conv = pruner.layers[0].conv, let bn = pruner.layers[0].batchNorm else { return }
        _ = t.trainEpoch(0)
        _ = t.evaluate()
        let store = t.network.store
        let events = pruner.prune(epoch: 0, optimizer: t.optimizer)
        #expect(events?.first?.k == 32)
        let targets = (0 ..< 64).filter { !pruner.kept[0][$0] }
        func snapshot() -> [Float] {
            var s: [Float] = []
            for u in targets {
                s += (0 ..< conv.fanIn).map { store.value(conv.weight)[u * conv.fanIn + $0] }
                s += [store.value(bn.gamma)[u], store.value(bn.beta)[u], store.stateValue(bn.runningMean)[u], store.stateValue(bn.runningVar)[u]]
            }
            return s
        }
        let before = snapshot()
        // Nothing is masked in noise mode.
        #expect(targets.allSatisfy { u in (0 ..< conv.fanIn).contains { store.value(conv.weight)[u * conv.fanIn + $0] != 0 } })
        _ = t.evaluate()                                    // calls 1–4: targets perturbed
        #expect(pruner.noiseActive)
        if kind == .zeroing { #expect(targets.allSatisfy { store.value(bn.gamma)[$0] == 0 }) }
        #expect(snapshot() != before)
        _ = t.evaluate()                                    // call 5 perturbs, call 6 restores, 7–8 nothing
        #expect(!pruner.noiseActive)
        let after = snapshot()
        #expect(after.count == before.count)
        #expect(after == before, "restore did not return the saved values bit for bit")
    }

    /// The poster's Conv4 conditions: unstructured (single weights) and structured (neurons) pruning of fc1.
    @Test(arguments: ["C4_U_L", "C4_S_S", "C4_U_R"])
    func conv4DenseLayerPruning(_ name: String) throws {
        var (spec, _) = Presets.scale(try #require(Presets.named(name)).spec, toEpochs: 4)
        spec.width = 0.125
        spec.batchSize = 32
        let t = try Trainer(spec: spec, data: syntheticData(train: 64, test: 32), threads: 2)
        for _ in 0 ..< spec.epochs { _ = try t.runEpoch() }
        let pruner = try #require(t.pruner)
        let fc1 = try #require(pruner.layers.first?.linear)
        let w = t.network.store.value(fc1.weight), b = t.network.store.value(fc1.bias)
        let units = pruner.kept[0].count
        #expect(units - pruner.kept[0].filter { $0 }.count == units - PruneSchedule.finalKept(units: units, fraction: 0.1))
        for u in 0 ..< units where !pruner.kept[0][u] {
            if spec.pruning?.granularity == .unstructured {
                #expect(w[u] == 0)
            } else {
                #expect((0 ..< fc1.inFeatures).allSatisfy { w[u * fc1.inFeatures + $0] == 0 } && b[u] == 0)
            }
        }
    }

    @Test func badPruningSpecsAreRejectedBeforeTraining() throws {
        let cases: [(String, String)] = [
            (#""layers": [{"name": "features.conv9", "fraction": 0.3, "start": 1, "end": 2}]"#, "pruning.layers[0].name"),
            (#""layers": [{"name": "features.conv5", "fraction": 1.2, "start": 1, "end": 2}]"#, "pruning.layers[0].fraction"),
            (#""layers": [{"name": "features.conv5", "fraction": 0.3, "start": 3, "end": 2}]"#, "pruning.layers[0].end"),
            (#""layers": [{"name": "features.conv5", "fraction": 0.3, "start": 1, "end": 9}]"#, "pruning.layers[0].end"),
            (#""layers": [{"name": "features.conv5", "fraction": 0.3, "start": 1, "end": 2}], "score": "l3""#, "pruning.score"),
            (#""layers": [{"name": "features.conv5", "fraction": 0.3, "start": 1, "end": 2}], "score": "activations""#, "pruning.score"),
            (#""layers": [{"name": "features.conv5", "fraction": 0.3, "start": 1, "end": 2}], "target": "big""#, "pruning.target"),
            (#""layers": []"#, "pruning.layers"),
            (#""layers": [{"name": "classifier", "fraction": 0.3, "start": 1, "end": 2}]"#, "pruning.layers[0].name"),
        ]
        for (pruning, field) in cases {
            let text = #"{"model": "vgg11_bn", "dataset": {"kind": "cifar10", "path": "/u"}, "epochs": 6, "pruning": {"# + pruning + "}}"
            do {
                let spec = try RunSpec.parse(text)
                try spec.validateAgainstModel()
                Issue.record("accepted: \(pruning)")
            } catch {
                #expect("\(error)".contains("'\(field)'"), "\(pruning) → \(error)")
            }
        }
        // Noise on a ResNet block conv, and noise without pruning.
        let resnetNoise = #"{"model": "resnet18", "dataset": {"kind": "cifar10", "path": "/u"}, "epochs": 6, "pruning": {"layers": [{"name": "layer4.1.conv2", "fraction": 0.3, "start": 1, "end": 2}]}, "noise": {"mode": "iter", "kind": "zeroing", "batches": 10}}"#
        #expect { try RunSpec.parse(resnetNoise).validateAgainstModel() } throws: { "\($0)".contains("top-level convolutions") }
        let noPruning = #"{"model": "vgg11_bn", "dataset": {"kind": "cifar10", "path": "/u"}, "epochs": 6, "noise": {"mode": "iter", "kind": "zeroing", "batches": 10}}"#
        #expect { try RunSpec.parse(noPruning) } throws: { "\($0)".contains("'noise'") }
        let badMode = #"{"model": "vgg11_bn", "dataset": {"kind": "cifar10", "path": "/u"}, "epochs": 6, "pruning": {"layers": [{"name": "features.conv5", "fraction": 0.3, "start": 1, "end": 2}]}, "noise": {"mode": "all", "kind": "zeroing", "batches": 10}}"#
        #expect { try RunSpec.parse(badMode) } throws: { "\($0)".contains("'noise.mode'") && "\($0)".contains("iter, cumu") }
    }
}
