// A Linear layer run over a ChannelSelection (Compaction.swift): the selected neurons of the
// selected input features go through an inner Linear of the compact shape, its weights and
// biases gathered from the full ones before each forward call, and the results are placed into
// full-shape activations and gradients.
//   forward:  y[:, o] from the inner layer for selected neurons, the bias (held at 0) otherwise.
//   backward: weight and bias gradients added into the selected entries of the full gradient,
//             the bias gradient of an unselected neuron summed as Linear sums it; the input
//             gradient is 0 on the unselected (zero) features.
// The gathered input and output gradient live in the context's scratch (backward gathers the
// input again); full-shape results are this layer's memory in training, arena slots otherwise.

public final class CompactLinear {
    public let selection: ChannelSelection
    private unowned let linear: Linear
    private unowned let store: ParameterStore
    private let innerStore = ParameterStore()
    private let inner: Linear
    private let inputRuns: IndexRuns
    private let outputRuns: IndexRuns
    /// Output memory of recording forwards.
    private let output = FloatBuffer(count: 0)
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

    /// The columns `runs` select from each row of a row-major [rows, width] matrix, into `dst`.
    private func gatherColumns(_ a: UnsafeMutablePointer<Float>, rows: Int, width: Int, _ runs: IndexRuns, count n: Int,
                               into dst: UnsafeMutablePointer<Float>, _ ctx: ExecutionContext) -> UnsafeMutablePointer<Float> {
        ctx.workers.forEachRange(rows, minimumPerThread: 8) { r in
            for i in r { runs.gather(a + i * width, into: dst + i * n) }
        }
        return dst
    }

    /// x itself when every input feature is selected, else its selected features gathered into
    /// the context's scratch.
    private func gatheredInput(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        let inL = selection.inputs.count, n = x.batch
        guard inL != linear.inFeatures else { return x }
        let dst = ctx.scratch(0, .gatheredInput, n * inL)
        return Activation(data: gatherColumns(x.data, rows: n, width: linear.inFeatures, inputRuns, count: inL, into: dst, ctx),
                          channels: inL, batch: n, height: 1, width: 1, layout: .rowMajor)
    }

    func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        let recording = ctx.recordsForBackward
        input = recording ? x : nil
        let outs = selection.outputs, ins = selection.inputs
        let n = x.batch, inF = linear.inFeatures, outF = linear.outFeatures
        let b = store.value(linear.bias)
        let y = ctx.forwardOutput(output, n * outF)
        if hasProducts {
            let w = store.value(linear.weight), wc = innerStore.value(inner.weight), bc = innerStore.value(inner.bias)
            let inL = ins.count, runs = inputRuns
            ctx.workers.forEachRange(outs.count, minimumPerThread: 16) { r in
                for j in r { runs.gather(w + outs[j] * inF, into: wc + j * inL) }
            }
            outputRuns.gather(b, into: bc)
        }
        if hasProducts && outs.count == outF {
            inner.compute(gatheredInput(x, ctx), into: y, ctx)
        } else {
            // The selected neurons computed compactly in scratch, then placed among the biases.
            var computed: UnsafeMutablePointer<Float>?
            if hasProducts {
                let c = ctx.scratch(0, .gatheredGradient, n * outs.count)
                inner.compute(gatheredInput(x, ctx), into: c, ctx)
                computed = c
            }
            let outL = outs.count, runs = outputRuns
            ctx.workers.forEachRange(n, minimumPerThread: 8) { r in
                for i in r {
                    let d = y + i * outF
                    d.update(from: b, count: outF)
                    if let computed { runs.scatter(computed + i * outL, into: d) }
                }
            }
        }
        if !recording { ctx.arena.release(x.data) }
        return Activation(data: y, channels: outF, batch: n, height: 1, width: 1, layout: .rowMajor)
    }

    func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        guard let x = input else { return dy }
        let outs = selection.outputs, ins = selection.inputs
        let n = x.batch, inF = linear.inFeatures, outF = linear.outFeatures
        let needDX = linear.computesInputGradient
        let gw = store.gradient(linear.weight), gb = store.gradient(linear.bias)
        let dx = ctx.arena.acquire(n * inF)
        var slot = [Int](repeating: -1, count: outF)
        if hasProducts {
            slot = slots(outs, count: outF)
            let dys = outs.count == outF ? dy
                : Activation(data: gatherColumns(dy.data, rows: n, width: outF, outputRuns, count: outs.count,
                                                 into: ctx.scratch(0, .gatheredGradient, n * outs.count), ctx),
                             channels: outs.count, batch: n, height: 1, width: 1, layout: .rowMajor)
            innerStore.zeroGradients()
            // The compact input gradient: dx itself when every feature is selected.
            let inL = ins.count
            let dxs = !needDX ? nil : inL == inF ? dx : ctx.arena.acquire(n * inL)
            inner.computeGradients(dys, input: gatheredInput(x, ctx), dx: dxs, ctx)
            let gc = innerStore.gradient(inner.weight), gbc = innerStore.gradient(inner.bias), runs = inputRuns
            ctx.workers.forEachRange(outs.count, minimumPerThread: 16) { r in
                for j in r { runs.scatterAdd(gc + j * inL, into: gw + outs[j] * inF) }
            }
            outputRuns.scatterAdd(gbc, into: gb)
            if let dxs, dxs != dx {
                scatterInputGradient(dxs, into: dx, n, ctx)
                ctx.arena.release(dxs)
            }
        } else if needDX {
            scatterInputGradient(nil, into: dx, n, ctx)
        }
        // Unselected neurons: the bias gradient as Linear sums it (their weights get none).
        for o in 0 ..< outF where slot[o] < 0 {
            var s = 0.0
            for i in 0 ..< n { s += Double(dy.data[i * outF + o]) }
            gb[o] += Float(s)
        }
        ctx.arena.release(dy.data)
        return Activation(data: dx, channels: x.channels, batch: n, height: x.height, width: x.width, layout: x.layout)
    }

    /// dx [N, inFeatures] = the compact input gradient `src` [N, selected inputs] placed at the
    /// selected features, 0 elsewhere (all 0 without `src`).
    private func scatterInputGradient(_ src: UnsafeMutablePointer<Float>?, into dx: UnsafeMutablePointer<Float>, _ n: Int,
                                      _ ctx: ExecutionContext) {
        let inF = linear.inFeatures, inL = selection.inputs.count, runs = inputRuns
        ctx.workers.forEachRange(n, minimumPerThread: 8) { r in
            for i in r {
                let d = dx + i * inF
                d.update(repeating: 0, count: inF)
                if let src { runs.scatter(src + i * inL, into: d) }
            }
        }
    }
}
