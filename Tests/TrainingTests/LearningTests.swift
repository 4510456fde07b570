// Learning on real data (Debian's full Fashion-MNIST) and determinism of whole runs.
import Checkpointing
import Engine
import Foundation
import PrunedJSON
import Results
import Testing
import TestSupport
import Training

func spec(_ arch: Architecture, width: Double = 1, epochs: Int, seed: UInt64 = 1, lr: Double = 1e-3, batch: Int = 128) -> RunSpec {
    var s = RunSpec(architecture: arch, data: DataSpec(kind: .fashion_mnist, path: fashionMNIST, trainLimit: nil, testLimit: nil),
                    epochs: epochs, seed: seed)
    s.width = width
    s.optimizer.lr = lr
    s.batchSize = batch
    return s
}

/// Learning tests are serialised: each uses both cores.
@Suite(.serialized) struct LearningTests {
    @Test func conv4LearnsFashionMNIST() throws {
        let data = try fashion(train: 6000, test: 2000)
        let trainer = try Trainer(spec: spec(.conv4, epochs: 1, batch: 64), data: data, threads: 2)
        let r = try trainer.runEpoch()
        print("conv4: train acc \(r.train.top1)%, test acc \(r.post.top1)% after one epoch of 6000 images at batch 64")
        #expect(r.post.top1 >= 75, "Conv4 test accuracy \(r.post.top1)% on Fashion-MNIST; chance is 10%")
        #expect(r.post.count == 2000 && r.train.count == 6000)
        #expect(r.post.meanLoss < r.post.meanLoss.nextUp && r.post.meanLoss < 1.0)
    }

    @Test(arguments: [(Architecture.vgg11_bn, 0.25), (.resnet20, 0.5)])
    func tinyModelsLearn(_ p: (Architecture, Double)) throws {
        let data = try fashion(train: 4000, test: 1000)
        let trainer = try Trainer(spec: spec(p.0, width: p.1, epochs: 2), data: data, threads: 2)
        var last: EpochRecord?
        for _ in 0 ..< 2 { last = try trainer.runEpoch() }
        let acc = last?.post.top1 ?? 0
        print("\(p.0.rawValue) width \(p.1): test acc \(acc)%")
        #expect(acc >= 60, "\(p.0.rawValue) width \(p.1) reached only \(acc)% on Fashion-MNIST")
    }

    @Test func sameSeedSameWeightsBitForBit() throws {
        let data = try fashion(train: 300, test: 100)
        func weights(seed: UInt64, threads: Int, augment: Bool = true) throws -> ([Float], [Float], [Float]) {
            var s = spec(.resnet20, width: 0.25, epochs: 2, seed: seed, batch: 64)
            s.augment = augment
            let t = try Trainer(spec: s, data: data, threads: threads)
            _ = try t.runEpoch(); _ = try t.runEpoch()
            return (t.network.store.values.array, t.network.store.state.array, t.optimizer.moment2.array)
        }
        let a = try weights(seed: 5, threads: 2), b = try weights(seed: 5, threads: 2)
        #expect(a.0 == b.0, "weights differ between two runs with the same seed")
        #expect(a.1 == b.1, "BatchNorm running statistics differ")
        #expect(a.2 == b.2, "Adam moments differ")
        let c = try weights(seed: 6, threads: 2)
        #expect(a.0 != c.0, "a different seed gave the same weights")
        let one = try weights(seed: 5, threads: 1), oneAgain = try weights(seed: 5, threads: 1)
        #expect(one.0 == oneAgain.0, "1-thread runs are not repeatable")
    }

    @Test func foregroundRunWritesMetricsAndSummary() throws {
        guard case .success = fashionData else { Issue.record("Fashion-MNIST missing"); return }
        let dir = temporaryPath("run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var s = spec(.conv4, width: 0.25, epochs: 2)
        s.data.trainLimit = 500
        s.data.testLimit = 200
        s.milestones = [1]
        var lines: [String] = []
        let summary = try ForegroundRun.execute(spec: s, outDir: dir, threads: 2) { lines.append($0) }
        #expect(summary.records.count == 2)
        let metrics = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == 2)
        let first = try JSON.parse(String(metrics[0])), second = try JSON.parse(String(metrics[1]))
        #expect(first["epoch"]?.intValue == 1 && second["epoch"]?.intValue == 2)
        // MultiStep: milestone 1 ⇒ epoch 1 trains at 1e-3, epoch 2 at 1e-4.
        #expect(first["lr"]?.doubleValue == 1e-3)
        #expect(second["lr"]?.doubleValue == 1e-3 * 0.1)
        for key in ["train_loss", "train_acc", "test_loss", "test_acc", "test_acc5", "pre_test_acc", "seconds"] {
            #expect(first[key]?.doubleValue != nil, "metrics line lacks \(key)")
        }
        // Without pruning, pre- and post-prune evaluations are the same measurement.
        #expect(first["pre_test_acc"] == first["test_acc"])
        let sum = try JSON.parse(String(contentsOfFile: dir + "/summary.json", encoding: .utf8))
        #expect(sum["epochs"]?.intValue == 2)
        #expect(sum["dataset_note"]?.stringValue?.contains("not CIFAR-10") == true)
        let spec2 = try RunSpec(json: try JSON.parse(String(contentsOfFile: dir + "/spec.json", encoding: .utf8)))
        #expect(spec2 == s)
        // A second run into the same directory is refused and leaves the files alone.
        #expect(throws: FileError.self) { try ForegroundRun.execute(spec: s, outDir: dir, threads: 1) { _ in } }
        #expect(try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").count == 2)
    }

    /// `RunOptions.convolution` (pruned run --conv) reaches every convolution and the log.
    @Test func runOptionsChooseTheConvolutionAlgorithm() throws {
        guard case .success = fashionData else { Issue.record("Fashion-MNIST missing"); return }
        let dir = temporaryPath("conv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var s = spec(.conv4, width: 0.25, epochs: 1)
        s.data.trainLimit = 200
        s.data.testLimit = 100
        var options = RunOptions()
        options.convolution = .winograd4
        var algorithms: [ConvAlgorithm] = []
        options.onStart = { trainer, _ in algorithms = trainer.network.convolutions.map(\.algorithm) }
        var lines: [String] = []
        _ = try ForegroundRun.execute(spec: s, outDir: dir, threads: 1, options: options) { lines.append($0) }
        #expect(algorithms == [ConvAlgorithm](repeating: .winograd4, count: 4))
        #expect(lines.contains { $0.hasSuffix("convolutions by winograd4") }, "\(lines)")
    }

    /// A scaled preset on real data through the foreground runner; every metrics invariant of
    /// the experiments issue is checked on the files it wrote.
    @Test(arguments: ["F2_VGG_4", "F2_VGG_2"])
    func scaledPresetOnFashionMNIST(_ name: String) throws {
        guard case .success = fashionData else { Issue.record("Fashion-MNIST missing"); return }
        let preset = try #require(Presets.named(name))
        // 12 epochs are too few for the whole shape (19 distinct events): the scaling says so.
        // (At 8, conv8's one remaining event falls on the last epoch, leaving no time to recover.)
        var (spec, notes) = Presets.scale(preset.spec, toEpochs: 12)
        #expect(!notes.isEmpty && spec.scaling?.notes == notes, "\(notes)")
        spec.width = 0.125
        spec.data = DataSpec(kind: .fashion_mnist, path: fashionMNIST, trainLimit: 1500, testLimit: 500)
        spec.seed = 2
        try spec.validateAgainstModel()
        let dir = temporaryPath("preset")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var logged: [String] = []
        let summary = try ForegroundRun.execute(spec: spec, outDir: dir, threads: 2) { logged.append($0) }
        // The scaling notes reach the run's log and spec.json.
        #expect(logged.contains { $0.contains("schedule scaled from 325 to 12 epochs; note: ") && $0.contains(notes[0]) }, "\(logged)")
        #expect(try RunSpec.parse(String(contentsOfFile: dir + "/spec.json", encoding: .utf8)).scaling?.notes == notes)
        let lines = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
        #expect(lines.count == 12)
        var previous: [String: Int] = [:]
        var stabilities: [Double] = []
        for (i, m) in lines.enumerated() {
            #expect(m["epoch"]?.intValue == i + 1)
            let pre = try #require(m["pre_test_acc"]?.doubleValue), post = try #require(m["test_acc"]?.doubleValue)
            guard case .object(let pruned)? = m["pruned"] else { Issue.record("no pruned counts"); continue }
            for (layer, count) in pruned {
                #expect((count.intValue ?? -1) >= previous[layer, default: 0], "masks never regrow")
                previous[layer] = count.intValue
            }
            if let event = m["prune_event"] {
                #expect(event["t_pre"]?.doubleValue == pre && event["t_post"]?.doubleValue == post)
                if let inst = event["instability"]?.doubleValue {
                    #expect(abs(inst - (pre - post) / pre) < 1e-12)
                    #expect(event["instability_points"]?.doubleValue == pre - post)
                    stabilities.append(100 * (1 - inst))
                }
                #expect((m["avg_pruned_score"]?.doubleValue ?? 0) > 0)
            } else {
                #expect(pre == post, "without a pruning event pre- and post-prune accuracy are one measurement")
                #expect(m["pre_test_loss"] == m["test_loss"])
            }
        }
        // The schedule ran to completion: final sparsity = the planned fractions (ceil rule).
        let planned = try #require(spec.pruning?.layers)
        for l in planned {
            let units = 64   // conv5…conv8 have 512 filters at width 1, 64 at width 1/8
            #expect(previous[l.name] == units - PruneSchedule.finalKept(units: units, fraction: l.fraction), "\(l.name)")
        }
        let st = RunMetrics(records: summary.records)
        let meanStability = try #require(st.meanStability)
        #expect(abs(meanStability - stabilities.reduce(0, +) / Double(stabilities.count)) < 1e-9)
        let lastEvent = planned.compactMap { $0.events.last }.max() ?? -1
        #expect(st.lastPruningEpoch == lastEvent + 1)   // metrics count epochs from 1
        let best = summary.records.filter { $0.epoch >= lastEvent + 1 }.map(\.post.top1).max() ?? -1
        #expect(st.bestTestAccuracy == best)
        #expect(best > 30, "a pruned tiny VGG should still learn Fashion-MNIST (got \(best)%)")
        let sum = try JSON.parse(String(contentsOfFile: dir + "/summary.json", encoding: .utf8))
        #expect(sum["mean_stability"]?.doubleValue == st.meanStability)
        #expect(sum["final_sparsity"]?["features.conv8"]?["pruned"]?.intValue == 57)
    }

    @Test func missingDatasetIsAClearError() {
        var s = spec(.conv4, epochs: 1)
        s.data.path = "/nonexistent/fashion"
        #expect { try PreparedData.load(s.data) } throws: { e in
            "\(e)".contains("/nonexistent/fashion")
        }
    }
}
