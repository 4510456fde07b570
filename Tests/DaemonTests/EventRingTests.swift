// The event ring on its own: consecutive sequence numbers from 1, the oldest falling off past
// the capacity, replay from a sequence number with what was lost counted, a sequence number
// from another boot (or any UInt64, up to UInt64.max) treated as a reset, and batches by cursor.
import Control
@testable import Daemon
import PrunedJSON
import Testing

@Suite struct EventRingTests {
    func ring(_ capacity: Int, filled n: Int) -> EventRing {
        var r = EventRing(capacity: capacity)
        for i in 0 ..< n { r.append(run: RunID(i % 3 + 1), group: i % 2 == 0 ? "even" : nil, fields: [("type", .string("t\(i)"))]) }
        return r
    }

    @Test func sequenceNumbersAreConsecutiveAndTheOldestFallOff() {
        var r = EventRing(capacity: 4)
        #expect(r.oldestSeq == 1 && r.nextSeq == 1 && r.events(from: 0).isEmpty)
        #expect(r.append(run: nil, group: nil, fields: [("type", .string("a"))]) == 1)
        #expect(r.events.first?.json == .object([("seq", .number(1)), ("type", .string("a"))]))
        r = ring(4, filled: 10)
        #expect(r.events.map(\.seq) == [7, 8, 9, 10])
        #expect(r.oldestSeq == 7 && r.nextSeq == 11)
        #expect(r.events.allSatisfy { $0.json["seq"]?.intValue == Int($0.seq) })
    }

    @Test func batchesByCursor() {
        let r = ring(4, filled: 10)
        #expect(r.events(from: 0).map(\.seq) == [7, 8, 9, 10])
        #expect(r.events(from: 9).map(\.seq) == [9, 10])
        #expect(r.events(from: 11).isEmpty)
        #expect(r.events(from: .max).isEmpty)
    }

    @Test func subscribingCountsWhatWasLostAndResetsOnForeignNumbers() {
        let r = ring(4, filled: 10)
        // From now on.
        #expect(r.subscribe(since: nil) == .init(cursor: 11, lost: 0, reset: false))
        // Saw up to 8: continues at 9, nothing lost.
        #expect(r.subscribe(since: 8) == .init(cursor: 9, lost: 0, reset: false))
        // Saw up to 10 (everything).
        #expect(r.subscribe(since: 10) == .init(cursor: 11, lost: 0, reset: false))
        // Saw up to 3: 4, 5 and 6 fell off the ring.
        #expect(r.subscribe(since: 3) == .init(cursor: 7, lost: 3, reset: false))
        #expect(r.subscribe(since: 0) == .init(cursor: 7, lost: 6, reset: false))
        // Numbers this ring never issued: another boot; replay what is held.
        for since: UInt64 in [11, 12, 1 << 40, UInt64(Int64.max), .max - 1, .max] {
            #expect(r.subscribe(since: since) == .init(cursor: 7, lost: 0, reset: true), "since=\(since)")
        }
        // An empty ring.
        let empty = EventRing(capacity: 4)
        #expect(empty.subscribe(since: 0) == .init(cursor: 1, lost: 0, reset: false))
        #expect(empty.subscribe(since: .max) == .init(cursor: 1, lost: 0, reset: true))
    }

    @Test func aCapacityBelowOneKeepsOne() {
        let r = ring(0, filled: 3)
        #expect(r.events.map(\.seq) == [3])
    }
}
