// The "iterative pruning rate" of docs/EXPERIMENTS.md §5.2, read from a run's canonical spec JSON.
import PrunedJSON

/// docs/EXPERIMENTS.md §5.2: "iterative pruning rate" = frac / n of the layer with the largest fraction, where
/// n = len(range(start, end + 1, period)) is that layer's number of pruning events (epochs start,
/// start + period, … ≤ end, as Engine's LayerPlan.events). Ties for the largest fraction go to the
/// first layer listed.
public enum IterativeRate {
    /// Number of events of a layer: len(range(start, end + 1, period)); 0 if end < start.
    public static func events(start: Int, end: Int, period: Int) -> Int {
        guard end >= start else { return 0 }
        return (end - start) / max(period, 1) + 1
    }

    /// The rate in percent of the layer's original units per event (rounded to 12 decimals);
    /// nil when the spec has no pruning layers (or the largest-fraction layer lacks a schedule).
    public static func percent(spec: JSON) -> Double? {
        guard let pruning = spec["pruning"], let layers = pruning["layers"]?.arrayValue, !layers.isEmpty else { return nil }
        var chosen: JSON?
        var largest = -Double.infinity
        for l in layers {
            if let f = l["fraction"]?.doubleValue, f > largest { largest = f; chosen = l }
        }
        guard let layer = chosen else { return nil }
        let scratch = pruning["scratch"]?.boolValue ?? false
        guard let start = layer["start"]?.intValue ?? (scratch ? 0 : nil),
              let end = layer["end"]?.intValue ?? (scratch ? 0 : nil) else { return nil }
        let period = layer["period"]?.intValue ?? pruning["period"]?.intValue ?? 1
        let n = events(start: start, end: end, period: period)
        guard n > 0 else { return nil }
        // Rounded to 12 decimals so that e.g. 0.9 / 1 reads 90 rather than 90.00000000000001.
        return (largest / Double(n) * 100 * 1e12).rounded() / 1e12
    }
}
