import SluiceCore

/// Turns an OpenAI `chat.completion.chunk` stream into Anthropic Messages stream events, for a caller of
/// `POST /v1/messages` answered by an `openai` channel.
///
/// The caller sees `message_start`, then for each run of text, reasoning or a tool call a `content_block_start`,
/// its `content_block_delta`s (`text_delta`, `thinking_delta`, `input_json_delta`) and a `content_block_stop`, then
/// `message_delta` (with `stop_reason` and the usage) and `message_stop`. Because OpenAI reports usage in a chunk
/// after the one with `finish_reason`, the message is closed on `data: [DONE]` or ``finish()``.
///
/// Feed every upstream event, including the final `data: [DONE]`, to ``translate(_:)`` and send what it answers.
/// An upstream `{"error": ...}` chunk becomes an Anthropic `error` event and ends the translation.
public struct OpenAIToAnthropicStream: Sendable {
    private enum Block: Sendable, Equatable {
        case text
        case thinking
        case tool(Int)
    }

    private let model: String
    private var messageID: String?
    private var openBlock: Block?
    private var openIndex = 0
    private var nextIndex = 0
    private var toolBlocks: [Int: Int] = [:]
    private var lastToolKey: Int?
    private var finishReason: String?
    private var sawToolCall = false
    private var usage = Translation.AnthropicUsage()

    /// Whether `message_start` has been produced.
    public private(set) var hasStarted = false
    /// Whether the translation is over: the message was closed, or an error event was produced.
    public private(set) var isFinished = false
    /// Whether the upstream reported usage (a chunk with a `usage` object).
    public private(set) var hasUsage = false

    /// Prompt tokens reported by the upstream so far (including cached ones), for charging.
    public var promptTokens: Int { usage.input + usage.cacheRead }
    /// Completion tokens reported by the upstream so far, for charging.
    public var completionTokens: Int { usage.output }

    /// Creates a translator; `model` is the model name the caller sees.
    public init(model: String) {
        self.model = model
    }

    /// Translates one upstream event; answers the events to send to the caller (possibly none).
    public mutating func translate(_ event: SSEEvent) -> [SSEEvent] {
        guard !isFinished else { return [] }
        let data = Translation.trimmed(event.data)
        if data == "[DONE]" { return close(startIfNeeded: true) }
        guard let chunk = try? JSON.parse(data), chunk.object != nil else { return [] }

        if !chunk["error"].isNull {
            isFinished = true
            let body = Translation.openAIErrorToAnthropic(chunk, status: 200)
            return [SSEEvent(event: "error", data: body.text)]
        }

        var out: [SSEEvent] = []
        if chunk["usage"].object != nil {
            usage = Translation.AnthropicUsage(openAI: chunk["usage"])
            hasUsage = true
        }
        if !hasStarted {
            if let id = chunk["id"].string, !id.isEmpty { messageID = id }
            start(into: &out)
        }
        let choice = chunk["choices"].array?.first(where: { ($0["index"].int ?? 0) == 0 }) ?? .null
        let delta = choice["delta"]

        if let reasoning = delta["reasoning_content"].string ?? delta["reasoning"].string, !reasoning.isEmpty {
            open(.thinking, into: &out)
            out.append(Self.event("content_block_delta", [
                ("index", .int(Int64(openIndex))),
                ("delta", .object([("type", .string("thinking_delta")), ("thinking", .string(reasoning))])),
            ]))
        }
        if let text = delta["content"].string, !text.isEmpty {
            open(.text, into: &out)
            out.append(Self.event("content_block_delta", [
                ("index", .int(Int64(openIndex))),
                ("delta", .object([("type", .string("text_delta")), ("text", .string(text))])),
            ]))
        }
        for call in delta["tool_calls"].array ?? [] {
            let key: Int
            if let index = call["index"].int {
                key = index
            } else if call["id"].string != nil || lastToolKey == nil {
                key = (toolBlocks.keys.max() ?? -1) + 1
            } else {
                key = lastToolKey ?? 0
            }
            lastToolKey = key
            sawToolCall = true
            if toolBlocks[key] == nil {
                closeBlock(into: &out)
                openIndex = nextIndex
                nextIndex += 1
                openBlock = .tool(key)
                toolBlocks[key] = openIndex
                out.append(Self.event("content_block_start", [
                    ("index", .int(Int64(openIndex))),
                    ("content_block", .object([
                        ("type", .string("tool_use")),
                        ("id", .string(call["id"].string ?? Translation.newID("toolu_"))),
                        ("name", .string(call["function"]["name"].string ?? "")),
                        ("input", .object([])),
                    ])),
                ]))
            }
            if let arguments = call["function"]["arguments"].string, !arguments.isEmpty, let index = toolBlocks[key] {
                out.append(Self.event("content_block_delta", [
                    ("index", .int(Int64(index))),
                    ("delta", .object([("type", .string("input_json_delta")), ("partial_json", .string(arguments))])),
                ]))
            }
        }
        if let reason = choice["finish_reason"].string {
            finishReason = reason
            closeBlock(into: &out)
        }
        return out
    }

    /// Called when the upstream stream ends, with or without `data: [DONE]`: closes the open block and the message if
    /// that has not happened yet. Answers nothing when the upstream sent nothing at all, so that the relay can report
    /// the failure instead of an empty message (see ``hasStarted``).
    public mutating func finish() -> [SSEEvent] {
        guard !isFinished, hasStarted else { return [] }
        return close(startIfNeeded: false)
    }

    // MARK: - Internals

    private mutating func start(into out: inout [SSEEvent]) {
        hasStarted = true
        out.append(Self.event("message_start", [
            ("message", .object([
                ("id", .string(messageID ?? Translation.newID("msg_"))),
                ("type", .string("message")),
                ("role", .string("assistant")),
                ("model", .string(model)),
                ("content", .array([])),
                ("stop_reason", .null),
                ("stop_sequence", .null),
                ("usage", usage.anthropicJSON),
            ])),
        ]))
    }

    private mutating func open(_ block: Block, into out: inout [SSEEvent]) {
        if openBlock == block { return }
        closeBlock(into: &out)
        openBlock = block
        openIndex = nextIndex
        nextIndex += 1
        let contentBlock: JSON = block == .text
            ? .object([("type", .string("text")), ("text", .string(""))])
            : .object([("type", .string("thinking")), ("thinking", .string("")), ("signature", .string(""))])
        out.append(Self.event("content_block_start", [("index", .int(Int64(openIndex))), ("content_block", contentBlock)]))
    }

    private mutating func closeBlock(into out: inout [SSEEvent]) {
        guard openBlock != nil else { return }
        openBlock = nil
        out.append(Self.event("content_block_stop", [("index", .int(Int64(openIndex)))]))
    }

    private mutating func close(startIfNeeded: Bool) -> [SSEEvent] {
        var out: [SSEEvent] = []
        if !hasStarted {
            guard startIfNeeded else { return [] }
            start(into: &out)
        }
        closeBlock(into: &out)
        out.append(Self.event("message_delta", [
            ("delta", .object([
                ("stop_reason", .string(Translation.anthropicStopReason(finishReason, sawToolCall: sawToolCall))),
                ("stop_sequence", .null),
            ])),
            ("usage", usage.anthropicJSON),
        ]))
        out.append(Self.event("message_stop", []))
        isFinished = true
        return out
    }

    private static func event(_ type: String, _ members: [(String, JSON)]) -> SSEEvent {
        SSEEvent(event: type, data: JSON.object([("type", .string(type))] + members).text)
    }
}
