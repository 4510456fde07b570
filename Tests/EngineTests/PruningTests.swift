// The pruning engine against the spec: the schedule formula and every row of the derived
// schedule table, selection and ties, E[BN] against Monte Carlo, masks that stay exactly zero,
// the ResNet shortcut drop, random targets, activation scores and noise with restore.
import Engine
import Testing

@Suite struct ScheduleTests {
    func amounts(_ units: Int, _ frac: Double, _ start: Int, _ end: Int, _ r: Int) -> [Int] {
        PruneSchedule.amounts(units: units, fraction: frac, events: LayerPlan(name: "", fraction: frac, start: start, end: end, period: r).events.count)
    }

    @Test func finalKeptUsesIEEEDouble() {
        #expect(PruneSchedule.finalKept(units: 512, fraction: 0.9) == 52)
        #expect(PruneSchedule.finalKept(units: 512, fraction: 0.3) == 359)
        #expect(PruneSchedule.finalKept(units: 512, fraction: 0.95) == 26)
        #expect(PruneSchedule.finalKept(units: 512, fraction: 0.25) == 384)
        #expect(PruneSchedule.finalKept(units: 512, fraction: 0.4) == 308)
        #expect(PruneSchedule.finalKept(units: 64, fraction: 0.1) == 58)
    }

    @Test func vggConv8() {
        #expect(amounts(512, 0.9, 6, 275, 40) == [65, 66, 66, 65, 66, 66, 66])
        let r4 = amounts(512, 0.9, 6, 275, 4)
        #expect(r4.count == 68 && r4.reduce(0, +) == 460)
        #expect(Array(r4.prefix(4)) == [6, 7, 7, 7])
        #expect(LayerPlan(name: "", fraction: 0.9, start: 6, end: 275, period: 40).events == [6, 46, 86, 126, 166, 206, 246])
    }

    @Test func vggConv5To7() {
        for start in [3, 4, 5] {
            let r4 = amounts(512, 0.3, start, 150, 4)
            #expect(r4.count == 37 && r4.reduce(0, +) == 153 && r4.first == 4)
            #expect(amounts(512, 0.3, start, 150, 40) == [38, 38, 38, 39])
        }
        #expect(LayerPlan(name: "", fraction: 0.3, start: 3, end: 150, period: 40).events == [3, 43, 83, 123])
    }

    @Test func resnet18Layer4() {
        #expect(amounts(512, 0.25, 7, 150, 4).count == 36 && amounts(512, 0.25, 7, 150, 4).reduce(0, +) == 128)
        #expect(amounts(512, 0.25, 7, 150, 40) == [32, 32, 32, 32])
        #expect(amounts(512, 0.4, 8, 150, 4).count == 36 && amounts(512, 0.4, 8, 150, 4).reduce(0, +) == 204)
        #expect(amounts(512, 0.4, 8, 150, 40) == [51, 51, 51, 51])
        #expect(amounts(512, 0.25, 9, 170, 4).count == 41 && amounts(512, 0.25, 9, 170, 4).reduce(0, +) == 128)
        #expect(amounts(512, 0.25, 9, 170, 40) == [25, 26, 25, 26, 26])
        #expect(amounts(512, 0.95, 10, 275, 4).count == 67 && amounts(512, 0.95, 10, 275, 4).reduce(0, +) == 486)
        #expect(amounts(512, 0.95, 10, 275, 40) == [69, 69, 70, 69, 70, 69, 70])
    }

    @Test func figure3SweepAndOthers() {
        let counts = [4, 20, 40, 60, 100, 200, 300].map { LayerPlan(name: "", fraction: 0.9, start: 6, end: 275, period: $0).events.count }
        #expect(counts == [68, 14, 7, 5, 3, 2, 1])
        #expect(amounts(512, 0.9, 6, 275, 300) == [460])
        #expect(amounts(512, 0.9, 6, 275, 200) == [230, 230])
        // F4: 64-filter layers lose 6 filters in total over events at 40, 70, 100.
        #expect(amounts(64, 0.1, 40, 100, 30).reduce(0, +) == 6)
        #expect(LayerPlan(name: "", fraction: 0.1, start: 40, end: 100, period: 30).events == [40, 70, 100])
        // FC3: r = 1 ⇒ 77 events, most prune nothing in a 64-filter layer.
        let fc3 = amounts(64, 0.1, 24, 100, 1)
        #expect(fc3.count == 77 && fc3.reduce(0, +) == 6 && fc3.filter { $0 == 0 }.count == 71)
        // TF1: 2 × 35 %, 358 of 512 pruned; scratch: one event.
        #expect(amounts(512, 0.7, 2500, 3500, 750) == [179, 179])
        #expect(LayerPlan(name: "", fraction: 0.9, start: 0, end: 0, period: 40).events == [0])
    }

    @Test func selectionAndTies() {
        #expect(PruneSchedule.select(scores: [5, 1, 3, 2], k: 2, largest: false) == [1, 3])
        #expect(PruneSchedule.select(scores: [5, 1, 3, 2], k: 2, largest: true) == [0, 2])
        // All equal: the first k by index.
        #expect(PruneSchedule.select(scores: [1, 1, 1, 1], k: 3, largest: true) == [0, 1, 2])
        // Ties beyond k: the first k candidates by index (the authors' rule, even past a larger one).
        #expect(PruneSchedule.select(scores: [7, 7, 9, 3], k: 2, largest: true) == [0, 1])
        #expect(PruneSchedule.select(scores: [2, 0, 0, 5, 0], k: 2, largest: false) == [1, 2])
        #expect(PruneSchedule.select(scores: [2, 0], k: 5, largest: false) == [0, 1])
        #expect(PruneSchedule.select(scores: [], k: 1, largest: false) == [])
    }

    @Test(arguments: [(1.0, 0.0), (0.5, 0.3), (2.0, -1.0), (-0.7, 0.4), (0.2, -0.5)])
    func expectedBNMatchesMonteCarlo(_ p: (Double, Double)) {
        let (gamma, beta) = p
        var rng = CounterRNG(seed: 1, purpose: .noise, 5)
        let n = 400_000
        var total = 0.0
        for _ in 0 ..< n { total += max(0, beta + abs(gamma) * rng.normal()) }
        let mc = total / Double(n)
        let e = PruneSchedule.expectedBN(gamma: gamma, beta: beta, signed: false)
        #expect(abs(e - mc) < 0.01 * max(1, abs(mc)), "E[BN](γ=\(gamma), β=\(beta)) = \(e), Monte Carlo \(mc)")
        // Closed form β·Φ(β/|γ|) + |γ|·φ(β/|γ|).
        let s = abs(gamma), x = beta / s
        let closed = beta * 0.5 * erfc(-x / 2.0.squareRoot()) + s * exp(-x * x / 2) / (2 * Double.pi).squareRoot()
        #expect(abs(e - closed) < 1e-12)
        #expect(PruneSchedule.expectedBN(gamma: 0, beta: 0, signed: false) == 0)
        #expect(PruneSchedule.expectedBN(gamma: 0, beta: -1, signed: false) == 0)
        // The _alt variant uses signed γ: negative for γ < 0 with β = 0.
        #expect(PruneSchedule.expectedBN(gamma: -1, beta: 0, signed: true) < 0)
    }
}

import Foundation
