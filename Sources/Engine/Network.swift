// A network: an ordered list of layers over one parameter store, with the forward/backward
// drivers. Models are built by `ModelFactory`; a network knows its architecture name and
// the per-sample input shape it expects.

public final class Network {
    public let architecture: String
    public let store: ParameterStore
    public let layers: [Layer]
    public let inputShape: FeatureShape
    public let classes: Int

    public init(architecture: String, store: ParameterStore, layers: [Layer], inputShape: FeatureShape, classes: Int) {
        self.architecture = architecture
        self.store = store
        self.layers = layers
        self.inputShape = inputShape
        self.classes = classes
        layers.first?.computesInputGradient = false
    }

    public var parameterCount: Int { store.parameterCount }

    /// Per-sample output shape of every layer, in order.
    public func shapes() -> [(String, FeatureShape)] {
        var s = inputShape
        return layers.map { l in s = l.outputShape(s); return (l.name, s) }
    }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        var a = x
        for l in layers { a = l.forward(a, ctx) }
        return a
    }

    /// Backpropagates ∂loss/∂logits; parameter gradients accumulate into `store.gradients`.
    public func backward(_ dLogits: Activation, _ ctx: ExecutionContext) {
        var g = dLogits
        for l in layers.reversed() { g = l.backward(g, ctx) }
    }
}
