// Parameter counts and forward shapes of the paper's models; one full train step of each
// stays finite.
import Engine
import Testing

@Suite struct ModelTests {
    @Test(arguments: [
        (Architecture.vgg11_bn, 9_231_114), (.resnet18, 11_173_962), (.resnet20, 269_722),
        (.resnet56, 853_018), (.conv4, 2_425_930),
    ])
    func parameterCount(_ p: (Architecture, Int)) {
        let net = ModelFactory.make(p.0, seed: 1)
        #expect(net.parameterCount == p.1)
    }

    @Test func classesFollowTheDataset() {
        // CIFAR-100 heads: 512·100 + 100 instead of 512·10 + 10.
        #expect(ModelFactory.make(.resnet18, classes: 100, seed: 1).parameterCount == 11_173_962 + 512 * 90 + 90)
        #expect(ModelFactory.make(.vgg11_bn, classes: 100, seed: 1).shapes().last?.1 == FeatureShape(channels: 100, height: 1, width: 1, layout: .rowMajor))
    }

    @Test func vggShapes() {
        let shapes = Dictionary(uniqueKeysWithValues: ModelFactory.make(.vgg11_bn, seed: 1).shapes())
        #expect(shapes["features.conv1"] == FeatureShape(channels: 64, height: 32, width: 32))
        #expect(shapes["features.pool1"] == FeatureShape(channels: 64, height: 16, width: 16))
        #expect(shapes["features.conv8"] == FeatureShape(channels: 512, height: 2, width: 2))
        #expect(shapes["features.pool5"] == FeatureShape(channels: 512, height: 1, width: 1))
        #expect(shapes["classifier"] == FeatureShape(channels: 10, height: 1, width: 1, layout: .rowMajor))
    }

    @Test func resnetShapes() {
        let r18 = Dictionary(uniqueKeysWithValues: ModelFactory.make(.resnet18, seed: 1).shapes())
        #expect(r18["layer1.1"] == FeatureShape(channels: 64, height: 32, width: 32))
        #expect(r18["layer2.0"] == FeatureShape(channels: 128, height: 16, width: 16))
        #expect(r18["layer4.1"] == FeatureShape(channels: 512, height: 4, width: 4))
        #expect(r18["avgpool"] == FeatureShape(channels: 512, height: 1, width: 1))
        #expect(r18["linear"] == FeatureShape(channels: 10, height: 1, width: 1, layout: .rowMajor))
        let r20 = Dictionary(uniqueKeysWithValues: ModelFactory.make(.resnet20, seed: 1).shapes())
        #expect(r20["layer3.2"] == FeatureShape(channels: 64, height: 8, width: 8))
        #expect(r20["linear"] == FeatureShape(channels: 10, height: 1, width: 1, layout: .rowMajor))
        #expect(ModelFactory.make(.resnet56, seed: 1).layers.count == 3 + 27 + 3)
    }

    @Test func conv4Shapes() {
        let c4 = Dictionary(uniqueKeysWithValues: ModelFactory.make(.conv4, seed: 1).shapes())
        #expect(c4["features.pool2"] == FeatureShape(channels: 128, height: 8, width: 8))
        #expect(c4["flatten"] == FeatureShape(channels: 8192, height: 1, width: 1, layout: .rowMajor))
        #expect(c4["classifier.fc3"] == FeatureShape(channels: 10, height: 1, width: 1, layout: .rowMajor))
    }

    @Test func initialisationFollowsTheSpec() {
        let vgg = ModelFactory.make(.vgg11_bn, seed: 3)
        let s = vgg.store
        func stats(_ name: String) -> (mean: Double, std: Double, maxAbs: Double) {
            guard let slot = s.parameter(named: name) else { return (.nan, .nan, .nan) }
            let v = (0 ..< slot.count).map { Double(s.value(slot)[$0]) }
            let mean = v.reduce(0, +) / Double(v.count)
            let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
            return (mean, std, v.map(abs).max() ?? 0)
        }
        // Kaiming-normal fan_out: std √(2/(512·9)) for conv8; bias 0; BN γ=1, β=0.
        #expect(abs(stats("features.conv8.weight").std - (2.0 / 4608).squareRoot()) < 3e-4)
        #expect(stats("features.conv8.bias").maxAbs == 0)
        #expect(stats("features.bn3.weight").mean == 1)
        // Linear default U(±1/√512).
        #expect(stats("classifier.weight").maxAbs <= 1 / 512.0.squareRoot())
        #expect(stats("classifier.weight").maxAbs > 0.9 / 512.0.squareRoot())
        // ResNet18 convs: U(±1/√fan_in).
        let r18 = ModelFactory.make(.resnet18, seed: 3).store
        guard let slot = r18.parameter(named: "layer4.1.conv2.weight") else { Issue.record("missing layer"); return }
        let maxAbs = (0 ..< slot.count).map { abs(r18.value(slot)[$0]) }.max() ?? 0
        #expect(Double(maxAbs) <= 1 / 4608.0.squareRoot() && Double(maxAbs) > 0.99 / 4608.0.squareRoot())
        // Different seeds give different weights; the same seed the same.
        #expect(ModelFactory.make(.conv4, seed: 1).store.values.array == ModelFactory.make(.conv4, seed: 1).store.values.array)
        #expect(ModelFactory.make(.conv4, seed: 1).store.values.array != ModelFactory.make(.conv4, seed: 2).store.values.array)
    }

    /// Every convolution is reachable (residual blocks included), and `automatic` puts every
    /// 3×3 stride-1 convolution with ≥ 16 input channels on Winograd: not the 3-channel stem,
    /// not the strided first convolutions of downsampling blocks, not the 1×1 shortcuts.
    @Test func convolutionAlgorithms() {
        let r18 = ModelFactory.make(.resnet18, seed: 1)
        #expect(r18.convolutions.count == 20)
        #expect(r18.convolutions.filter(\.usesWinograd).count == 13)
        let vgg = ModelFactory.make(.vgg11_bn, seed: 1)
        #expect(vgg.convolutions.map(\.usesWinograd) == [false] + Array(repeating: true, count: 7))
        #expect(ModelFactory.make(.conv4, seed: 1).convolutions.map(\.usesWinograd) == [false, true, true, true])
    }

    /// A whole ResNet20 step (residual blocks, BatchNorm, strided and shortcut convolutions)
    /// gives the same loss gradient through Winograd as through im2col, to float rounding:
    /// F(2×2) (automatic2) and F(4×4) on the 32×32…8×8 planes (automatic). The gradients of
    /// this step are discontinuous in the weights (a ReLU input crossing zero): im2col itself,
    /// with the weights scaled by 1 + 1e-6·N(0, 1), moves them by 0.7% (measured), and F(4×4)'s
    /// rounding (about 1e-6 relative per layer, Winograd4Tests) is that large. Measured: F(2×2)
    /// outputs 3e-7, gradients 1.2e-6; F(4×4) outputs 1.2e-6, gradients 6.8e-3.
    @Test(arguments: [(ConvAlgorithm.automatic2, 1e-3), (.automatic, 2e-2)])
    func winogradModelMatchesIm2col(_ p: (ConvAlgorithm, Double)) {
        let (winograd, tolerance) = p
        var grads: [[Float]] = []
        var outputs: [[Float]] = []
        for algorithm in [ConvAlgorithm.im2col, winograd] {
            let net = ModelFactory.make(.resnet20, classes: 10, seed: 5)
            for c in net.convolutions { c.algorithm = algorithm }
            let ctx = ExecutionContext(threads: 2)
            let n = 6
            let x = Owned(randomFloats(3 * n * 32 * 32, seed: 21), channels: 3, batch: n, height: 32, width: 32)
            let logits = withExtendedLifetime(x) { net.forward(x.act, ctx) }
            outputs.append(values(logits))
            let dy = Owned(randomFloats(10 * n, seed: 22), channels: 10, batch: n, height: 1, width: 1, layout: .rowMajor)
            net.store.zeroGradients()
            withExtendedLifetime(dy) { net.backward(dy.act, ctx) }
            grads.append(net.store.gradients.array)
        }
        func relative(_ a: [Float], _ b: [Float]) -> Double {
            let d = zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
            return d / max(a.map { Double($0) * Double($0) }.reduce(0, +).squareRoot(), 1e-12)
        }
        #expect(relative(outputs[0], outputs[1]) < 1e-5)
        #expect(relative(grads[0], grads[1]) < tolerance)
        #expect(grads[0] != grads[1])  // the two paths really differ in rounding
    }
}
