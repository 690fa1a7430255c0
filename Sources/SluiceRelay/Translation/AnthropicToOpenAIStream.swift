import SluiceCore

/// Turns an Anthropic Messages stream into OpenAI `chat.completion.chunk` events, for a caller of
/// `POST /v1/chat/completions` answered by an `anthropic` channel.
///
/// The caller sees a chunk with `delta.role` first, then `delta.content` chunks for text, `delta.reasoning_content`
/// chunks for thinking, `delta.tool_calls` chunks (the first for each call with `index`, `id`, `type` and the function
/// name, then `arguments` pieces), a chunk with `finish_reason`, then — when `includeUsage` is true — a chunk with
/// empty `choices` and `usage`, and finally `data: [DONE]`. An Anthropic `error` event becomes a
/// `data: {"error": {...}}` event and ends the translation.
public struct AnthropicToOpenAIStream: Sendable {
    private let model: String
    private let includeUsage: Bool
    private let created: Int
    private var id: String
    private var roleSent = false
    private var finishSent = false
    private var toolIndexes: [Int: Int] = [:]
    private var stopReason: String?
    private var usage = Translation.AnthropicUsage()

    /// Whether the translation is over: `[DONE]` or an error event was produced.
    public private(set) var isFinished = false
    /// Whether anything was produced for the caller yet.
    public var hasStarted: Bool { roleSent }

    /// Prompt tokens reported by the upstream so far (input plus cache reads and writes), for charging.
    public var promptTokens: Int { usage.prompt }
    /// Completion tokens reported by the upstream so far, for charging.
    public var completionTokens: Int { usage.output }

    /// Creates a translator; `model` is the model name the caller sees, `includeUsage` whether to send the usage
    /// chunk before `[DONE]`.
    public init(model: String, includeUsage: Bool) {
        self.model = model
        self.includeUsage = includeUsage
        self.created = Translation.unixTime()
        self.id = Translation.newID("chatcmpl-")
    }

    /// Translates one upstream event; answers the events to send to the caller (possibly none).
    public mutating func translate(_ event: SSEEvent) -> [SSEEvent] {
        guard !isFinished else { return [] }
        guard let data = try? JSON.parse(event.data), data.object != nil else { return [] }
        var out: [SSEEvent] = []
        switch data["type"].string ?? event.event {
        case "message_start":
            let message = data["message"]
            if let messageID = message["id"].string, !roleSent { id = messageID }
            usage.update(anthropic: message["usage"])
            sendRole(into: &out)

        case "content_block_start":
            sendRole(into: &out)
            let block = data["content_block"]
            let index = data["index"].int ?? 0
            switch block["type"].string {
            case "text":
                if let text = block["text"].string, !text.isEmpty { out.append(chunk(delta: [("content", .string(text))])) }
            case "thinking":
                if let text = block["thinking"].string, !text.isEmpty { out.append(chunk(delta: [("reasoning_content", .string(text))])) }
            case "tool_use":
                let toolIndex = toolIndexes.count
                toolIndexes[index] = toolIndex
                let input = block["input"]
                let arguments = input.object?.isEmpty == false ? input.text : ""
                out.append(chunk(delta: [("tool_calls", .array([.object([
                    ("index", .int(Int64(toolIndex))),
                    ("id", .string(block["id"].string ?? Translation.newID("call_"))),
                    ("type", .string("function")),
                    ("function", .object([("name", .string(block["name"].string ?? "")), ("arguments", .string(arguments))])),
                ])]))]))
            default:
                break
            }

        case "content_block_delta":
            sendRole(into: &out)
            let delta = data["delta"]
            switch delta["type"].string {
            case "text_delta":
                if let text = delta["text"].string, !text.isEmpty { out.append(chunk(delta: [("content", .string(text))])) }
            case "thinking_delta":
                if let text = delta["thinking"].string, !text.isEmpty { out.append(chunk(delta: [("reasoning_content", .string(text))])) }
            case "input_json_delta":
                if let partial = delta["partial_json"].string, !partial.isEmpty, let toolIndex = toolIndexes[data["index"].int ?? 0] {
                    out.append(chunk(delta: [("tool_calls", .array([.object([
                        ("index", .int(Int64(toolIndex))),
                        ("function", .object([("arguments", .string(partial))])),
                    ])]))]))
                }
            default:
                break
            }

        case "message_delta":
            sendRole(into: &out)
            if let reason = data["delta"]["stop_reason"].string { stopReason = reason }
            usage.update(anthropic: data["usage"])
            sendFinish(into: &out)

        case "message_stop":
            out += close()

        case "error":
            isFinished = true
            let body = Translation.anthropicErrorToOpenAI(data, status: 200)
            out.append(SSEEvent(data: body.text))

        default:
            break  // ping, content_block_stop, unknown events
        }
        return out
    }

    /// Called when the upstream stream ends, with or without `message_stop`: sends the finish chunk, the usage chunk
    /// and `[DONE]` if that has not happened yet. Answers nothing when the upstream sent nothing at all, so that the
    /// relay can report the failure instead (see ``hasStarted``).
    public mutating func finish() -> [SSEEvent] {
        guard !isFinished, roleSent else { return [] }
        return close()
    }

    // MARK: - Internals

    private mutating func close() -> [SSEEvent] {
        var out: [SSEEvent] = []
        sendRole(into: &out)
        sendFinish(into: &out)
        if includeUsage {
            out.append(SSEEvent(data: JSON.object(header + [("choices", .array([])), ("usage", usage.openAIJSON)]).text))
        }
        out.append(SSEEvent(data: "[DONE]"))
        isFinished = true
        return out
    }

    private mutating func sendRole(into out: inout [SSEEvent]) {
        guard !roleSent else { return }
        roleSent = true
        out.append(chunk(delta: [("role", .string("assistant")), ("content", .string(""))]))
    }

    private mutating func sendFinish(into out: inout [SSEEvent]) {
        guard !finishSent else { return }
        finishSent = true
        let reason = Translation.openAIFinishReason(stopReason, sawToolCall: !toolIndexes.isEmpty)
        out.append(chunk(delta: [], finishReason: .string(reason)))
    }

    private var header: [(String, JSON)] {
        [
            ("id", .string(id)),
            ("object", .string("chat.completion.chunk")),
            ("created", .int(Int64(created))),
            ("model", .string(model)),
        ]
    }

    private func chunk(delta: [(String, JSON)], finishReason: JSON = .null) -> SSEEvent {
        let choice: JSON = .object([
            ("index", .int(0)),
            ("delta", .object(delta)),
            ("logprobs", .null),
            ("finish_reason", finishReason),
        ])
        return SSEEvent(data: JSON.object(header + [("choices", .array([choice]))]).text)
    }
}
