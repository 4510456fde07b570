// The paper's architectures (docs/EXPERIMENTS.md §2), with PyTorch's layer names and initialisations.
// `width` scales every channel count (1 = the paper's model); it exists for fast tests and
// demos, and a run records it.
import Foundation

public enum Architecture: String, CaseIterable, Sendable, Codable {
    case vgg11_bn, resnet18, resnet20, resnet56, conv4

    /// A residual network: its first convolution (the stem, before any block) is not prunable.
    public var isResNet: Bool {
        switch self {
        case .resnet18, .resnet20, .resnet56: return true
        case .vgg11_bn, .conv4: return false
        }
    }
}

public enum ModelFactory {
    /// Builds and initialises `architecture` for 3×32×32 inputs and `classes` outputs.
    public static func make(_ architecture: Architecture, classes: Int = 10, width: Double = 1, seed: UInt64) -> Network {
        let store = ParameterStore()
        let w: (Int) -> Int = { max(1, Int((Double($0) * width).rounded())) }
        let layers: [Layer]
        switch architecture {
        case .vgg11_bn: layers = vgg11(store, classes, w)
        case .resnet18: layers = resnet18(store, classes, w)
        case .resnet20: layers = cifarResNet(store, classes, w, blocks: 3)
        case .resnet56: layers = cifarResNet(store, classes, w, blocks: 9)
        case .conv4: layers = conv4(store, classes, w)
        }
        store.finalise(seed: seed)
        return Network(architecture: architecture, store: store, layers: layers,
                       inputShape: FeatureShape(channels: 3, height: 32, width: 32), classes: classes)
    }

    /// PyTorch's default conv/linear init, kaiming_uniform(a=√5): U(±1/√fan_in).
    static func torchDefault(_ fanIn: Int) -> Initialiser { .uniform(bound: 1 / Double(fanIn).squareRoot()) }

    /// VGG11-BN, CIFAR variant: cfg A, conv 3×3 (bias) → BN → ReLU, max-pools, single Linear.
    /// Conv init Kaiming-normal fan_out (std √(2/(out·9))), bias 0; Linear PyTorch default.
    static func vgg11(_ s: ParameterStore, _ classes: Int, _ w: (Int) -> Int) -> [Layer] {
        let cfg: [Int?] = [64, nil, 128, nil, 256, 256, nil, 512, 512, nil, 512, 512, nil]
        var layers: [Layer] = []
        var inC = 3, conv = 0, pool = 0
        for entry in cfg {
            if let c = entry {
                conv += 1
                let out = w(c)
                layers.append(Conv2D("features.conv\(conv)", store: s, inChannels: inC, outChannels: out, kernel: 3,
                                     padding: 1, bias: true, weightInit: .normal(std: (2.0 / Double(out * 9)).squareRoot())))
                layers.append(BatchNorm2D("features.bn\(conv)", store: s, channels: out))
                layers.append(ReLU("features.relu\(conv)"))
                inC = out
            } else {
                pool += 1
                layers.append(MaxPool2D("features.pool\(pool)"))
            }
        }
        layers.append(Flatten("flatten"))
        layers.append(Linear("classifier", store: s, inFeatures: inC, outFeatures: classes))
        return layers
    }

    /// ResNet18, CIFAR variant (kuangliu): 3×3 stem without max-pool, 4 stages of 2 BasicBlocks,
    /// option-B shortcuts, avg-pool 4, Linear. PyTorch default (uniform) init everywhere.
    static func resnet18(_ s: ParameterStore, _ classes: Int, _ w: (Int) -> Int) -> [Layer] {
        var layers: [Layer] = [
            Conv2D("conv1", store: s, inChannels: 3, outChannels: w(64), kernel: 3, padding: 1, bias: false,
                   weightInit: torchDefault(27)),
            BatchNorm2D("bn1", store: s, channels: w(64)),
            ReLU("relu"),
        ]
        var inPlanes = w(64)
        for (stage, (planes, stride)) in [(64, 1), (128, 2), (256, 2), (512, 2)].enumerated() {
            for b in 0 ..< 2 {
                let block = BasicBlock("layer\(stage + 1).\(b)", store: s, inPlanes: inPlanes, planes: w(planes),
                                       stride: b == 0 ? stride : 1, option: .projection,
                                       convInit: { fanIn, _ in torchDefault(fanIn) })
                layers.append(block)
                inPlanes = w(planes)
            }
        }
        layers.append(AvgPool2D("avgpool", kernel: 4))
        layers.append(Flatten("flatten"))
        layers.append(Linear("linear", store: s, inFeatures: inPlanes, outFeatures: classes))
        return layers
    }

    /// ResNet20/56 (Idelbayev): 16-32-64 channels, option-A shortcuts, global average pool.
    /// Kaiming-normal fan_in for every conv and the Linear weight; Linear bias PyTorch default.
    static func cifarResNet(_ s: ParameterStore, _ classes: Int, _ w: (Int) -> Int, blocks: Int) -> [Layer] {
        let kaiming: (Int) -> Initialiser = { .normal(std: (2.0 / Double($0)).squareRoot()) }
        var layers: [Layer] = [
            Conv2D("conv1", store: s, inChannels: 3, outChannels: w(16), kernel: 3, padding: 1, bias: false,
                   weightInit: kaiming(27)),
            BatchNorm2D("bn1", store: s, channels: w(16)),
            ReLU("relu"),
        ]
        var inPlanes = w(16)
        for (stage, (planes, stride)) in [(16, 1), (32, 2), (64, 2)].enumerated() {
            for b in 0 ..< blocks {
                layers.append(BasicBlock("layer\(stage + 1).\(b)", store: s, inPlanes: inPlanes, planes: w(planes),
                                         stride: b == 0 ? stride : 1, option: .padded,
                                         convInit: { fanIn, _ in kaiming(fanIn) }))
                inPlanes = w(planes)
            }
        }
        layers.append(AvgPool2D("avgpool", kernel: 8))
        layers.append(Flatten("flatten"))
        layers.append(Linear("linear", store: s, inFeatures: inPlanes, outFeatures: classes,
                             weightInit: kaiming(inPlanes)))
        return layers
    }

    /// Conv4 (Frankle & Carbin's Conv-4; the spec marks it unconfirmed): conv 64, 64, pool,
    /// 128, 128, pool, dense 8192→256→256→classes, ReLU, no BN; PyTorch default init.
    static func conv4(_ s: ParameterStore, _ classes: Int, _ w: (Int) -> Int) -> [Layer] {
        var layers: [Layer] = []
        var inC = 3
        for (i, c) in [64, 64, 128, 128].enumerated() {
            let out = w(c), fanIn = inC * 9
            layers.append(Conv2D("features.conv\(i + 1)", store: s, inChannels: inC, outChannels: out, kernel: 3,
                                 padding: 1, bias: true, weightInit: torchDefault(fanIn), biasInit: torchDefault(fanIn)))
            layers.append(ReLU("features.relu\(i + 1)"))
            if i == 1 || i == 3 { layers.append(MaxPool2D("features.pool\(i / 2 + 1)")) }
            inC = out
        }
        layers.append(Flatten("flatten"))
        let hidden = w(256)
        layers.append(Linear("classifier.fc1", store: s, inFeatures: inC * 64, outFeatures: hidden))
        layers.append(ReLU("classifier.relu1"))
        layers.append(Linear("classifier.fc2", store: s, inFeatures: hidden, outFeatures: hidden))
        layers.append(ReLU("classifier.relu2"))
        layers.append(Linear("classifier.fc3", store: s, inFeatures: hidden, outFeatures: classes))
        return layers
    }
}
