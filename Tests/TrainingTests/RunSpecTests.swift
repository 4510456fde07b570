// The run spec: defaults, canonical round trip, and every kind of bad input rejected with a
// message naming the field.
import Engine
import PrunedJSON
import Testing
import Training

@Suite struct RunSpecTests {
    let minimal = #"{"model": "conv4", "dataset": {"kind": "fashion_mnist", "path": "/data"}, "epochs": 3}"#

    @Test func defaultsFollowThePaper() throws {
        let s = try RunSpec.parse(minimal)
        #expect(s.batchSize == 128 && s.testBatchSize == 256)
        #expect(s.optimizer.kind == .adam && s.optimizer.lr == 1e-3 && s.optimizer.weightDecay == 0)
        #expect(s.optimizer.beta1 == 0.9 && s.optimizer.beta2 == 0.999 && s.optimizer.eps == 1e-8)
        #expect(s.milestones == [150, 300] && s.gamma == 0.1)
        #expect(s.augment == false && s.width == 1 && s.seed == 0)
    }

    @Test func sgdDefaultsToLearningRatePointOne() throws {
        let s = try RunSpec.parse(#"{"model": "resnet18", "dataset": {"kind": "cifar10", "path": "/c"}, "epochs": 165, "optimizer": {"kind": "sgd", "weight_decay": 0.0001}, "lr_milestones": [83, 125], "augment": true}"#)
        #expect(s.optimizer.kind == .sgd && s.optimizer.lr == 0.1 && s.optimizer.momentum == 0.9)
        #expect(s.milestones == [83, 125] && s.augment)
    }

    @Test func canonicalFormRoundTrips() throws {
        let s = try RunSpec.parse(minimal)
        let again = try RunSpec.parse(s.json.pretty)
        #expect(again == s)
        #expect(again.json == s.json)
    }

    @Test(arguments: [
        (#"{"model": "conv4", "dataset": {"kind": "fashion_mnist", "path": "/d"}, "epochs": 3, "epoch": 4}"#, "'epoch'", "unknown key"),
        (#"{"model": "vgg12", "dataset": {"kind": "fashion_mnist", "path": "/d"}, "epochs": 3}"#, "'model'", "vgg11_bn"),
        (#"{"model": "conv4", "dataset": {"kind": "fashion_mnist", "path": "/d"}, "epochs": "3"}"#, "'epochs'", "must be an integer"),
        (#"{"model": "conv4", "dataset": {"kind": "fashion_mnist", "path": "/d"}, "epochs": 0}"#, "'epochs'", "in 1…100000"),
        (#"{"model": "conv4", "dataset": {"kind": "fashion_mnist", "path": "/d"}, "epochs": 2.5}"#, "'epochs'", "must be an integer"),
        (#"{"model": "conv4", "dataset": {"kind": "svhn", "path": "/d"}, "epochs": 3}"#, "'dataset.kind'", "cifar10"),
        (#"{"model": "conv4", "dataset": {"kind": "cifar10"}, "epochs": 3}"#, "'dataset.path'", "required"),
        (#"{"model": "conv4", "epochs": 3}"#, "'dataset'", "required"),
        (#"{"model": "conv4", "dataset": {"kind": "cifar10", "path": "/d"}, "epochs": 3, "optimizer": {"lr": -1}}"#, "'optimizer.lr'", "in (0, 10)"),
        (#"{"model": "conv4", "dataset": {"kind": "cifar10", "path": "/d"}, "epochs": 3, "optimizer": {"kind": "sgd", "beta1": 0.9}}"#, "'optimizer.beta1'", "unknown key"),
        (#"{"model": "conv4", "dataset": {"kind": "cifar10", "path": "/d"}, "epochs": 3, "lr_milestones": [300, 150]}"#, "'lr_milestones'", "increasing"),
        (#"{"model": "conv4", "dataset": {"kind": "cifar10", "path": "/d"}, "epochs": 3, "lr_milestones": [150, "x"]}"#, "'lr_milestones[1]'", "integer"),
        (#"{"model": "conv4", "dataset": {"kind": "cifar10", "path": "/d"}, "epochs": 3, "batch_size": 0}"#, "'batch_size'", "1…8192"),
        (#"{"model": "conv4", "dataset": {"kind": "cifar10", "path": "/d"}, "epochs": 3, "width": 0}"#, "'width'", "(0, 4]"),
        (#"{"model": "conv4", "dataset": {"kind": "cifar10", "path": "/d"}, "epochs": 3, "augment": "yes"}"#, "'augment'", "true or false"),
        (#"{"model": "conv4", "dataset": {"kind": "cifar10", "path": "/d", "train_limit": -5}, "epochs": 3}"#, "'dataset.train_limit'", "positive"),
        (#"{"model": "conv4", "dataset": {"kind": "cifar10", "path": "/d"}, "epochs": 3, "seed": -1}"#, "'seed'", "non-negative"),
        (#"[1, 2]"#, "run spec", "must be an object"),
        (#"{"model": "conv4", "#, "line 1", "syntax"),
        (#"{"model": "conv4", "model": "conv4"}"#, "duplicate", "syntax"),
    ])
    func badSpecsNameTheField(_ p: (String, String, String)) {
        do {
            _ = try RunSpec.parse(p.0)
            Issue.record("accepted a bad spec: \(p.0)")
        } catch {
            let text = "\(error)"
            #expect(text.contains(p.1), "message should name \(p.1): \(text)")
            #expect(text.contains(p.2), "message should say \(p.2): \(text)")
        }
    }

    /// The pruning section's rules are PruningPlan.validate's, under the spec's field names.
    @Test func pruningRulesAreThePlansOwn() throws {
        func spec(_ layer: String, scratch: Bool = false) -> String {
            #"{"model": "vgg11_bn", "dataset": {"kind": "cifar10", "path": "/u"}, "epochs": 6, "pruning": {"scratch": \#(scratch), "layers": [\#(layer)]}}"#
        }
        let cases: [(String, Bool, LayerPlan)] = [
            (#"{"name": "features.conv5", "fraction": 0.3, "start": 1, "end": 6}"#, false, LayerPlan(name: "features.conv5", fraction: 0.3, start: 1, end: 6, period: 1)),
            (#"{"name": "features.conv5", "fraction": 1, "start": 1, "end": 2}"#, false, LayerPlan(name: "features.conv5", fraction: 1, start: 1, end: 2, period: 1)),
            (#"{"name": "features.conv5", "fraction": 0.3, "start": 6, "end": 6}"#, false, LayerPlan(name: "features.conv5", fraction: 0.3, start: 6, end: 6, period: 1)),
            (#"{"name": "features.conv5", "fraction": 0.3, "start": 0, "end": 2}"#, true, LayerPlan(name: "features.conv5", fraction: 0.3, start: 0, end: 2, period: 1)),
        ]
        for (layer, scratch, plan) in cases {
            var p = PruningPlan(layers: [plan])
            p.scratch = scratch
            let planError = #expect(throws: PruningPlanError.self) { try p.validate(epochs: 6) }
            let specError = #expect(throws: SpecError.self) { try RunSpec.parse(spec(layer, scratch: scratch)) }
            #expect(specError?.field == planError.map { "pruning." + $0.field } && specError?.message == planError?.message,
                    "\(String(describing: specError)) vs \(String(describing: planError))")
        }
        // A missing start reads with the same rule.
        #expect(throws: SpecError(field: "pruning.layers[0].start", message: "is required (an integer, an epoch in 0…5 (0-based))")) {
            try RunSpec.parse(spec(#"{"name": "features.conv5", "fraction": 0.3, "end": 2}"#))
        }
    }
}

@Suite struct JSONTests {
    @Test func parsesAndRenders() throws {
        let v = try JSON.parse(#" {"a": [1, 2.5, -3e2, true, false, null], "b": "x\"y\\z\n\u00e9\ud83d\ude00", "c": {}} "#)
        #expect(v["a"] == .array([.number(1), .number(2.5), .number(-300), .bool(true), .bool(false), .null]))
        #expect(v["b"]?.stringValue == "x\"y\\z\né😀")
        #expect(try JSON.parse(v.rendered) == v)
        #expect(try JSON.parse(v.pretty) == v)
        #expect(JSON.number(0.1).rendered == "0.1")
        #expect(JSON.number(3).rendered == "3")
        #expect(JSON.number(.nan).rendered == "null")
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "tru", "01", "1.", "\"abc", "\"\u{01}\"", "[1] x", "{\"a\":1,}", "\"\\ud800\"",
                      String(repeating: "[", count: 100) + String(repeating: "]", count: 100)])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSON.parse(text) }
    }
}
