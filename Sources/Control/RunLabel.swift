// Group and tag names: 1–64 characters of ASCII letters, digits and `._-+:@`. This is the one
// definition of that rule: the request parser enforces it (`group=`, `tag=`, `list`,
// `subscribe`), prunectl builds sweep tags with it, and the Python and shell clients, which
// keep a copy of their own, cite this file.

/// The names a run is labelled with: its group and its tags.
public enum RunLabel {
    /// The characters allowed besides ASCII letters and digits.
    public static let punctuation = "._-+:@"
    /// The longest name, in characters.
    public static let maxLength = 64

    public static func isAllowed(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || punctuation.unicodeScalars.contains(c)
    }

    /// `name` when it follows the rule; BAD_ARGUMENT naming `field` (group, tag) otherwise.
    public static func validate(_ name: String, field: String) throws -> String {
        guard !name.isEmpty, name.count <= maxLength, name.unicodeScalars.allSatisfy(isAllowed) else {
            throw ProtocolError(.badArgument, "\(field) '\(name.prefix(40))' must be 1–\(maxLength) characters of letters, digits and \(punctuation)")
        }
        return name
    }

    /// `text` with every character the rule does not allow replaced by `_`, cut to `maxLength`
    /// (a valid name unless `text` is empty).
    public static func sanitized(_ text: String) -> String {
        String(String(text.unicodeScalars.map { isAllowed($0) ? Character($0) : "_" }).prefix(maxLength))
    }
}
