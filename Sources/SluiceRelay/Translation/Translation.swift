import Foundation
import SluiceCore

/// Translation between the two wire formats Sluice speaks: the OpenAI Chat Completions API and the Anthropic Messages
/// API. When a caller's format differs from the format of the channel a request is routed to, the relay translates the
/// request on the way up and the response (whole, streamed, or an error) on the way down.
///
/// Every function here is pure apart from fresh identifiers and the `created` timestamp of OpenAI responses.
///
/// Request translations: ``anthropicRequestToOpenAI(_:)`` and ``openAIRequestToAnthropic(_:defaultMaxTokens:)``.
/// Response translations: ``openAIResponseToAnthropic(_:model:)`` and ``anthropicResponseToOpenAI(_:model:)``.
/// Error bodies: ``openAIErrorToAnthropic(_:status:)`` and ``anthropicErrorToOpenAI(_:status:)``.
/// Streams: ``OpenAIToAnthropicStream`` and ``AnthropicToOpenAIStream``.
public enum Translation {}

// MARK: - Shared helpers

extension Translation {
    /// An object built from `members`, leaving out the members whose value is `nil`.
    static func object(_ members: [(String, JSON?)]) -> JSON {
        .object(members.compactMap { key, value in value.map { (key, $0) } })
    }

    /// A fresh identifier such as `msg_3f9a…` (24 hex digits after the prefix).
    static func newID(_ prefix: String) -> String {
        func hex(_ value: UInt64) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: max(0, 12 - digits.count)) + digits
        }
        return prefix + hex(UInt64.random(in: 0..<(1 << 48))) + hex(UInt64.random(in: 0..<(1 << 48)))
    }

    /// `text` without leading and trailing whitespace.
    static func trimmed(_ text: String) -> String {
        var slice = Substring(text)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }

    /// Seconds since 1970, for the `created` field of OpenAI responses.
    static func unixTime() -> Int { Int(Date().timeIntervalSince1970) }

    /// The text of OpenAI message content: a string, or the `text` (and `refusal`) of an array of parts.
    static func openAIText(_ content: JSON) -> String {
        switch content {
        case .string(let text): return text
        case .array(let parts):
            return parts.compactMap { part in part["text"].string ?? part["refusal"].string ?? part.string }.joined()
        default: return ""
        }
    }

    /// The text of Anthropic content: a string, or the `text` of the text blocks of an array, joined by `separator`.
    static func anthropicText(_ content: JSON, separator: String) -> String {
        switch content {
        case .string(let text): return text
        case .array(let blocks):
            return blocks.compactMap { block in
                block["type"].string == "text" ? block["text"].string : nil
            }.joined(separator: separator)
        default: return ""
        }
    }

    /// Tool-call arguments (JSON text) as an Anthropic `input` object; `{}` when empty or not an object.
    static func toolInput(fromArguments arguments: JSON) -> JSON {
        switch arguments {
        case .object: return arguments
        case .string(let text):
            if let parsed = try? JSON.parse(text), parsed.object != nil { return parsed }
            return .object([])
        default: return .object([])
        }
    }

    /// An Anthropic `input` object as OpenAI tool-call arguments (JSON text).
    static func toolArguments(fromInput input: JSON) -> String {
        input.isNull ? "{}" : input.text
    }

    /// Maps an OpenAI `finish_reason` to an Anthropic `stop_reason`.
    static func anthropicStopReason(_ finishReason: String?, sawToolCall: Bool) -> String {
        switch finishReason {
        case "length": return "max_tokens"
        case "tool_calls", "function_call": return "tool_use"
        case "content_filter": return "refusal"
        default: return sawToolCall ? "tool_use" : "end_turn"
        }
    }

    /// Maps an Anthropic `stop_reason` to an OpenAI `finish_reason`.
    static func openAIFinishReason(_ stopReason: String?, sawToolCall: Bool) -> String {
        switch stopReason {
        case "max_tokens", "model_context_window_exceeded": return "length"
        case "tool_use": return "tool_calls"
        case "refusal": return "content_filter"
        case "end_turn", "stop_sequence", "pause_turn": return "stop"
        default: return sawToolCall ? "tool_calls" : "stop"
        }
    }

    /// Token counts in Anthropic terms: input excludes cache reads, which are counted on their own.
    struct AnthropicUsage: Sendable, Equatable {
        var input = 0
        var output = 0
        var cacheRead = 0
        var cacheCreation = 0

        /// Reads an OpenAI `usage` object, where `prompt_tokens` includes cached tokens.
        init(openAI usage: JSON) {
            let prompt = usage["prompt_tokens"].int ?? 0
            let cached = usage["prompt_tokens_details"]["cached_tokens"].int ?? 0
            // Split only when the cached count is consistent with the prompt count.
            if cached > 0, cached <= prompt {
                input = prompt - cached
                cacheRead = cached
            } else {
                input = prompt
            }
            output = usage["completion_tokens"].int ?? 0
        }

        /// Reads an Anthropic `usage` object.
        init(anthropic usage: JSON) {
            input = usage["input_tokens"].int ?? 0
            output = usage["output_tokens"].int ?? 0
            cacheRead = usage["cache_read_input_tokens"].int ?? 0
            cacheCreation = usage["cache_creation_input_tokens"].int ?? 0
        }

        init() {}

        /// Updates from a later (cumulative) Anthropic usage object, keeping the counts it leaves out.
        mutating func update(anthropic usage: JSON) {
            if let value = usage["input_tokens"].int { input = value }
            if let value = usage["output_tokens"].int { output = value }
            if let value = usage["cache_read_input_tokens"].int { cacheRead = value }
            if let value = usage["cache_creation_input_tokens"].int { cacheCreation = value }
        }

        /// All prompt tokens, as OpenAI counts them.
        var prompt: Int { input + cacheRead + cacheCreation }

        /// The Anthropic `usage` object.
        var anthropicJSON: JSON {
            var members: [(String, JSON)] = [("input_tokens", .int(Int64(input)))]
            if cacheCreation > 0 { members.append(("cache_creation_input_tokens", .int(Int64(cacheCreation)))) }
            if cacheRead > 0 { members.append(("cache_read_input_tokens", .int(Int64(cacheRead)))) }
            members.append(("output_tokens", .int(Int64(output))))
            return .object(members)
        }

        /// The OpenAI `usage` object.
        var openAIJSON: JSON {
            var members: [(String, JSON)] = [
                ("prompt_tokens", .int(Int64(prompt))),
                ("completion_tokens", .int(Int64(output))),
                ("total_tokens", .int(Int64(prompt + output))),
            ]
            if cacheRead > 0 { members.append(("prompt_tokens_details", .object([("cached_tokens", .int(Int64(cacheRead)))]))) }
            return .object(members)
        }
    }
}
