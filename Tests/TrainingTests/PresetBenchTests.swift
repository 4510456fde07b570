// `pruned bench --preset`: the final pruned state of a preset (every event of its schedule
// applied) and the benchmark rows for the dense and final states.
import Engine
import PrunedJSON
import Testing
@testable import Training

@Suite struct PresetBenchTests {
    /// F2_VGG_4 ends with conv5–7 at 359 of 512 filters and conv8 at 52: 74.9% of the dense
    /// multiply-adds (conv6–8 also lose the pruned inputs; the classifier reads 52 of 512 features).
    @Test func vggFinalStateHasTheScheduledCounts() throws {
        let preset = try #require(Presets.named("F2_VGG_4"))
        let (net, pruner) = try Benchmark.finalState(of: preset)
        let counts = try #require(pruner).prunedCounts
        #expect(counts.map(\.0) == ["features.conv5", "features.conv6", "features.conv7", "features.conv8"])
        #expect(counts.map(\.1) == [153, 153, 153, 460])
        let convs = net.convolutions
        #expect(convs[4].compact?.selection.outputs.count == 359 && convs[4].compact?.selection.inputs.count == 256)
        #expect(convs[7].compact?.selection.outputs.count == 52 && convs[7].compact?.selection.inputs.count == 359)
        let fraction = Double(net.executedForwardMACs()) / Double(net.forwardMACs())
        #expect(abs(fraction - 0.7487) < 1e-3, "mac fraction \(fraction)")
    }

    @Test func rowsForBothStates() throws {
        let preset = try #require(Presets.named("C4_S_L"))
        let rows = try Benchmark.runPreset(preset, threads: 1, batch: 2, evalBatch: 2, repetitions: 1, rounds: 2, profile: false) { _ in }
        #expect(rows.map { $0.state ?? "" } == ["dense", "dense", "final", "final"])
        #expect(rows.map(\.mode) == ["train", "eval", "train", "eval"])
        #expect(rows[0].macFraction == 1 && rows.allSatisfy { ($0.cpuSecondsPerBatch ?? 0) > 0 })
        // fc1 (8192 → 256) keeps 231 neurons, fc2 reads 231 features.
        let dense = Double(ModelFactory.make(.conv4, seed: 0).forwardMACs())
        let expected = (dense - Double(25 * 8192 + 25 * 256)) / dense
        #expect(abs((rows[2].macFraction ?? 0) - expected) < 1e-12)
        let json = rows[2].json
        #expect(json["state"]?.stringValue == "final" && json["preset"]?.stringValue == "C4_S_L")
        #expect(json["mac_fraction"]?.doubleValue.map { abs($0 - expected) < 1e-4 } == true)
    }
}
