// Builders for synthetic runs (canonical-looking specs, metrics rows, summaries) and an SVG
// checker that parses a figure with Foundation's XMLParser and collects its elements.
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import PrunedJSON
import Results

/// A VGG11 spec shaped like RunSpec.json's canonical output, with the paper's c5–c8 schedule
/// (fractions .3,.3,.3,.9; starts 3,4,5,6; ends 150,150,150,275) at period `period`, or no
/// pruning section when `target` is nil.
func vggSpec(target: String?, period: Int = 40, seed: Int = 0, name: String = "run", path: String = "/data/cifar10",
             trainLimit: Int? = nil) -> JSON {
    let limit = trainLimit.map { #", "train_limit": \#($0)"# } ?? ""
    var text = #"""
    {"name": "\#(name)", "model": "vgg11_bn", "width": 1, "dataset": {"kind": "cifar10", "path": "\#(path)"\#(limit)},
     "augment": false, "optimizer": {"kind": "adam", "lr": 0.001, "weight_decay": 0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
     "epochs": 325, "lr_milestones": [150, 300], "lr_gamma": 0.1, "batch_size": 128, "test_batch_size": 256, "seed": \#(seed)
    """#
    if let target {
        let layers = [("features.conv5", 0.3, 3, 150), ("features.conv6", 0.3, 4, 150), ("features.conv7", 0.3, 5, 150),
                      ("features.conv8", 0.9, 6, 275)]
            .map { #"{"name": "\#($0.0)", "fraction": \#($0.1), "start": \#($0.2), "end": \#($0.3), "period": \#(period)}"# }
        text += #"""
        , "pruning": {"score": "l2", "target": "\#(target)", "granularity": "structured", "mask_batchnorm": true, "scratch": false,
                      "layers": [\#(layers.joined(separator: ", "))]}
        """#
    }
    text += ", \"checkpoint\": {\"keep_last\": \(seed + 1), \"level\": 1}}"
    return try! JSON.parse(text)
}

/// A spec with a single pruned layer (for rate examples).
func singleLayerSpec(fraction: Double, start: Int, end: Int, period: Int, scratch: Bool = false) -> JSON {
    try! JSON.parse(#"""
    {"model": "resnet18", "epochs": 4000, "seed": 0, "pruning": {"scratch": \#(scratch), "layers": [
      {"name": "layer4.1.conv2", "fraction": \#(fraction), "start": \#(start), "end": \#(end), "period": \#(period)}]}}
    """#)
}

/// A metrics row; `score` > 0 marks a pruning epoch (avg_pruned_score), nil an epoch without events.
func row(_ epoch: Int, train: Double, pre: Double, post: Double, score: Double? = nil) -> JSON {
    var pairs: [(String, JSON)] = [("epoch", .number(Double(epoch))), ("train_acc", .number(train)),
                                   ("pre_test_acc", .number(pre)), ("test_acc", .number(post))]
    if let score { pairs += [("p_count", .number(1)), ("avg_pruned_score", .number(score))] }
    return .object(pairs)
}

/// A summary.json object with the fields the results code reads.
func summary(best: Double, gap: Double, stability: Double, spec: JSON) -> JSON {
    .object([("best_test_acc", .number(best)), ("generalization_gap", .number(gap)), ("mean_stability", .number(stability)),
             ("mean_instability", .number(100 - stability)), ("last_pruning_epoch", .number(0)), ("spec", spec)])
}

/// A finished run with the given per-run statistics.
func finishedRun(_ id: String, spec: JSON, best: Double, gap: Double, stability: Double, rows: [JSON] = []) -> RunResult {
    RunResult(id: id, spec: spec, summary: summary(best: best, gap: gap, stability: stability, spec: spec), rows: rows)
}

/// Elements and text of a parsed SVG document.
final class SVGDocument: NSObject, XMLParserDelegate {
    var elements: [(name: String, attributes: [String: String])] = []
    var text = ""

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
                attributes attributeDict: [String: String] = [:]) {
        elements.append((elementName, attributeDict))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    /// Parses `svg`; nil when it is not well-formed XML.
    static func parse(_ svg: String) -> SVGDocument? {
        let parser = XMLParser(data: Data(svg.utf8))
        let doc = SVGDocument()
        parser.delegate = doc
        return parser.parse() ? doc : nil
    }

    /// Elements named `name` whose class attribute is `cls`.
    func all(_ name: String, class cls: String) -> [[String: String]] {
        elements.filter { $0.name == name && $0.attributes["class"] == cls }.map(\.attributes)
    }

    var root: String? { elements.first?.name }
}

/// Comma-separated numbers of a data- attribute.
func numbers(_ s: String?) -> [Double] { (s ?? "").split(separator: ",").compactMap { Double($0) } }
