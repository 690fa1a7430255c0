import SluiceCore

extension Translation {
    /// Translates an Anthropic Messages request into an OpenAI Chat Completions request, for a caller of
    /// `POST /v1/messages` routed to an `openai` channel.
    ///
    /// - `model` is kept as given; `system` (a string or text blocks) becomes a leading system message.
    /// - User content blocks become OpenAI parts: `text`, `image` (base64 → `data:` URL, or `url`), `document`
    ///   (base64 → `file` part, plain text → text part). `tool_result` blocks become `tool` messages placed before the
    ///   rest of the user turn (a result marked `is_error` reads "Error: …"); images inside a tool result follow in a
    ///   user message, since tool messages carry text only.
    /// - Assistant `text` blocks become `content`, `tool_use` blocks become `tool_calls`; `thinking` blocks are dropped.
    /// - `tools` become functions (server tools without an `input_schema` are left out); `tool_choice` auto/any/tool/none
    ///   becomes `"auto"`/`"required"`/a named function/`"none"`, and `disable_parallel_tool_use` becomes
    ///   `parallel_tool_calls: false`.
    /// - `max_tokens`, `temperature`, `top_p` are copied; `stop_sequences` becomes `stop`; `metadata.user_id` becomes
    ///   `user`; `stream` is copied, and a streamed request asks for `stream_options.include_usage` so that the final
    ///   usage can be reported and charged.
    ///
    /// - Throws: ``RelayError/invalidRequest(_:)`` when the body is not an object, has no `messages` array, or a message
    ///   or block has the wrong shape.
    public static func anthropicRequestToOpenAI(_ body: JSON) throws(RelayError) -> JSON {
        guard body.object != nil else { throw .invalidRequest("The request body must be a JSON object") }
        guard let messages = body["messages"].array else { throw .invalidRequest("'messages' must be an array of messages") }

        var chat: [JSON] = []
        switch body["system"] {
        case .null: break
        case .string(let text):
            if !text.isEmpty { chat.append(.object([("role", .string("system")), ("content", .string(text))])) }
        case .array(let blocks):
            var texts: [String] = []
            for (index, block) in blocks.enumerated() {
                guard let text = block["text"].string else { throw .invalidRequest("'system[\(index)]' must be a text block") }
                if !text.isEmpty { texts.append(text) }
            }
            if !texts.isEmpty { chat.append(.object([("role", .string("system")), ("content", .string(texts.joined(separator: "\n")))])) }
        default:
            throw .invalidRequest("'system' must be a string or an array of text blocks")
        }

        for (index, message) in messages.enumerated() {
            guard message.object != nil else { throw .invalidRequest("'messages[\(index)]' must be an object") }
            switch message["role"].string {
            case "user": chat += try userMessagesForOpenAI(message["content"], at: index)
            case "assistant": chat.append(try assistantMessageForOpenAI(message["content"], at: index))
            default: throw .invalidRequest("'messages[\(index)].role' must be \"user\" or \"assistant\"")
            }
        }

        var out: [(String, JSON)] = []
        if !body["model"].isNull { out.append(("model", body["model"])) }
        out.append(("messages", .array(chat)))
        if let maxTokens = body["max_tokens"].int { out.append(("max_tokens", .int(Int64(maxTokens)))) }
        for key in ["temperature", "top_p"] where body[key].double != nil { out.append((key, body[key])) }
        if let stops = body["stop_sequences"].array, !stops.isEmpty { out.append(("stop", .array(stops))) }

        let tools = try toolsForOpenAI(body["tools"])
        if !tools.isEmpty {
            out.append(("tools", .array(tools)))
            if let choice = try toolChoiceForOpenAI(body["tool_choice"]) { out.append(("tool_choice", choice)) }
            if body["tool_choice"]["disable_parallel_tool_use"].bool == true { out.append(("parallel_tool_calls", .bool(false))) }
        }
        if let user = body["metadata"]["user_id"].string { out.append(("user", .string(user))) }
        if let stream = body["stream"].bool {
            out.append(("stream", .bool(stream)))
            if stream { out.append(("stream_options", .object([("include_usage", .bool(true))]))) }
        }
        return .object(out)
    }

    /// The OpenAI messages for one Anthropic user turn: tool messages first, then the user message.
    static func userMessagesForOpenAI(_ content: JSON, at index: Int) throws(RelayError) -> [JSON] {
        if case .string(let text) = content { return [.object([("role", .string("user")), ("content", .string(text))])] }
        guard let blocks = content.array else {
            throw .invalidRequest("'messages[\(index)].content' must be a string or an array of content blocks")
        }
        var toolMessages: [JSON] = []
        var parts: [JSON] = []
        var toolImages: [JSON] = []
        for (blockIndex, block) in blocks.enumerated() {
            let path = "messages[\(index)].content[\(blockIndex)]"
            guard block.object != nil else { throw .invalidRequest("'\(path)' must be an object") }
            switch block["type"].string {
            case "text":
                guard let text = block["text"].string else { throw .invalidRequest("'\(path).text' must be a string") }
                parts.append(.object([("type", .string("text")), ("text", .string(text))]))
            case "image":
                parts.append(try imagePartForOpenAI(block, path: path))
            case "document":
                parts.append(try documentPartForOpenAI(block, path: path))
            case "tool_result":
                guard let id = block["tool_use_id"].string else { throw .invalidRequest("'\(path).tool_use_id' must be a string") }
                var text: String
                switch block["content"] {
                case .null: text = ""
                case .string(let value): text = value
                case .array(let inner):
                    text = anthropicText(block["content"], separator: "\n")
                    for (innerIndex, item) in inner.enumerated() where item["type"].string == "image" {
                        toolImages.append(try imagePartForOpenAI(item, path: "\(path).content[\(innerIndex)]"))
                    }
                default: throw .invalidRequest("'\(path).content' must be a string or an array of content blocks")
                }
                if block["is_error"].bool == true, !text.hasPrefix("Error") { text = text.isEmpty ? "Error" : "Error: \(text)" }
                toolMessages.append(.object([("role", .string("tool")), ("tool_call_id", .string(id)), ("content", .string(text))]))
            default:
                // thinking, tool_use in a user turn, server tool results: nothing OpenAI can take.
                continue
            }
        }
        parts = toolImages + parts
        var result = toolMessages
        if parts.count == 1, parts[0]["type"].string == "text" {
            result.append(.object([("role", .string("user")), ("content", parts[0]["text"])]))
        } else if !parts.isEmpty || toolMessages.isEmpty {
            result.append(.object([("role", .string("user")), ("content", .array(parts))]))
        }
        return result
    }

    /// The OpenAI message for one Anthropic assistant turn.
    static func assistantMessageForOpenAI(_ content: JSON, at index: Int) throws(RelayError) -> JSON {
        if case .string(let text) = content { return .object([("role", .string("assistant")), ("content", .string(text))]) }
        guard let blocks = content.array else {
            throw .invalidRequest("'messages[\(index)].content' must be a string or an array of content blocks")
        }
        var texts: [String] = []
        var calls: [JSON] = []
        for (blockIndex, block) in blocks.enumerated() {
            let path = "messages[\(index)].content[\(blockIndex)]"
            guard block.object != nil else { throw .invalidRequest("'\(path)' must be an object") }
            switch block["type"].string {
            case "text":
                if let text = block["text"].string, !text.isEmpty { texts.append(text) }
            case "tool_use":
                guard let id = block["id"].string, let name = block["name"].string else {
                    throw .invalidRequest("'\(path)' must have a string id and name")
                }
                calls.append(.object([
                    ("id", .string(id)),
                    ("type", .string("function")),
                    ("function", .object([("name", .string(name)), ("arguments", .string(toolArguments(fromInput: block["input"])))])),
                ]))
            default:
                continue
            }
        }
        var message: [(String, JSON)] = [("role", .string("assistant"))]
        if texts.isEmpty, !calls.isEmpty {
            message.append(("content", .null))
        } else {
            message.append(("content", .string(texts.joined(separator: "\n"))))
        }
        if !calls.isEmpty { message.append(("tool_calls", .array(calls))) }
        return .object(message)
    }

    /// An Anthropic image block as an OpenAI `image_url` part.
    static func imagePartForOpenAI(_ block: JSON, path: String) throws(RelayError) -> JSON {
        let source = block["source"]
        let url: String
        switch source["type"].string {
        case "base64":
            guard let mediaType = source["media_type"].string, let data = source["data"].string else {
                throw .invalidRequest("'\(path).source' must have a media_type and data")
            }
            url = "data:\(mediaType);base64,\(data)"
        case "url":
            guard let value = source["url"].string else { throw .invalidRequest("'\(path).source.url' must be a string") }
            url = value
        default:
            throw .invalidRequest("'\(path).source.type' must be \"base64\" or \"url\" for this model")
        }
        return .object([("type", .string("image_url")), ("image_url", .object([("url", .string(url))]))])
    }

    /// An Anthropic document block as an OpenAI `file` part (base64 PDF) or text part (plain-text source).
    static func documentPartForOpenAI(_ block: JSON, path: String) throws(RelayError) -> JSON {
        let source = block["source"]
        switch source["type"].string {
        case "base64":
            guard let data = source["data"].string else { throw .invalidRequest("'\(path).source.data' must be a string") }
            let mediaType = source["media_type"].string ?? "application/pdf"
            return .object([
                ("type", .string("file")),
                ("file", .object([
                    ("filename", .string(block["title"].string ?? "document.pdf")),
                    ("file_data", .string("data:\(mediaType);base64,\(data)")),
                ])),
            ])
        case "text":
            guard let data = source["data"].string else { throw .invalidRequest("'\(path).source.data' must be a string") }
            return .object([("type", .string("text")), ("text", .string(data))])
        default:
            throw .invalidRequest("'\(path).source.type' must be \"base64\" or \"text\" for this model")
        }
    }

    /// Anthropic tools as OpenAI function tools.
    static func toolsForOpenAI(_ tools: JSON) throws(RelayError) -> [JSON] {
        if tools.isNull { return [] }
        guard let list = tools.array else { throw .invalidRequest("'tools' must be an array") }
        var result: [JSON] = []
        for (index, tool) in list.enumerated() {
            guard let name = tool["name"].string else { throw .invalidRequest("'tools[\(index)].name' must be a string") }
            let schema = tool["input_schema"]
            if schema.isNull, let type = tool["type"].string, type != "custom" { continue }  // a server tool
            let function = object([
                ("name", .string(name)),
                ("description", tool["description"].string.map(JSON.string)),
                ("parameters", schema.isNull ? .object([("type", .string("object")), ("properties", .object([]))]) : schema),
            ])
            result.append(.object([("type", .string("function")), ("function", function)]))
        }
        return result
    }

    /// An Anthropic `tool_choice` as an OpenAI `tool_choice`.
    static func toolChoiceForOpenAI(_ choice: JSON) throws(RelayError) -> JSON? {
        if choice.isNull { return nil }
        switch choice["type"].string {
        case "auto": return .string("auto")
        case "any": return .string("required")
        case "none": return .string("none")
        case "tool":
            guard let name = choice["name"].string else { throw .invalidRequest("'tool_choice.name' must be a string") }
            return .object([("type", .string("function")), ("function", .object([("name", .string(name))]))])
        default:
            throw .invalidRequest("'tool_choice.type' must be \"auto\", \"any\", \"tool\" or \"none\"")
        }
    }
}
