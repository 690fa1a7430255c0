/// Reads JSON in place, without building a tree: the relay's hot path needs a handful of fields of a body (the model,
/// `stream`, the usage of an answer) and must still refuse malformed JSON. Every value the caller does not read is
/// skipped, and skipping validates it exactly as `JSON.parse` would.
///
/// Use it inside `withUnsafe...` over the bytes:
///
///     try JSONCursor.read(bytes) { cursor throws(JSONError) in
///         guard try cursor.enterObject() else { return }
///         while let key = try cursor.nextKey() {
///             if key == "model" { model = try cursor.string() } else { try cursor.skip() }
///         }
///     }
public struct JSONCursor {
    var parser: JSONParser
    /// Whether the next member or element of each open container is its first: bit `n` for the container entered
    /// `n`th. A reader enters a few levels and skips the rest; bits instead of an array keep the cursor off the heap.
    private var firsts: UInt64 = 0
    /// The containers entered and not yet left.
    private var depth = 0
    /// The most containers a reader may have entered at once.
    public static let maxEntered = 64

    init(_ bytes: UnsafeBufferPointer<UInt8>) { parser = JSONParser(bytes: bytes) }

    /// Runs `body` over the document in `bytes`, then checks that nothing but whitespace follows the value it read.
    /// `body` must read (or skip) exactly one value.
    public static func read<T>(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (inout JSONCursor) throws(JSONError) -> T) throws(JSONError) -> T {
        var cursor = JSONCursor(bytes)
        cursor.parser.skipWhitespace()
        let result = try body(&cursor)
        guard cursor.depth == 0 else { throw JSONError("the reader left a container open") }
        cursor.parser.skipWhitespace()
        guard cursor.parser.index == bytes.count else { throw JSONError("unexpected text after the JSON value") }
        return result
    }

    /// The byte offset of the next value (after whitespace).
    public var offset: Int { parser.index }

    private var next: UInt8? {
        mutating get {
            parser.skipWhitespace()
            return parser.index < parser.bytes.count ? parser.bytes[parser.index] : nil
        }
    }

    /// Enters an object when the next value is one; otherwise skips the value and answers false.
    public mutating func enterObject() throws(JSONError) -> Bool { try enter(UInt8(ascii: "{")) }

    /// Enters an array when the next value is one; otherwise skips the value and answers false.
    public mutating func enterArray() throws(JSONError) -> Bool { try enter(UInt8(ascii: "[")) }

    private mutating func enter(_ opening: UInt8) throws(JSONError) -> Bool {
        guard next == opening else { try skip(); return false }
        guard depth < Self.maxEntered else { throw JSONError("JSON nested too deeply") }
        parser.index += 1
        firsts |= 1 << depth
        depth += 1
        return true
    }

    /// Moves past the separator before the next member or element of the innermost container; answers false (and
    /// leaves the container) at its closing bracket.
    private mutating func advance(closing: UInt8, expected: String) throws(JSONError) -> Bool {
        guard depth > 0 else { throw JSONError("no container is open") }
        let bit: UInt64 = 1 << (depth - 1)
        let first = firsts & bit != 0
        guard let byte = next else { throw JSONError("unexpected end of JSON") }
        if byte == closing {
            parser.index += 1
            depth -= 1
            return false
        }
        if !first {
            guard byte == UInt8(ascii: ",") else { throw JSONError("expected ',' or '\(expected)' at byte \(parser.index)") }
            parser.index += 1
            parser.skipWhitespace()
        } else {
            firsts &= ~bit
        }
        return true
    }

    /// The next key of the object entered last, positioned at its value; nil (and the object left) at its end.
    public mutating func nextKey() throws(JSONError) -> Key? {
        guard try advance(closing: UInt8(ascii: "}"), expected: "}") else { return nil }
        guard parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: "\"") else {
            throw JSONError("expected a string key at byte \(parser.index)")
        }
        let start = parser.index + 1
        let escaped = try skipString()
        let key = Key(bytes: UnsafeBufferPointer(rebasing: parser.bytes[start..<(parser.index - 1)]), escaped: escaped)
        guard next == UInt8(ascii: ":") else { throw JSONError("expected ':' at byte \(parser.index)") }
        parser.index += 1
        return key
    }

    /// Whether the array entered last has another element (positioned at it); false (and the array left) at its end.
    public mutating func nextElement() throws(JSONError) -> Bool {
        try advance(closing: UInt8(ascii: "]"), expected: "]")
    }

    /// Skips the next value, validating it.
    public mutating func skip() throws(JSONError) {
        parser.skipWhitespace()
        try skipValue(depth: depth)
    }

    /// The next value when it is a string, else nil (the value skipped).
    public mutating func string() throws(JSONError) -> String? {
        guard next == UInt8(ascii: "\"") else { try skip(); return nil }
        return try parser.parseString()
    }

    /// The next value when it is a boolean, else nil (the value skipped).
    public mutating func bool() throws(JSONError) -> Bool? {
        switch next {
        case UInt8(ascii: "t"): try parser.expect("true"); return true
        case UInt8(ascii: "f"): try parser.expect("false"); return false
        default: try skip(); return nil
        }
    }

    /// The next value when it is a whole number (as `JSON.int` reads it: 3 and 3.0 alike), else nil (the value skipped).
    public mutating func int() throws(JSONError) -> Int? {
        guard let byte = next, byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else {
            try skip()
            return nil
        }
        return try parser.parseNumber().int
    }

    /// The length in UTF-8 bytes of the next value when it is a string (escapes decoded), else nil (the value skipped).
    public mutating func stringLength() throws(JSONError) -> Int? {
        guard next == UInt8(ascii: "\"") else { try skip(); return nil }
        let start = parser.index + 1
        if try !skipString() { return parser.index - 1 - start }
        parser.index = start - 1
        return try parser.parseString().utf8.count
    }

    /// Whether the next value is `null` (consumed when it is).
    public mutating func null() throws(JSONError) -> Bool {
        guard next == UInt8(ascii: "n") else { return false }
        try parser.expect("null")
        return true
    }

    /// Skips a string at the cursor, validating it; answers whether it held escapes.
    private mutating func skipString() throws(JSONError) -> Bool {
        let bytes = parser.bytes
        var index = parser.index + 1
        var escaped = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                parser.index = index + 1
                return escaped
            }
            if byte < 0x20 { throw JSONError("control character in string at byte \(index)") }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                guard index + 1 < bytes.count else { break }
                switch bytes[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    parser.index = index + 2
                    _ = try parser.parseHex4()
                    index = parser.index
                default:
                    throw JSONError("bad escape at byte \(index + 1)")
                }
                continue
            }
            index += 1
        }
        throw JSONError("unterminated string")
    }

    private mutating func skipValue(depth: Int) throws(JSONError) {
        guard depth < JSONParser.maxDepth else { throw JSONError("JSON nested too deeply") }
        guard parser.index < parser.bytes.count else { throw JSONError("unexpected end of JSON") }
        switch parser.bytes[parser.index] {
        case UInt8(ascii: "{"):
            parser.index += 1
            parser.skipWhitespace()
            if parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: "}") { parser.index += 1; return }
            while true {
                parser.skipWhitespace()
                guard parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: "\"") else {
                    throw JSONError("expected a string key at byte \(parser.index)")
                }
                _ = try skipString()
                parser.skipWhitespace()
                guard parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: ":") else {
                    throw JSONError("expected ':' at byte \(parser.index)")
                }
                parser.index += 1
                parser.skipWhitespace()
                try skipValue(depth: depth + 1)
                parser.skipWhitespace()
                guard parser.index < parser.bytes.count else { throw JSONError("unexpected end of JSON") }
                if parser.bytes[parser.index] == UInt8(ascii: ",") { parser.index += 1; continue }
                if parser.bytes[parser.index] == UInt8(ascii: "}") { parser.index += 1; return }
                throw JSONError("expected ',' or '}' at byte \(parser.index)")
            }
        case UInt8(ascii: "["):
            parser.index += 1
            parser.skipWhitespace()
            if parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: "]") { parser.index += 1; return }
            while true {
                parser.skipWhitespace()
                try skipValue(depth: depth + 1)
                parser.skipWhitespace()
                guard parser.index < parser.bytes.count else { throw JSONError("unexpected end of JSON") }
                if parser.bytes[parser.index] == UInt8(ascii: ",") { parser.index += 1; continue }
                if parser.bytes[parser.index] == UInt8(ascii: "]") { parser.index += 1; return }
                throw JSONError("expected ',' or ']' at byte \(parser.index)")
            }
        case UInt8(ascii: "\""): _ = try skipString()
        case UInt8(ascii: "t"): try parser.expect("true")
        case UInt8(ascii: "f"): try parser.expect("false")
        case UInt8(ascii: "n"): try parser.expect("null")
        default: try parser.skipNumber()
        }
    }

    /// A member name, compared without building a `String` when it has no escapes.
    public struct Key {
        let bytes: UnsafeBufferPointer<UInt8>
        let escaped: Bool

        /// The name as text.
        public var text: String {
            guard escaped else { return String(decoding: bytes, as: UTF8.self) }
            var quoted: [UInt8] = [UInt8(ascii: "\"")]
            quoted.append(contentsOf: bytes)
            quoted.append(UInt8(ascii: "\""))
            return (try? JSON.parse(quoted).string) ?? ""
        }

        public static func == (key: Key, name: StaticString) -> Bool {
            guard !key.escaped else { return key.text == name.description }
            guard key.bytes.count == name.utf8CodeUnitCount else { return false }
            let start = name.utf8Start
            for index in 0..<key.bytes.count where key.bytes[index] != start[index] { return false }
            return true
        }
    }
}
