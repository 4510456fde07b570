// A minimal SVG writer for the figures: escaping, number formatting, linear scales with
// "nice" ticks, framed panels with axes, tick labels and axis labels, a legend, and the
// "no data" figure. Output is standalone SVG 1.1 (XML declaration, xmlns, no DOCTYPE).
import Foundation
import PrunedJSON

enum SVG {
    /// Escapes text and attribute values (&, <, >, ", ').
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // XML 1.0 forbids most control characters: drop them.
                if c.value < 0x20 && c != "\n" && c != "\t" { continue }
                out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// A pixel coordinate.
    static func px(_ d: Double) -> String { d.isFinite ? String(format: "%.2f", d) : "0" }

    /// A data value for data- attributes and titles: shortest round-trip form, "NaN" if not finite.
    static func value(_ d: Double?) -> String {
        guard let d else { return "" }
        return d.isFinite ? JSON.format(d) : "NaN"
    }

    static func values(_ ds: [Double]) -> String { ds.map { value($0) }.joined(separator: ",") }

    /// Tableau-10 (matplotlib / seaborn default cycle).
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                          "#bcbd22", "#17becf"]
    static func colour(_ i: Int) -> String { palette[i % palette.count] }

    static func document(width: Double, height: Double, title: String, body: [String]) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(px(width))\" height=\"\(px(height))\" "
            + "viewBox=\"0 0 \(px(width)) \(px(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
        out += "<title>\(escape(title))</title>\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(px(width))\" height=\"\(px(height))\" fill=\"white\"/>\n"
        out += "<text class=\"figure-title\" x=\"\(px(width / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
        out += body.joined(separator: "\n")
        out += "\n</svg>\n"
        return out
    }

    /// A figure saying "no data" (with a reason).
    static func noData(title: String, reason: String = "no data") -> String {
        document(width: 820, height: 200, title: title, body: [
            "<text class=\"no-data\" x=\"410\" y=\"110\" text-anchor=\"middle\" font-size=\"14\" fill=\"#555\">\(escape(reason))</text>",
        ])
    }

    /// Finite min/max of values (nil if none), padded by 5% (±1 when they coincide).
    static func range(_ values: [Double], pad: Double = 0.05) -> (Double, Double)? {
        let v = values.filter(\.isFinite)
        guard var lo = v.min(), var hi = v.max() else { return nil }
        if hi - lo <= max(abs(hi), abs(lo)) * 1e-12 {
            let d = max(abs(lo) * 0.01, 1)
            return (lo - d, hi + d)
        }
        let m = (hi - lo) * pad
        lo -= m; hi += m
        return (lo, hi)
    }

    /// Roughly `count` ticks at 1-2-5 multiples of a power of ten inside [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 6, integer: Bool = false) -> (values: [Double], step: Double) {
        guard hi > lo, (hi - lo).isFinite else { return ([lo], 1) }
        let raw = (hi - lo) / Double(max(count - 1, 1))
        let mag = pow(10, (log10(raw)).rounded(.down))
        let norm = raw / mag
        var step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag
        if integer { step = max(1, step.rounded()) }
        var out: [Double] = []
        var t = (lo / step).rounded(.up) * step
        while t <= hi + step * 1e-9, out.count < 100 {
            out.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return (out, step)
    }

    static func tickLabel(_ v: Double, step: Double) -> String {
        let decimals = max(0, Int(-(log10(step)).rounded(.down)))
        return String(format: "%.\(min(decimals, 6))f", v)
    }
}

/// A rectangular plotting area with linear x and y scales.
struct Panel {
    var left: Double, top: Double, width: Double, height: Double
    var x: (Double, Double)
    var y: (Double, Double)
    var integerX = false

    func sx(_ v: Double) -> Double { left + (v - x.0) / (x.1 - x.0) * width }
    func sy(_ v: Double) -> Double { top + height - (v - y.0) / (y.1 - y.0) * height }

    /// Frame, grid, ticks, tick labels, axis labels and an optional panel title.
    func axes(xLabel: String, yLabel: String, title: String? = nil) -> [String] {
        var out: [String] = ["<g class=\"axes\">"]
        out.append("<rect x=\"\(SVG.px(left))\" y=\"\(SVG.px(top))\" width=\"\(SVG.px(width))\" height=\"\(SVG.px(height))\" fill=\"none\" stroke=\"#333\"/>")
        let xt = SVG.ticks(x.0, x.1, integer: integerX)
        for t in xt.values {
            let p = sx(t)
            out.append("<line class=\"grid\" x1=\"\(SVG.px(p))\" y1=\"\(SVG.px(top))\" x2=\"\(SVG.px(p))\" y2=\"\(SVG.px(top + height))\" stroke=\"#e5e5e5\"/>")
            out.append("<line class=\"tick\" x1=\"\(SVG.px(p))\" y1=\"\(SVG.px(top + height))\" x2=\"\(SVG.px(p))\" y2=\"\(SVG.px(top + height + 5))\" stroke=\"#333\"/>")
            out.append("<text class=\"tick-label\" x=\"\(SVG.px(p))\" y=\"\(SVG.px(top + height + 18))\" text-anchor=\"middle\">\(SVG.tickLabel(t, step: xt.step))</text>")
        }
        let yt = SVG.ticks(y.0, y.1)
        for t in yt.values {
            let p = sy(t)
            out.append("<line class=\"grid\" x1=\"\(SVG.px(left))\" y1=\"\(SVG.px(p))\" x2=\"\(SVG.px(left + width))\" y2=\"\(SVG.px(p))\" stroke=\"#e5e5e5\"/>")
            out.append("<line class=\"tick\" x1=\"\(SVG.px(left - 5))\" y1=\"\(SVG.px(p))\" x2=\"\(SVG.px(left))\" y2=\"\(SVG.px(p))\" stroke=\"#333\"/>")
            out.append("<text class=\"tick-label\" x=\"\(SVG.px(left - 8))\" y=\"\(SVG.px(p + 4))\" text-anchor=\"end\">\(SVG.tickLabel(t, step: yt.step))</text>")
        }
        out.append("<text class=\"axis-label\" x=\"\(SVG.px(left + width / 2))\" y=\"\(SVG.px(top + height + 40))\" text-anchor=\"middle\">\(SVG.escape(xLabel))</text>")
        let cy = top + height / 2, cx = left - 52
        out.append("<text class=\"axis-label\" x=\"\(SVG.px(cx))\" y=\"\(SVG.px(cy))\" text-anchor=\"middle\" transform=\"rotate(-90 \(SVG.px(cx)) \(SVG.px(cy)))\">\(SVG.escape(yLabel))</text>")
        if let title {
            out.append("<text class=\"panel-title\" x=\"\(SVG.px(left + width / 2))\" y=\"\(SVG.px(top - 8))\" text-anchor=\"middle\" font-size=\"13\">\(SVG.escape(title))</text>")
        }
        out.append("</g>")
        return out
    }

    /// Clips drawing to the panel (an id unique within the document).
    func clipPath(id: String) -> String {
        "<clipPath id=\"\(id)\"><rect x=\"\(SVG.px(left))\" y=\"\(SVG.px(top))\" width=\"\(SVG.px(width))\" height=\"\(SVG.px(height))\"/></clipPath>"
    }
}

/// Legend entries listed one per line starting at (left, top); returns the elements and height.
enum Legend {
    struct Entry {
        var label: String
        var colour: String
        var dashed = false
        var marker = false
    }

    static func render(_ entries: [Entry], left: Double, top: Double) -> (elements: [String], height: Double) {
        guard !entries.isEmpty else { return ([], 0) }
        var out = ["<g class=\"legend\">"]
        for (i, e) in entries.enumerated() {
            let y = top + Double(i) * 18 + 9
            out.append("<g class=\"legend-entry\" data-label=\"\(SVG.escape(e.label))\">")
            out.append("<line x1=\"\(SVG.px(left))\" y1=\"\(SVG.px(y))\" x2=\"\(SVG.px(left + 24))\" y2=\"\(SVG.px(y))\" stroke=\"\(e.colour)\" stroke-width=\"2.5\""
                + (e.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>")
            if e.marker {
                out.append("<circle cx=\"\(SVG.px(left + 12))\" cy=\"\(SVG.px(y))\" r=\"4\" fill=\"\(e.colour)\"/>")
            }
            out.append("<text x=\"\(SVG.px(left + 32))\" y=\"\(SVG.px(y + 4))\">\(SVG.escape(e.label))</text>")
            out.append("</g>")
        }
        out.append("</g>")
        return (out, Double(entries.count) * 18 + 6)
    }
}
