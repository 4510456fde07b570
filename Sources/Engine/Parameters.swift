// The parameter arena. Every trainable tensor of a model lives in one flat buffer, with its
// gradient at the same offset in a second buffer (llm.c style), so zeroing gradients, the
// optimizer step, masking and checkpointing are each one loop. Non-trainable state
// (BatchNorm running statistics) lives in a separate "buffers" arena with the same habits.

/// How a tensor is initialised, in PyTorch terms.
public enum Initialiser: Sendable, Equatable {
    case zeros
    case ones
    case constant(Float)
    /// N(0, std²)
    case normal(std: Double)
    /// U(-bound, +bound)
    case uniform(bound: Double)
}

/// A named tensor's place in an arena.
public struct TensorSlot: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
}

public final class ParameterStore: @unchecked Sendable {
    public private(set) var parameters: [TensorSlot] = []
    public private(set) var buffers: [TensorSlot] = []
    private var parameterInits: [Initialiser] = []
    private var bufferInits: [Initialiser] = []
    public private(set) var values = FloatBuffer(count: 0)
    public private(set) var gradients = FloatBuffer(count: 0)
    public private(set) var state = FloatBuffer(count: 0)
    public private(set) var parameterCount = 0
    public private(set) var bufferCount = 0
    public private(set) var isFinalised = false

    public init() {}

    /// Declares a trainable tensor; storage exists after `finalise`.
    public func parameter(_ name: String, shape: [Int], init initialiser: Initialiser) -> TensorSlot {
        precondition(!isFinalised, "parameters are declared before finalise")
        let slot = TensorSlot(name: name, shape: shape, offset: parameterCount)
        parameters.append(slot)
        parameterInits.append(initialiser)
        parameterCount += slot.count
        return slot
    }

    /// Declares a non-trainable state tensor (BatchNorm running statistics).
    public func buffer(_ name: String, shape: [Int], init initialiser: Initialiser) -> TensorSlot {
        precondition(!isFinalised, "buffers are declared before finalise")
        let slot = TensorSlot(name: name, shape: shape, offset: bufferCount)
        buffers.append(slot)
        bufferInits.append(initialiser)
        bufferCount += slot.count
        return slot
    }

    /// Allocates the arenas and initialises every tensor from its own random stream
    /// (seed, tensor index), so a tensor's initial values do not depend on the others.
    public func finalise(seed: UInt64) {
        precondition(!isFinalised)
        values = FloatBuffer(count: parameterCount)
        gradients = FloatBuffer(count: parameterCount)
        state = FloatBuffer(count: bufferCount)
        for (i, slot) in parameters.enumerated() {
            var rng = CounterRNG(seed: seed, purpose: .initialisation, UInt64(i))
            fill(values.ptr + slot.offset, slot.count, parameterInits[i], &rng)
        }
        for (i, slot) in buffers.enumerated() {
            var rng = CounterRNG(seed: seed, purpose: .initialisation, UInt64(1_000_000 + i))
            fill(state.ptr + slot.offset, slot.count, bufferInits[i], &rng)
        }
        isFinalised = true
    }

    private func fill(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ initialiser: Initialiser, _ rng: inout CounterRNG) {
        switch initialiser {
        case .zeros: p.update(repeating: 0, count: n)
        case .ones: p.update(repeating: 1, count: n)
        case .constant(let c): p.update(repeating: c, count: n)
        case .normal(let std): for i in 0 ..< n { p[i] = Float(rng.normal() * std) }
        case .uniform(let bound): for i in 0 ..< n { p[i] = Float((rng.uniform() * 2 - 1) * bound) }
        }
    }

    @inline(__always) public func value(_ s: TensorSlot) -> UnsafeMutablePointer<Float> { values.ptr + s.offset }
    @inline(__always) public func gradient(_ s: TensorSlot) -> UnsafeMutablePointer<Float> { gradients.ptr + s.offset }
    @inline(__always) public func stateValue(_ s: TensorSlot) -> UnsafeMutablePointer<Float> { state.ptr + s.offset }

    public func zeroGradients() { gradients.zero() }

    public func parameter(named name: String) -> TensorSlot? { parameters.first { $0.name == name } }
    public func buffer(named name: String) -> TensorSlot? { buffers.first { $0.name == name } }
}
