// The daemon's event history: every event gets the next sequence number (from 1), and only the
// newest `capacity` are kept, so a client that reconnects can replay what it missed with
// `subscribe since=N` — or learn how many it lost. A pure value: the daemon guards it with its
// lock, the control loop reads batches from it, and it does no I/O.
import Control
import PrunedJSON

struct Event: Equatable {
    var seq: UInt64
    var run: RunID?
    var group: String?
    var json: JSON
}

struct EventRing {
    let capacity: Int
    /// Oldest first; seq numbers are consecutive.
    private(set) var events: [Event] = []
    private(set) var nextSeq: UInt64 = 1

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// The sequence number of the oldest event still held (`nextSeq` when none is).
    var oldestSeq: UInt64 { events.first?.seq ?? nextSeq }

    /// Appends an event whose JSON is `seq` followed by `fields`; returns its sequence number.
    @discardableResult
    mutating func append(run: RunID?, group: String?, fields: [(String, JSON)]) -> UInt64 {
        let seq = nextSeq
        events.append(Event(seq: seq, run: run, group: group, json: .object([("seq", .number(Double(seq)))] + fields)))
        nextSeq += 1
        if events.count > capacity { events.removeFirst(events.count - capacity) }
        return seq
    }

    /// Where a subscriber that saw everything up to `since` (nil: nothing, start from now)
    /// continues, and what it cannot get back.
    struct Subscription: Equatable {
        /// The first sequence number the subscriber will be sent.
        var cursor: UInt64
        /// Events after `since` that fell off the ring before the subscriber came back.
        var lost: UInt64
        /// `since` was never issued by this ring (another boot of the daemon): replay all held.
        var reset: Bool
    }

    func subscribe(since: UInt64?) -> Subscription {
        guard let since else { return Subscription(cursor: nextSeq, lost: 0, reset: false) }
        // Compared before adding 1: `since` may be any UInt64, even UInt64.max.
        if since >= nextSeq { return Subscription(cursor: oldestSeq, lost: 0, reset: true) }
        let from = since + 1
        let oldest = oldestSeq
        return Subscription(cursor: max(from, oldest), lost: from < oldest ? oldest - from : 0, reset: false)
    }

    /// The held events with a sequence number ≥ `cursor`, oldest first.
    func events(from cursor: UInt64) -> ArraySlice<Event> {
        guard let first = events.first, cursor < nextSeq else { return [] }
        let skip = cursor > first.seq ? Int(cursor - first.seq) : 0
        return events[min(skip, events.count)...]
    }
}
