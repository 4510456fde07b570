// Run ids: `r-0042` on the wire, a number inside.

/// A run id: `r-0042` (a bare `42` is accepted in requests).
public struct RunID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let number: Int
    public init(_ number: Int) { self.number = number }

    public init?(_ text: String) {
        var t = Substring(text)
        if t.hasPrefix("r-") { t = t.dropFirst(2) }
        guard !t.isEmpty, t.count <= 12, t.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(t), n > 0 else { return nil }
        number = n
    }

    public var description: String {
        let digits = String(number)
        return "r-" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    public static func < (a: RunID, b: RunID) -> Bool { a.number < b.number }
}
