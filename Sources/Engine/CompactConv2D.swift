// A Conv2D run over a ChannelSelection (Compaction.swift): the selected output channels of the
// selected input channels go through an inner Conv2D of the compact shape — the same im2col or
// Winograd code, its weights [outputs, inputs, k, k] gathered from the full weights before each
// forward call — and the results are placed into full-shape activations and gradients.
//   forward:  x → (gather the selected input channels) → inner conv → y (selected channels),
//             every other output channel = its bias (or 0), as the masked GEMM gives with zero
//             weights.
//   backward: dY (selected channels) → inner conv backward → weight gradients added into the
//             selected rows/columns of the full gradient, bias gradients of every channel as
//             the full conv sums them; input gradient 0 on the unselected (zero) inputs.
// The full-shape output and input gradient are the inner convolution's own results expanded
// in place (written into full-size memory: the convolution's output buffer or an arena slot),
// and the gathered input and output gradient live in the context's scratch, shared by all
// layers: backward gathers the input again instead of keeping a copy per layer. Gathers and
// scatters are split over channels by `partition` or done in a fixed order, so the result is a
// function of the inputs and the thread count only.

public final class CompactConv2D {
    public let selection: ChannelSelection
    private unowned let conv: Conv2D
    private unowned let store: ParameterStore
    /// The inner convolution's parameters (compact weights and bias, their gradients).
    private let innerStore = ParameterStore()
    private let inner: Conv2D
    private let inputRuns: IndexRuns
    private var input: Activation?

    init(_ conv: Conv2D, store: ParameterStore, selection: ChannelSelection) {
        self.conv = conv
        self.store = store
        self.selection = selection
        inputRuns = IndexRuns(selection.inputs)
        inner = Conv2D(conv.name, store: innerStore, inChannels: selection.inputs.count, outChannels: selection.outputs.count,
                       kernel: conv.kernel, stride: conv.stride, padding: conv.padding, bias: conv.bias != nil, weightInit: .zeros)
        innerStore.finalise(seed: 0)
    }

    /// The Winograd transform points the compact convolution uses on an H×W input (nil:
    /// im2col); those of its full convolution.
    func innerWinogradPoints(height: Int, width: Int) -> Int? { inner.winogradPlan(height: height, width: width)?.points }

    /// Whether anything is left to multiply (otherwise every output is its bias).
    private var hasProducts: Bool { !selection.outputs.isEmpty && !selection.inputs.isEmpty }

    /// Copies the selected weights (and biases) into the inner convolution.
    private func gatherWeights(_ ctx: ExecutionContext) {
        let outs = selection.outputs, ins = selection.inputs
        let kk = conv.kernel * conv.kernel, cin = conv.inChannels, cinL = ins.count
        let w = store.value(conv.weight), wc = innerStore.value(inner.weight), runs = inputRuns
        ctx.workers.forEachRange(outs.count, minimumPerThread: 16) { r in
            for j in r { runs.gather(w + outs[j] * cin * kk, into: wc + j * cinL * kk, block: kk) }
        }
        if let b = conv.bias, let bc = inner.bias {
            let bv = store.value(b), bcv = innerStore.value(bc)
            for (j, co) in outs.enumerated() { bcv[j] = bv[co] }
        }
    }

    func forward(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        let recording = ctx.recordsForBackward
        input = recording ? x : nil
        let outs = selection.outputs, ins = selection.inputs
        let cout = conv.outChannels
        let ho = (x.height + 2 * conv.padding - conv.kernel) / conv.stride + 1
        let wo = (x.width + 2 * conv.padding - conv.kernel) / conv.stride + 1
        let m = x.batch * ho * wo
        // Full size: the inner convolution writes its selected channels at the front.
        let y = ctx.forwardOutput(conv.output, cout * m)
        if hasProducts {
            gatherWeights(ctx)
            // The full convolution's choice, not one made again for the compact shape.
            inner.algorithm = conv.algorithm
            inner.algorithmChannels = conv.algorithmChannels
            inner.compute(gatheredInput(x, ctx), into: y, ctx)
        }
        let bias = conv.bias.map { store.value($0) }
        expandChannels(y, hasProducts ? outs : [], channels: cout, perChannel: m, fill: { bias?[$0] ?? 0 }, ctx)
        if !recording { ctx.arena.release(x.data) }
        return Activation(data: y, channels: cout, batch: x.batch, height: ho, width: wo)
    }

    /// x itself when every input channel is selected, else its selected channels gathered into
    /// the context's scratch.
    private func gatheredInput(_ x: Activation, _ ctx: ExecutionContext) -> Activation {
        let ins = selection.inputs
        guard ins.count != conv.inChannels else { return x }
        return gatherChannels(x, ins, into: ctx.scratch(0, .gatheredInput, ins.count * x.perChannel), ctx)
    }

    func backward(_ dy: Activation, _ ctx: ExecutionContext) -> Activation {
        guard let x = input else { return dy }
        let outs = selection.outputs, ins = selection.inputs
        let cout = conv.outChannels, cin = conv.inChannels, kk = conv.kernel * conv.kernel
        let needDX = conv.computesInputGradient
        // Full size: the inner backward writes the selected inputs' gradients at the front.
        let dx = ctx.arena.acquire(x.count)
        if hasProducts {
            let dys = outs.count == cout ? dy
                : gatherChannels(dy, outs, into: ctx.scratch(0, .gatheredGradient, outs.count * dy.perChannel), ctx)
            innerStore.zeroGradients()
            inner.computeGradients(dys, input: gatheredInput(x, ctx), dx: needDX ? dx : nil, ctx)
            // Inner weight gradients into the selected rows and columns of the full gradient.
            let gw = store.gradient(conv.weight), gc = innerStore.gradient(inner.weight), cinL = ins.count, runs = inputRuns
            ctx.workers.forEachRange(outs.count, minimumPerThread: 16) { r in
                for j in r { runs.scatterAdd(gc + j * cinL * kk, into: gw + outs[j] * cin * kk, block: kk) }
            }
        }
        if let b = conv.bias {
            // Every channel's bias gradient as Conv2D sums it (an unselected channel's output
            // is its bias, so its gradient is the plain channel sum of dY).
            let gb = store.gradient(b), m = dy.perChannel
            let innerGradient = inner.bias.map { innerStore.gradient($0) }
            let slot = slots(hasProducts ? outs : [], count: cout)
            ctx.workers.forEachRange(cout) { r in
                for co in r {
                    if let innerGradient, slot[co] >= 0 {
                        gb[co] += innerGradient[slot[co]]
                    } else {
                        gb[co] += Float(channelSum(dy.data + co * m, m))
                    }
                }
            }
        }
        if needDX { expandChannels(dx, hasProducts ? ins : [], channels: cin, perChannel: x.perChannel, fill: { _ in 0 }, ctx) }
        ctx.arena.release(dy.data)
        return Activation(data: dx, channels: cin, batch: x.batch, height: x.height, width: x.width)
    }
}

/// The channels `channels` of a channel-major activation, copied contiguously into `dst`
/// (channels.count · perChannel floats).
func gatherChannels(_ a: Activation, _ channels: [Int], into dst: UnsafeMutablePointer<Float>, _ ctx: ExecutionContext) -> Activation {
    let m = a.perChannel
    let src = a.data
    ctx.workers.forEachRange(channels.count, minimumPerThread: 4) { r in
        for j in r { (dst + j * m).update(from: src + channels[j] * m, count: m) }
    }
    return Activation(data: dst, channels: channels.count, batch: a.batch, height: a.height, width: a.width)
}

/// Expands, in place, compact channel-major data (channel j of `selected.count` at the front of
/// `data`) to `count` channels: channel `selected[j]` gets compact channel j, every other
/// channel c the constant fill(c). Channels move from the last to the first (selected[j] ≥ j,
/// so no channel is overwritten before it has moved); the fills then run in parallel.
func expandChannels(_ data: UnsafeMutablePointer<Float>, _ selected: [Int], channels count: Int, perChannel m: Int,
                    fill: (Int) -> Float, _ ctx: ExecutionContext) {
    for j in selected.indices.reversed() where selected[j] != j {
        (data + selected[j] * m).update(from: data + j * m, count: m)
    }
    let slot = slots(selected, count: count)
    ctx.workers.forEachRange(count, minimumPerThread: 4) { r in
        for c in r where slot[c] < 0 { (data + c * m).update(repeating: fill(c), count: m) }
    }
}

/// slot[c] = j where selected[j] == c, −1 for channels not selected.
func slots(_ selected: [Int], count: Int) -> [Int] {
    var slot = [Int](repeating: -1, count: count)
    for (j, c) in selected.enumerated() { slot[c] = j }
    return slot
}
