// A Linear layer run over a ChannelSelection (Compaction.swift): the selected neurons of the
// selected input features go through an inner Linear of the compact shape, its weights and
// biases gathered from the full ones before each forward call, and the results are placed into
// full-shape activations and gradients.
//   forward:  y[:, o] from the inner layer for selected neurons, the bias (held at 0) otherwise.
//   backward: weight and bias gradients added into the selected entries of the full gradient,
//             the bias gradient of an unselected neuron summed as Linear sums it; the input
//             gradient is 0 on the unselected (zero) features.

public final class CompactLinear {
    public let selection: ChannelSelection
    private unowned let linear: Linear
    private unowned let store: ParameterStore
    private let innerStore = ParameterStore()
    private let inner: Linear
    private let inputRuns: IndexRuns
    private let outputRuns: IndexRuns
    private let gatheredInput = FloatBuffer(count: 0)
    private let gatheredGradient = FloatBuffer(count: 0)
    private let output = FloatBuffer(count: 0)
    private let gradInput = FloatBuffer(count: 0)
    private var input: Activation?

    init(_ linear: Linear, store: ParameterStore, selection: ChannelSelection) {
        self.linear = linear
        self.store = store
        self.selection = selection
        inputRuns = IndexRuns(selection.inputs)
        outputRuns = IndexRuns(selection.outputs)
        inner = Linear(linear.name, store: innerStore, inFeatures: selection.inputs.count, outFeatures: selection.outputs.count,
                       weightInit: .zeros, biasInit: .zeros)
        innerStore.finalise(seed: 0)
    }

    private var hasProducts: Bool { !selection.outputs.isEmpty && !selection.inputs.isEmpty }

    /// The columns `runs` select from each row of a row-major [rows, width] matrix, into `buffer`.
    private func gatherColumns(_ a: UnsafeMutablePointer<Float>, rows: Int, width: Int, _ runs: IndexRuns, count n: Int,
                               into buffer: FloatBuffer, _ ctx: ExecutionContext) -> UnsafeMutablePointer<Float> {
        buffer.reserve(rows * n)
        let dst = buffer.ptr
        ctx.workers.forEachRange(rows, minimumPerThread: 8) { r in
            for i in r { runs.gather(a + i * width, into: dst + i * n) }
        }
        return dst
    }

    func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        input = x
        let outs = selection.outputs, ins = selection.inputs
        let n = x.batch, inF = linear.inFeatures, outF = linear.outFeatures
        let b = store.value(linear.bias)
        var computed: UnsafeMutablePointer<Float>?
        if hasProducts {
            let w = store.value(linear.weight), wc = innerStore.value(inner.weight), bc = innerStore.value(inner.bias)
            let inL = ins.count, runs = inputRuns
            ctx.workers.forEachRange(outs.count, minimumPerThread: 16) { r in
                for j in r { runs.gather(w + outs[j] * inF, into: wc + j * inL) }
            }
            outputRuns.gather(b, into: bc)
            let xs = ins.count == inF ? x
                : Activation(data: gatherColumns(x.data, rows: n, width: inF, runs, count: inL, into: gatheredInput, ctx), channels: inL,
                             batch: n, height: 1, width: 1, layout: .rowMajor)
            let ys = inner.forward(xs, ctx)
            if outs.count == outF { return ys }
            computed = ys.data
        }
        output.reserve(n * outF)
        let y = output.ptr, outL = outs.count, runs = outputRuns
        ctx.workers.forEachRange(n, minimumPerThread: 8) { r in
            for i in r {
                let d = y + i * outF
                d.update(from: b, count: outF)
                if let computed { runs.scatter(computed + i * outL, into: d) }
            }
        }
        return Activation(data: y, channels: outF, batch: n, height: 1, width: 1, layout: .rowMajor)
    }

    func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        guard let x = input else { return dy }
        let outs = selection.outputs, ins = selection.inputs
        let n = x.batch, inF = linear.inFeatures, outF = linear.outFeatures
        let needDX = linear.computesInputGradient
        let gw = store.gradient(linear.weight), gb = store.gradient(linear.bias)
        var dxs: Activation?
        var slot = [Int](repeating: -1, count: outF)
        if hasProducts {
            slot = slots(outs, count: outF)
            let dys = outs.count == outF ? dy
                : Activation(data: gatherColumns(dy.data, rows: n, width: outF, outputRuns, count: outs.count, into: gatheredGradient, ctx),
                             channels: outs.count, batch: n, height: 1, width: 1, layout: .rowMajor)
            innerStore.zeroGradients()
            inner.computesInputGradient = needDX
            dxs = inner.backward(dys, ctx)
            let gc = innerStore.gradient(inner.weight), gbc = innerStore.gradient(inner.bias), inL = ins.count, runs = inputRuns
            ctx.workers.forEachRange(outs.count, minimumPerThread: 16) { r in
                for j in r { runs.scatterAdd(gc + j * inL, into: gw + outs[j] * inF) }
            }
            outputRuns.scatterAdd(gbc, into: gb)
        }
        // Unselected neurons: the bias gradient as Linear sums it (their weights get none).
        for o in 0 ..< outF where slot[o] < 0 {
            var s = 0.0
            for i in 0 ..< n { s += Double(dy.data[i * outF + o]) }
            gb[o] += Float(s)
        }
        if needDX, let dxs, ins.count == inF { return dxs }
        if needDX {
            gradInput.reserve(n * inF)
            let dx = gradInput.ptr, inL = ins.count, src = dxs?.data, runs = inputRuns
            ctx.workers.forEachRange(n, minimumPerThread: 8) { r in
                for i in r {
                    let d = dx + i * inF
                    d.update(repeating: 0, count: inF)
                    if let src { runs.scatter(src + i * inL, into: d) }
                }
            }
        }
        return Activation(data: gradInput.ptr, channels: x.channels, batch: n, height: x.height, width: x.width, layout: x.layout)
    }
}
