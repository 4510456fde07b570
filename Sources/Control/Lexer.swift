// Lexing of one protocol request line into words, quoted strings and key=value arguments.
// Pure and allocation-light; knows nothing about sockets. The grammar is in docs/PROTOCOL.md:
//   request = verb *(SP arg);  arg = word | "quoted" | key=value;  value = word | "quoted" | {json} | [json]
import PrunedJSON

/// One argument of a request line.
public struct Token: Equatable, Sendable {
    /// The key of a `key=value` argument, nil for a positional argument.
    public var key: String?
    /// The value (unquoted, escapes resolved).
    public var value: String
    /// The value was written in double quotes: it is a string, never a number or JSON.
    public var quoted: Bool

    public init(key: String? = nil, value: String, quoted: Bool = false) {
        self.key = key
        self.value = value
        self.quoted = quoted
    }

    /// The value as JSON: quoted → string; `{…}`/`[…]` → parsed JSON; true/false/null and
    /// numbers → those literals; anything else → a string.
    public func jsonValue() throws -> JSON {
        if quoted { return .string(value) }
        if let first = value.first, first == "{" || first == "[" {
            do { return try JSON.parse(value) } catch let e as JSONParseError {
                throw ProtocolError(.badArgument, "\(key ?? "argument"): \(e.description)")
            }
        }
        switch value {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "null": return .null
        default: break
        }
        if Token.looksNumeric(value), let d = Double(value), d.isFinite { return .number(d) }
        return .string(value)
    }

    static func looksNumeric(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first else { return false }
        return (f == "-" || ("0"..."9").contains(f)) && s.unicodeScalars.allSatisfy { "0123456789+-.eE".unicodeScalars.contains($0) }
    }
}

public enum Lexer {
    /// Splits a request line (without its line terminator) into the verb and its arguments.
    public static func tokenize(_ line: String) throws -> (verb: String, args: [Token]) {
        let s = Array(line.unicodeScalars)
        var i = 0
        var words: [Token] = []
        func skipSpace() { while i < s.count, s[i] == " " || s[i] == "\t" { i += 1 } }
        skipSpace()
        while i < s.count {
            words.append(try readArgument(s, &i))
            if i < s.count, s[i] != " " && s[i] != "\t" {
                throw ProtocolError(.badArgument, "expected a space after argument \(words.count) at column \(i + 1)")
            }
            skipSpace()
        }
        guard let first = words.first else { throw ProtocolError(.badArgument, "empty request") }
        guard first.key == nil, !first.quoted else { throw ProtocolError(.badArgument, "a request starts with a command word") }
        return (first.value.lowercased(), Array(words.dropFirst()))
    }

    static func isKeyScalar(_ c: Unicode.Scalar, first: Bool) -> Bool {
        if ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_" { return true }
        return !first && (("0"..."9").contains(c) || c == "." || c == "-")
    }

    static func readArgument(_ s: [Unicode.Scalar], _ i: inout Int) throws -> Token {
        // key= prefix?
        var key: String?
        var j = i
        if j < s.count, isKeyScalar(s[j], first: true) {
            while j < s.count, isKeyScalar(s[j], first: j == i) { j += 1 }
            if j < s.count, s[j] == "=" {
                var k = String.UnicodeScalarView()
                k.append(contentsOf: s[i..<j])
                key = String(k)
                i = j + 1
            }
        }
        guard i < s.count else { return Token(key: key, value: "") }
        if s[i] == "\"" { return Token(key: key, value: try readQuoted(s, &i), quoted: true) }
        if s[i] == "{" || s[i] == "[" { return Token(key: key, value: try readBracketed(s, &i)) }
        var v = String.UnicodeScalarView()
        while i < s.count, s[i] != " " && s[i] != "\t" {
            if s[i] == "\"" { throw ProtocolError(.badArgument, "unexpected quote inside a word at column \(i + 1)") }
            v.append(s[i]); i += 1
        }
        return Token(key: key, value: String(v))
    }

    static func readQuoted(_ s: [Unicode.Scalar], _ i: inout Int) throws -> String {
        let start = i
        i += 1
        var v = String.UnicodeScalarView()
        while i < s.count {
            let c = s[i]
            if c == "\"" { i += 1; return String(v) }
            if c == "\\" {
                guard i + 1 < s.count else { break }
                switch s[i + 1] {
                case "\"": v.append("\"")
                case "\\": v.append("\\")
                case "n": v.append("\n")
                case "t": v.append("\t")
                default: throw ProtocolError(.badArgument, "unknown escape \\\(s[i + 1]) at column \(i + 1) (allowed: \\\" \\\\ \\n \\t)")
                }
                i += 2
                continue
            }
            v.append(c); i += 1
        }
        throw ProtocolError(.badArgument, "unterminated quoted string starting at column \(start + 1)")
    }

    /// A JSON object or array: scans to the matching bracket, honouring JSON strings.
    static func readBracketed(_ s: [Unicode.Scalar], _ i: inout Int) throws -> String {
        let start = i
        var depth = 0
        var inString = false
        while i < s.count {
            let c = s[i]
            if inString {
                if c == "\\" { i += 2; continue }
                if c == "\"" { inString = false }
            } else if c == "\"" {
                inString = true
            } else if c == "{" || c == "[" {
                depth += 1
            } else if c == "}" || c == "]" {
                depth -= 1
                if depth == 0 {
                    i += 1
                    var v = String.UnicodeScalarView()
                    v.append(contentsOf: s[start..<i])
                    return String(v)
                }
            }
            i += 1
        }
        throw ProtocolError(.badArgument, "unbalanced JSON starting at column \(start + 1)")
    }

    /// Renders a value so that `tokenize` reads it back unchanged (quotes only when needed).
    public static func quoteIfNeeded(_ v: String) -> String {
        // `=` too: a bare positional `a=b` would be read back as the key=value argument a=b.
        let plain = !v.isEmpty && v.unicodeScalars.allSatisfy { $0 != " " && $0 != "\t" && $0 != "\"" && $0 != "\\" && $0 != "=" && $0.value >= 0x20 }
            && v.first != "{" && v.first != "["
        if plain && !Token.looksNumeric(v) && !["true", "false", "null"].contains(v) { return v }
        var out = "\""
        for c in v.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    /// Renders a JSON value as an argument value (`tokenize` + `jsonValue` give it back).
    public static func renderValue(_ v: JSON) -> String {
        switch v {
        case .string(let s): return quoteIfNeeded(s)
        default: return renderJSON(v)
        }
    }

    /// JSON text for a request line. `JSON.rendered` escapes C0 controls inside strings but
    /// writes DEL raw, which `Request.parse` refuses as a control character; DEL can only occur
    /// inside a JSON string there, so writing it as `\u007f` keeps the value and the line valid.
    public static func renderJSON(_ v: JSON) -> String {
        let text = v.rendered
        guard text.unicodeScalars.contains("\u{7F}") else { return text }
        var out = String.UnicodeScalarView()
        for c in text.unicodeScalars {
            if c == "\u{7F}" { out.append(contentsOf: "\\u007f".unicodeScalars) } else { out.append(c) }
        }
        return String(out)
    }
}
