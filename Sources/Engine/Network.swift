// A network: an ordered list of layers over one parameter store, with the forward/backward
// drivers. Models are built by `ModelFactory`; a network knows its architecture name and
// the per-sample input shape it expects. A forward pass starts by freeing the context's arena
// (Layer.swift): the previous pass's logits and last gradient are not read again.

public final class Network {
    public let architecture: Architecture
    public let store: ParameterStore
    public let layers: [Layer]
    public let inputShape: FeatureShape
    public let classes: Int

    public init(architecture: Architecture, store: ParameterStore, layers: [Layer], inputShape: FeatureShape, classes: Int) {
        self.architecture = architecture
        self.store = store
        self.layers = layers
        self.inputShape = inputShape
        self.classes = classes
        layers.first?.computesInputGradient = false
        // A ReLU after a BatchNorm has its forward run inside the BatchNorm's pass
        // (BatchNorm2D.fusedReLU). A ReLU after a layer whose backward does not read that
        // layer's output (it reads the input) overwrites the output in training; its own
        // backward reads it as its output.
        for (previous, l) in zip(layers, layers.dropFirst()) {
            guard let r = l as? ReLU else { continue }
            if let bn = previous as? BatchNorm2D, !bn.transientOutput {
                bn.fusedReLU = true
                r.fused = true
            } else if previous is Conv2D || previous is Linear {
                r.inPlace = true
            }
        }
    }

    public var parameterCount: Int { store.parameterCount }

    /// Optional per-layer timing (set by benchmarks; the engine itself reads no clock).
    public var profiler: LayerProfiler?

    /// Called before every forward call of a top-level convolution, in training and in
    /// evaluation (noise injection modifies weights here, docs/EXPERIMENTS.md §7).
    public var beforeConvolution: ((Conv2D) -> Void)?

    /// Every convolution, in forward order, including those inside residual blocks.
    public var convolutions: [Conv2D] {
        layers.flatMap { l -> [Conv2D] in
            switch l {
            case let c as Conv2D: return [c]
            case let b as BasicBlock:
                if case .projection(let c, _) = b.shortcut { return [b.conv1, b.conv2, c] }
                return [b.conv1, b.conv2]
            default: return []
            }
        }
    }

    /// Multiply-accumulates of one forward pass of one sample (convolutions and dense layers).
    public func forwardMACs() -> Int {
        var s = inputShape, total = 0
        func conv(_ c: Conv2D, _ input: FeatureShape) -> Int {
            let o = c.outputShape(input)
            return o.channels * o.height * o.width * c.inChannels * c.kernel * c.kernel
        }
        for l in layers {
            switch l {
            case let c as Conv2D: total += conv(c, s)
            case let d as Linear: total += d.inFeatures * d.outFeatures
            case let b as BasicBlock:
                total += conv(b.conv1, s) + conv(b.conv2, b.conv1.outputShape(s))
                if case .projection(let c, _) = b.shortcut { total += conv(c, s) }
            default: break
            }
            s = l.outputShape(s)
        }
        return total
    }

    /// Per-sample output shape of every layer, in order.
    public func shapes() -> [(String, FeatureShape)] {
        var s = inputShape
        return layers.map { l in s = l.outputShape(s); return (l.name, s) }
    }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        ctx.arena.releaseAll()
        var a = x
        if let hook = beforeConvolution {
            for l in layers {
                if let c = l as? Conv2D { hook(c) }
                a = l.forward(a, ctx)
            }
            return a
        }
        if let p = profiler {
            for l in layers { let t = p.now(); a = l.forward(a, ctx); p.record(l.name, backward: false, seconds: p.now() - t) }
            return a
        }
        for l in layers { a = l.forward(a, ctx) }
        return a
    }

    /// Backpropagates ∂loss/∂logits; parameter gradients accumulate into `store.gradients`.
    public func backward(_ dLogits: Activation, _ ctx: ExecutionContext) {
        var g = dLogits
        if let p = profiler {
            for l in layers.reversed() { let t = p.now(); g = l.backward(g, ctx); p.record(l.name, backward: true, seconds: p.now() - t) }
            return
        }
        for l in layers.reversed() { g = l.backward(g, ctx) }
    }
}

/// Receives per-layer timings when installed on a network.
public protocol LayerProfiler: AnyObject {
    func now() -> Double
    func record(_ layer: String, backward: Bool, seconds: Double)
}
