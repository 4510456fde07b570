// Fully connected layer: x [N, in] → y [N, out] = x·Wᵀ + b, weight [out, in] (PyTorch order).
// Workers own fixed row ranges of the batch; weight-gradient partials are summed in order.

public final class Linear: Layer {
    public let name: String
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: TensorSlot
    public let bias: TensorSlot
    public var computesInputGradient = true
    /// Set by pruning when neurons or features leave this layer's GEMMs (Compaction.swift).
    public internal(set) var compact: CompactLinear?

    private unowned let store: ParameterStore
    /// Output memory of recording forwards.
    private let output = FloatBuffer(count: 0)
    private var input: Activation?

    public init(_ name: String, store: ParameterStore, inFeatures: Int, outFeatures: Int,
                weightInit: Initialiser? = nil, biasInit: Initialiser? = nil) {
        self.name = name
        self.store = store
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        // PyTorch's default: U(±1/√fan_in) for both weight and bias.
        let bound = 1 / Double(inFeatures).squareRoot()
        weight = store.parameter(name + ".weight", shape: [outFeatures, inFeatures], init: weightInit ?? .uniform(bound: bound))
        bias = store.parameter(name + ".bias", shape: [outFeatures], init: biasInit ?? .uniform(bound: bound))
    }

    public func outputShape(_ s: FeatureShape) -> FeatureShape {
        FeatureShape(channels: outFeatures, height: 1, width: 1, layout: .rowMajor)
    }

    private func parts(_ n: Int, _ ctx: ExecutionContext) -> Int { max(1, min(ctx.threads, n / 8)) }

    public func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        if let compact { return compact.forward(x, ctx) }
        let recording = ctx.recordsForBackward, count = x.batch * outFeatures
        let y = ctx.forwardOutput(output, count)
        input = recording ? x : nil
        compute(x, into: y, ctx)
        if !recording { ctx.arena.release(x.data) }
        return Activation(data: y, channels: outFeatures, batch: x.batch, height: 1, width: 1, layout: .rowMajor)
    }

    public func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        if let compact { return compact.backward(dy, ctx) }
        guard let x = input else { return dy }
        let dx = ctx.arena.acquire(x.batch * inFeatures)
        computeGradients(dy, input: x, dx: computesInputGradient ? dx : nil, ctx)
        ctx.arena.release(dy.data)
        return Activation(data: dx, channels: x.channels, batch: x.batch, height: x.height, width: x.width, layout: x.layout)
    }

    /// y (N · outFeatures floats) = x·Wᵀ + b; keeps nothing.
    func compute(_ x: Activation, into y: UnsafeMutablePointer<Float>, _ ctx: ExecutionContext) {
        let n = x.batch, inF = inFeatures, outF = outFeatures
        let w = store.value(weight), b = store.value(bias)
        let p = parts(n, ctx)
        ctx.workers.run { t in
            guard t < p else { return }
            let r = partition(n, parts: p, index: t)
            for i in r { (y + i * outF).update(from: b, count: outF) }
            gemm(transB: true, m: r.count, n: outF, k: inF, a: x.data + r.lowerBound * inF, lda: inF,
                 b: w, ldb: inF, beta: 1, c: y + r.lowerBound * outF, ldc: outF)
        }
    }

    /// Accumulates the parameter gradients for output gradient dy at input x and, when `dx` is
    /// given, overwrites it with the input gradient.
    func computeGradients(_ dy: Activation, input x: Activation, dx: UnsafeMutablePointer<Float>?, _ ctx: ExecutionContext) {
        let n = x.batch, inF = inFeatures, outF = outFeatures
        let w = store.value(weight), gw = store.gradient(weight), gb = store.gradient(bias)
        let p = parts(n, ctx)
        ctx.workers.run { t in
            guard t < p else { return }
            let r = partition(n, parts: p, index: t)
            let dW = t == 0 ? gw : ctx.scratch(t, .weightGradient, outF * inF)
            if t != 0 { dW.update(repeating: 0, count: outF * inF) }
            gemm(transA: true, m: outF, n: inF, k: r.count, a: dy.data + r.lowerBound * outF, lda: outF,
                 b: x.data + r.lowerBound * inF, ldb: inF, beta: 1, c: dW, ldc: inF)
            if let dx {
                gemm(m: r.count, n: inF, k: outF, a: dy.data + r.lowerBound * outF, lda: outF,
                     b: w, ldb: inF, c: dx + r.lowerBound * inF, ldc: inF)
            }
        }
        for t in 1 ..< p {
            let part = ctx.scratch(t, .weightGradient, outF * inF)
            for i in 0 ..< outF * inF { gw[i] += part[i] }
        }
        for j in 0 ..< outF {
            var s = 0.0
            for i in 0 ..< n { s += Double(dy.data[i * outF + j]) }
            gb[j] += Float(s)
        }
    }
}
