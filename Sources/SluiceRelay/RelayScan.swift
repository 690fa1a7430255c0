import NIOCore
import SluiceCore

/// What admission needs of a request body, read in one pass without building a tree (the whole body is still
/// validated). The tree is built later only when the body must be rewritten or translated.
struct RequestSummary: Sendable {
    var model: String?
    /// Where the `model` value sits in the body, quotes included.
    var modelRange: Range<Int>?
    var stream: Bool?
    var messagesIsArray = false
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var hasStreamOptions = false
    var includeUsage: Bool?
    /// Where the body's opening brace is.
    var objectStart = 0

    /// A key admission reads appeared twice. Upstreams read the last one and Sluice would bill by the first,
    /// so such bodies are refused.
    struct DuplicateKey: Error { let name: String }

    /// The summary of `body`; nil when it is valid JSON but not an object.
    static func scan(_ body: ByteBuffer) throws -> RequestSummary? {
        try body.withUnsafeReadableBytes { raw in
            try scan(raw.assumingMemoryBound(to: UInt8.self))
        }
    }

    static func scan(_ bytes: UnsafeBufferPointer<UInt8>) throws -> RequestSummary? {
        var seen: UInt8 = 0
        var duplicate: String?
        /// Whether this is the first time the key of `bit` appears; the first repeated key is remembered.
        func first(_ bit: UInt8, _ name: String) -> Bool {
            if seen & bit != 0 { duplicate = duplicate ?? name; return false }
            seen |= bit
            return true
        }
        let summary = try JSONCursor.read(bytes) { cursor throws(JSONError) -> RequestSummary? in
            var summary = RequestSummary()
            summary.objectStart = cursor.offset
            guard try cursor.enterObject() else { return nil }
            while let key = try cursor.nextKey() {
                if key == "model", first(1, "model") {
                    let start = cursor.offset
                    summary.model = try cursor.string()
                    summary.modelRange = start..<cursor.offset
                } else if key == "stream", first(2, "stream") {
                    summary.stream = try cursor.bool()
                } else if key == "messages", first(4, "messages") {
                    if try cursor.enterArray() {
                        summary.messagesIsArray = true
                        while try cursor.nextElement() { try cursor.skip() }
                    }
                } else if key == "max_tokens", first(8, "max_tokens") {
                    summary.maxTokens = try cursor.int()
                } else if key == "max_completion_tokens", first(16, "max_completion_tokens") {
                    summary.maxCompletionTokens = try cursor.int()
                } else if key == "stream_options", first(32, "stream_options") {
                    summary.hasStreamOptions = true
                    if try cursor.enterObject() {
                        while let option = try cursor.nextKey() {
                            let value = try cursor.bool()
                            if option == "include_usage", summary.includeUsage == nil { summary.includeUsage = value }
                        }
                    }
                } else {
                    try cursor.skip()
                }
            }
            return summary
        }
        if let duplicate { throw DuplicateKey(name: duplicate) }
        return summary
    }
}

/// The facts of an answer or stream event that usage needs, read without building a tree: the `usage` object of
/// either format, whether `choices` has any, the length of delivered text, and Anthropic's event type.
struct AnswerFacts: Sendable {
    var usage = UsageFields()
    /// `message.usage` of an Anthropic `message_start`.
    var messageUsage = UsageFields()
    var hasChoices = false
    /// UTF-8 bytes of text delivered in an OpenAI event: `choices[].delta.content`, `choices[].text` and
    /// `choices[].delta.tool_calls[].function.arguments`.
    var choiceTextBytes = 0
    /// UTF-8 bytes of `delta.text` and `delta.partial_json` (Anthropic `content_block_delta`).
    var deltaTextBytes = 0
    var type: String?

    struct UsageFields: Sendable {
        var present = false
        var promptTokens: Int?
        var completionTokens: Int?
        var inputTokens: Int?
        var outputTokens: Int?
        var cacheRead: Int?
        var cacheCreation: Int?

        /// As `Usage.from` reads a body's `usage`.
        var usage: Usage? {
            if let promptTokens { return Usage(prompt: promptTokens, completion: completionTokens ?? 0) }
            if let inputTokens { return Usage(prompt: inputTokens + (cacheRead ?? 0) + (cacheCreation ?? 0), completion: outputTokens ?? 0) }
            return nil
        }
    }

    /// The facts of a JSON text; nil when it is malformed or not an object.
    static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> AnswerFacts? {
        try? JSONCursor.read(bytes) { cursor throws(JSONError) -> AnswerFacts? in
            var facts = AnswerFacts()
            guard try cursor.enterObject() else { return nil }
            while let key = try cursor.nextKey() {
                if key == "usage" {
                    if !facts.usage.present { facts.usage = try readUsage(&cursor) } else { try cursor.skip() }
                } else if key == "choices" {
                    guard try cursor.enterArray() else { continue }
                    while try cursor.nextElement() {
                        facts.hasChoices = true
                        try readChoice(&cursor, into: &facts)
                    }
                } else if key == "type" {
                    facts.type = try cursor.string()
                } else if key == "message" {
                    guard try cursor.enterObject() else { continue }
                    while let inner = try cursor.nextKey() {
                        if inner == "usage", !facts.messageUsage.present { facts.messageUsage = try readUsage(&cursor) } else { try cursor.skip() }
                    }
                } else if key == "delta" {
                    guard try cursor.enterObject() else { continue }
                    while let inner = try cursor.nextKey() {
                        if inner == "text" || inner == "partial_json" { facts.deltaTextBytes += try cursor.stringLength() ?? 0 } else { try cursor.skip() }
                    }
                } else {
                    try cursor.skip()
                }
            }
            return facts
        } ?? nil
    }

    static func scan(_ buffer: ByteBuffer) -> AnswerFacts? {
        buffer.withUnsafeReadableBytes { scan($0.assumingMemoryBound(to: UInt8.self)) }
    }

    private static func readUsage(_ cursor: inout JSONCursor) throws(JSONError) -> UsageFields {
        var fields = UsageFields()
        guard try cursor.enterObject() else { return fields }
        fields.present = true
        while let key = try cursor.nextKey() {
            // The first of a repeated key counts, as with `JSON` subscripts.
            if key == "prompt_tokens" { let value = try cursor.int(); if fields.promptTokens == nil { fields.promptTokens = value } }
            else if key == "completion_tokens" { let value = try cursor.int(); if fields.completionTokens == nil { fields.completionTokens = value } }
            else if key == "input_tokens" { let value = try cursor.int(); if fields.inputTokens == nil { fields.inputTokens = value } }
            else if key == "output_tokens" { let value = try cursor.int(); if fields.outputTokens == nil { fields.outputTokens = value } }
            else if key == "cache_read_input_tokens" { let value = try cursor.int(); if fields.cacheRead == nil { fields.cacheRead = value } }
            else if key == "cache_creation_input_tokens" { let value = try cursor.int(); if fields.cacheCreation == nil { fields.cacheCreation = value } }
            else { try cursor.skip() }
        }
        return fields
    }

    private static func readChoice(_ cursor: inout JSONCursor, into facts: inout AnswerFacts) throws(JSONError) {
        guard try cursor.enterObject() else { return }
        while let key = try cursor.nextKey() {
            if key == "text" {
                facts.choiceTextBytes += try cursor.stringLength() ?? 0
            } else if key == "delta" {
                guard try cursor.enterObject() else { continue }
                while let inner = try cursor.nextKey() {
                    if inner == "content" {
                        facts.choiceTextBytes += try cursor.stringLength() ?? 0
                    } else if inner == "tool_calls" {
                        guard try cursor.enterArray() else { continue }
                        while try cursor.nextElement() {
                            guard try cursor.enterObject() else { continue }
                            while let field = try cursor.nextKey() {
                                guard field == "function" else { try cursor.skip(); continue }
                                guard try cursor.enterObject() else { continue }
                                while let part = try cursor.nextKey() {
                                    if part == "arguments" { facts.choiceTextBytes += try cursor.stringLength() ?? 0 } else { try cursor.skip() }
                                }
                            }
                        }
                    } else {
                        try cursor.skip()
                    }
                }
            } else {
                try cursor.skip()
            }
        }
    }
}
