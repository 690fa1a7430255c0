import SluiceCore

extension Translation {
    /// Translates an OpenAI `chat.completion` into an Anthropic `message`, for a caller of `POST /v1/messages` answered
    /// by an `openai` channel.
    ///
    /// The first choice becomes the message: reasoning text (`reasoning_content`, as some OpenAI-compatible providers
    /// send) becomes a `thinking` block, `content` (or a `refusal`) a `text` block, `tool_calls` become `tool_use` blocks.
    /// `finish_reason` maps to `stop_reason` (stop → end_turn, length → max_tokens, tool_calls → tool_use,
    /// content_filter → refusal). `usage` becomes `input_tokens`/`output_tokens`; cached prompt tokens are reported as
    /// `cache_read_input_tokens` and left out of `input_tokens`, as Anthropic counts them.
    ///
    /// - Parameters:
    ///   - body: The upstream response body.
    ///   - model: The model name the caller sees.
    public static func openAIResponseToAnthropic(_ body: JSON, model: String) -> JSON {
        let choice = body["choices"][0]
        let message = choice["message"]
        var content: [JSON] = []
        if let reasoning = message["reasoning_content"].string ?? message["reasoning"].string, !reasoning.isEmpty {
            content.append(.object([("type", .string("thinking")), ("thinking", .string(reasoning)), ("signature", .string(""))]))
        }
        var text = openAIText(message["content"])
        if text.isEmpty, let refusal = message["refusal"].string { text = refusal }
        if !text.isEmpty { content.append(textBlock(text)) }
        let calls = message["tool_calls"].array ?? []
        for call in calls {
            content.append(.object([
                ("type", .string("tool_use")),
                ("id", .string(call["id"].string ?? newID("toolu_"))),
                ("name", .string(call["function"]["name"].string ?? "")),
                ("input", toolInput(fromArguments: call["function"]["arguments"])),
            ]))
        }
        let stopReason = anthropicStopReason(choice["finish_reason"].string, sawToolCall: !calls.isEmpty)
        return .object([
            ("id", .string(body["id"].string ?? newID("msg_"))),
            ("type", .string("message")),
            ("role", .string("assistant")),
            ("model", .string(model)),
            ("content", .array(content)),
            ("stop_reason", .string(stopReason)),
            ("stop_sequence", .null),
            ("usage", AnthropicUsage(openAI: body["usage"]).anthropicJSON),
        ])
    }

    /// Translates an Anthropic `message` into an OpenAI `chat.completion`, for a caller of `POST /v1/chat/completions`
    /// answered by an `anthropic` channel.
    ///
    /// Text blocks are joined into `choices[0].message.content` (`null` when the answer is only tool calls), `tool_use`
    /// blocks become `tool_calls`, `thinking` blocks become `reasoning_content`. `stop_reason` maps back to
    /// `finish_reason` (end_turn/stop_sequence → stop, max_tokens → length, tool_use → tool_calls, refusal →
    /// content_filter). `usage` becomes `prompt_tokens` (input plus cache reads and writes), `completion_tokens` and
    /// `total_tokens`, with cache reads also under `prompt_tokens_details.cached_tokens`.
    ///
    /// - Parameters:
    ///   - body: The upstream response body.
    ///   - model: The model name the caller sees.
    public static func anthropicResponseToOpenAI(_ body: JSON, model: String) -> JSON {
        let blocks = body["content"].array ?? []
        var text = ""
        var reasoning = ""
        var calls: [JSON] = []
        for block in blocks {
            switch block["type"].string {
            case "text": text += block["text"].string ?? ""
            case "thinking": reasoning += block["thinking"].string ?? ""
            case "tool_use":
                calls.append(.object([
                    ("id", .string(block["id"].string ?? newID("call_"))),
                    ("type", .string("function")),
                    ("function", .object([
                        ("name", .string(block["name"].string ?? "")),
                        ("arguments", .string(toolArguments(fromInput: block["input"]))),
                    ])),
                ]))
            default: continue
            }
        }
        var message: [(String, JSON)] = [("role", .string("assistant"))]
        message.append(("content", text.isEmpty && !calls.isEmpty ? .null : .string(text)))
        if !reasoning.isEmpty { message.append(("reasoning_content", .string(reasoning))) }
        if !calls.isEmpty { message.append(("tool_calls", .array(calls))) }
        let finishReason = openAIFinishReason(body["stop_reason"].string, sawToolCall: !calls.isEmpty)
        return .object([
            ("id", .string(body["id"].string ?? newID("chatcmpl-"))),
            ("object", .string("chat.completion")),
            ("created", .int(Int64(unixTime()))),
            ("model", .string(model)),
            ("choices", .array([.object([
                ("index", .int(0)),
                ("message", .object(message)),
                ("logprobs", .null),
                ("finish_reason", .string(finishReason)),
            ])])),
            ("usage", AnthropicUsage(anthropic: body["usage"]).openAIJSON),
        ])
    }

    // MARK: - Errors

    /// Anthropic's error type for an HTTP status, or nil outside 400...599 (an error inside a 200 stream).
    static func anthropicErrorType(status: Int) -> String? {
        switch status {
        case 400: return "invalid_request_error"
        case 401: return "authentication_error"
        case 402: return "billing_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 413: return "request_too_large"
        case 429: return "rate_limit_error"
        case 503, 529: return "overloaded_error"
        case 504: return "timeout_error"
        case 500...599: return "api_error"
        case 400...499: return "invalid_request_error"
        default: return nil
        }
    }

    /// Renders an upstream OpenAI-format error body as an Anthropic error body
    /// `{"type": "error", "error": {"type", "message"}}`.
    ///
    /// The Anthropic error type follows the upstream HTTP `status` (400 invalid_request_error, 401
    /// authentication_error, 402 billing_error, 403 permission_error, 404 not_found_error, 413 request_too_large, 429
    /// rate_limit_error, 503/529 overloaded_error, 504 timeout_error, other 5xx api_error); for any other status (such as
    /// 200, for an error inside a stream) it follows the OpenAI `type` and `code`. Bodies that are not in the OpenAI
    /// shape keep whatever message they carry.
    public static func openAIErrorToAnthropic(_ body: JSON, status: Int) -> JSON {
        let error = body["error"]
        let message = errorMessage(body, status: status)
        let type: String
        switch anthropicErrorType(status: status) {
        case let byStatus?: type = byStatus
        case nil:
            let openAIType = error["type"].string ?? ""
            let code = error["code"].string ?? ""
            if openAIType == "insufficient_quota" || code == "insufficient_quota" {
                type = "billing_error"
            } else if openAIType.contains("rate_limit") || code.contains("rate_limit") {
                type = "rate_limit_error"
            } else if openAIType == "authentication_error" || code == "invalid_api_key" {
                type = "authentication_error"
            } else if openAIType == "permission_error" {
                type = "permission_error"
            } else if openAIType == "invalid_request_error" {
                type = "invalid_request_error"
            } else {
                type = "api_error"
            }
        }
        return .object([
            ("type", .string("error")),
            ("error", .object([("type", .string(type)), ("message", .string(message))])),
        ])
    }

    /// Renders an upstream Anthropic-format error body as an OpenAI error body
    /// `{"error": {"message", "type", "code", "param"}}`.
    ///
    /// The Anthropic error type decides the OpenAI type and code (invalid_request_error → invalid_request_error,
    /// authentication_error → authentication_error/invalid_api_key, rate_limit_error →
    /// rate_limit_error/rate_limit_exceeded, billing_error → insufficient_quota, api_error and overloaded_error →
    /// server_error, ...); without one, the upstream HTTP `status` does.
    public static func anthropicErrorToOpenAI(_ body: JSON, status: Int) -> JSON {
        let message = errorMessage(body, status: status)
        let anthropicType = body["error"]["type"].string ?? anthropicErrorType(status: status) ?? "api_error"
        let type: String, code: String
        switch anthropicType {
        case "invalid_request_error": (type, code) = ("invalid_request_error", "invalid_request_error")
        case "authentication_error": (type, code) = ("authentication_error", "invalid_api_key")
        case "permission_error": (type, code) = ("permission_error", "permission_denied")
        case "not_found_error": (type, code) = ("invalid_request_error", "not_found")
        case "request_too_large": (type, code) = ("invalid_request_error", "request_too_large")
        case "rate_limit_error": (type, code) = ("rate_limit_error", "rate_limit_exceeded")
        case "billing_error": (type, code) = ("insufficient_quota", "insufficient_quota")
        case "overloaded_error": (type, code) = ("server_error", "overloaded")
        case "timeout_error": (type, code) = ("server_error", "timeout")
        default: (type, code) = ("server_error", "server_error")
        }
        return .object([
            ("error", .object([
                ("message", .string(message)),
                ("type", .string(type)),
                ("code", .string(code)),
                ("param", .null),
            ])),
        ])
    }

    /// The human message of an error body in either format, or a sentence naming the status.
    static func errorMessage(_ body: JSON, status: Int) -> String {
        let candidates: [String?] = [
            body["error"]["message"].string,
            body["error"].string,
            body["message"].string,
            body["detail"].string,
            body.string,
        ]
        for case let message? in candidates where !message.isEmpty { return message }
        return status >= 400 ? "The upstream service answered with HTTP status \(status)" : "The upstream service reported an error"
    }
}
