// The execution context's memory for activations that are read once and then dropped: every
// activation of an evaluation forward, every gradient of a backward pass, and the transient
// results inside a residual block (its second BatchNorm's output and its shortcut). Slots are
// held by count: a step acquires a slot for its result and releases its input when done with
// it (a consumer that shares its input, like a residual block's, retains it once more first).
// A step whose input it holds alone may overwrite that input and pass the slot on as its
// result (`isExclusive`): elementwise steps (BatchNorm in evaluation, ReLU, the block's sum)
// work in place. So the arena grows to the largest set of activations alive at one time, not
// with the depth of the network: two to three activations, each at most the largest one.
// Memory the arena does not own passes through `retain`/`release` untouched, so a step need
// not know where its input came from.

public final class ActivationArena {
    private var slots: [FloatBuffer] = []
    private var holders: [Int] = []

    public init() {}

    /// Number of slots (the most activations that were alive at one time).
    public var slotCount: Int { slots.count }

    /// Floats allocated by all slots together.
    public var capacity: Int { slots.reduce(0) { $0 + $1.count } }

    /// Slots currently held.
    public var heldCount: Int { holders.filter { $0 > 0 }.count }

    private func slot(_ p: UnsafeMutablePointer<Float>) -> Int? {
        slots.firstIndex { $0.ptr == p }
    }

    /// A slot of at least `count` floats, held once, contents unspecified: the smallest free
    /// slot that fits, else the largest free slot grown, else a new slot.
    public func acquire(_ count: Int) -> UnsafeMutablePointer<Float> {
        var fit: Int?, largest: Int?
        for i in slots.indices where holders[i] == 0 {
            if slots[i].count >= count && (fit.map { slots[i].count < slots[$0].count } ?? true) { fit = i }
            if largest.map({ slots[i].count > slots[$0].count }) ?? true { largest = i }
        }
        let i: Int
        if let fit {
            i = fit
        } else if let largest {
            i = largest
            slots[i].reserve(count)
        } else {
            slots.append(FloatBuffer(count: count))
            holders.append(0)
            i = slots.count - 1
        }
        holders[i] = 1
        return slots[i].ptr
    }

    /// One more holder of `p` (nothing if the arena does not own `p`).
    public func retain(_ p: UnsafeMutablePointer<Float>) {
        if let i = slot(p) { holders[i] += 1 }
    }

    /// One holder fewer of `p`; the slot is free when none is left (nothing if the arena does
    /// not own `p`).
    public func release(_ p: UnsafeMutablePointer<Float>) {
        if let i = slot(p), holders[i] > 0 { holders[i] -= 1 }
    }

    /// Whether `p` is an arena slot with one holder: the caller, which may overwrite it.
    public func isExclusive(_ p: UnsafeMutablePointer<Float>) -> Bool {
        slot(p).map { holders[$0] == 1 } ?? false
    }

    /// Frees every slot (a network starts a forward pass: nothing of the previous pass, such
    /// as its logits or the last input gradient, is read again). The memory stays allocated.
    public func releaseAll() {
        for i in holders.indices { holders[i] = 0 }
    }
}
