import SluiceCore

extension Translation {
    /// Translates an OpenAI Chat Completions request into an Anthropic Messages request, for a caller of
    /// `POST /v1/chat/completions` routed to an `anthropic` channel.
    ///
    /// - `system` and `developer` messages, wherever they appear, become `system` (a string, or text blocks when
    ///   there are several).
    /// - `user`, `assistant` and `tool` messages become Anthropic messages with content blocks; consecutive messages of
    ///   the same role are merged (tool results are user turns, placed before other user content). A turn that is a
    ///   single text block is sent as a plain string; empty text is dropped, as Anthropic refuses empty text blocks.
    /// - `image_url` parts: `data:` URLs become base64 sources, http(s) URLs become url sources. A `file` part with
    ///   `file_data` becomes a base64 document.
    /// - Assistant `tool_calls` become `tool_use` blocks (arguments parsed into `input`, `{}` when not a JSON object).
    /// - Function `tools` become Anthropic tools; `tool_choice` `"auto"`/`"required"`/`"none"`/a named function becomes
    ///   auto/any/none/tool, and `parallel_tool_calls: false` becomes `disable_parallel_tool_use`.
    /// - `max_completion_tokens`, else `max_tokens`, else `defaultMaxTokens` becomes `max_tokens` (Anthropic requires it).
    /// - `stop` (a string or an array) becomes `stop_sequences`; `temperature` is clamped to Anthropic's 0…1;
    ///   `top_p` and `stream` are copied; `user` becomes `metadata.user_id`.
    ///
    /// - Throws: ``RelayError/invalidRequest(_:)`` when the body is not an object, has no `messages` array, a message has
    ///   the wrong shape, asks for `n` > 1, or carries input Anthropic cannot take (audio, uploaded file ids, image URLs
    ///   that are neither `data:` nor http(s)).
    public static func openAIRequestToAnthropic(_ body: JSON, defaultMaxTokens: Int) throws(RelayError) -> JSON {
        guard body.object != nil else { throw .invalidRequest("The request body must be a JSON object") }
        guard let messages = body["messages"].array else { throw .invalidRequest("'messages' must be an array of messages") }
        if let n = body["n"].int, n > 1 { throw .invalidRequest("'n' greater than 1 is not supported for this model") }

        var system: [String] = []
        var turns: [(role: String, blocks: [JSON])] = []
        for (index, message) in messages.enumerated() {
            guard message.object != nil else { throw .invalidRequest("'messages[\(index)]' must be an object") }
            let role: String
            let blocks: [JSON]
            switch message["role"].string {
            case "system", "developer":
                let text = try textOfOpenAIContent(message["content"], path: "messages[\(index)].content")
                if !text.isEmpty { system.append(text) }
                continue
            case "user":
                role = "user"
                blocks = try userBlocksForAnthropic(message["content"], at: index)
            case "assistant":
                role = "assistant"
                blocks = try assistantBlocksForAnthropic(message, at: index)
            case "tool":
                guard let id = message["tool_call_id"].string else {
                    throw .invalidRequest("'messages[\(index)].tool_call_id' must be a string")
                }
                let text = try textOfOpenAIContent(message["content"], path: "messages[\(index)].content")
                role = "user"
                blocks = [.object([("type", .string("tool_result")), ("tool_use_id", .string(id)), ("content", .string(text))])]
            default:
                throw .invalidRequest("'messages[\(index)].role' must be \"system\", \"developer\", \"user\", \"assistant\" or \"tool\"")
            }
            if blocks.isEmpty { continue }
            if let last = turns.last, last.role == role {
                turns[turns.count - 1].blocks += blocks
            } else {
                turns.append((role, blocks))
            }
        }

        let anthropicMessages: [JSON] = turns.map { turn in
            var blocks = turn.blocks
            if turn.role == "user" {
                // Tool results must open the user turn that answers the tool calls.
                blocks = blocks.filter { $0["type"].string == "tool_result" } + blocks.filter { $0["type"].string != "tool_result" }
            }
            let content: JSON = blocks.count == 1 && blocks[0]["type"].string == "text" ? blocks[0]["text"] : .array(blocks)
            return .object([("role", .string(turn.role)), ("content", content)])
        }

        var out: [(String, JSON)] = []
        if !body["model"].isNull { out.append(("model", body["model"])) }
        if system.count == 1 {
            out.append(("system", .string(system[0])))
        } else if system.count > 1 {
            out.append(("system", .array(system.map { .object([("type", .string("text")), ("text", .string($0))]) })))
        }
        out.append(("messages", .array(anthropicMessages)))
        let maxTokens = body["max_completion_tokens"].int ?? body["max_tokens"].int ?? defaultMaxTokens
        out.append(("max_tokens", .int(Int64(maxTokens))))

        var stops: [String] = []
        switch body["stop"] {
        case .string(let stop): stops = [stop]
        case .array(let list): stops = list.compactMap(\.string)
        default: break
        }
        stops = stops.filter { !$0.allSatisfy(\.isWhitespace) }
        if !stops.isEmpty { out.append(("stop_sequences", .array(stops.map(JSON.string)))) }

        if let temperature = body["temperature"].double { out.append(("temperature", .double(min(max(temperature, 0), 1)))) }
        if body["top_p"].double != nil { out.append(("top_p", body["top_p"])) }

        let tools = try toolsForAnthropic(body["tools"])
        if !tools.isEmpty {
            out.append(("tools", .array(tools)))
            var choice = try toolChoiceForAnthropic(body["tool_choice"])
            if body["parallel_tool_calls"].bool == false, choice?["type"].string != "none" {
                var adjusted = choice ?? .object([("type", .string("auto"))])
                adjusted["disable_parallel_tool_use"] = .bool(true)
                choice = adjusted
            }
            if let choice { out.append(("tool_choice", choice)) }
        }
        if let user = body["user"].string { out.append(("metadata", .object([("user_id", .string(user))]))) }
        if let stream = body["stream"].bool { out.append(("stream", .bool(stream))) }
        return .object(out)
    }

    /// The text of system, developer or tool message content (a string or text parts).
    static func textOfOpenAIContent(_ content: JSON, path: String) throws(RelayError) -> String {
        switch content {
        case .null: return ""
        case .string(let text): return text
        case .array(let parts):
            var texts: [String] = []
            for (index, part) in parts.enumerated() {
                guard let text = part["text"].string else { throw .invalidRequest("'\(path)[\(index)]' must be a text part") }
                texts.append(text)
            }
            return texts.joined(separator: "\n")
        default:
            throw .invalidRequest("'\(path)' must be a string or an array of parts")
        }
    }

    /// Anthropic content blocks for an OpenAI user message.
    static func userBlocksForAnthropic(_ content: JSON, at index: Int) throws(RelayError) -> [JSON] {
        switch content {
        case .string(let text):
            return text.isEmpty ? [] : [textBlock(text)]
        case .array(let parts):
            var blocks: [JSON] = []
            for (partIndex, part) in parts.enumerated() {
                let path = "messages[\(index)].content[\(partIndex)]"
                switch part["type"].string {
                case "text":
                    guard let text = part["text"].string else { throw .invalidRequest("'\(path).text' must be a string") }
                    if !text.isEmpty { blocks.append(textBlock(text)) }
                case "image_url":
                    guard let url = part["image_url"]["url"].string ?? part["image_url"].string else {
                        throw .invalidRequest("'\(path).image_url.url' must be a string")
                    }
                    blocks.append(try imageBlockForAnthropic(url: url, path: path))
                case "file":
                    guard let data = part["file"]["file_data"].string, let source = base64Source(dataURL: data) else {
                        throw .invalidRequest("'\(path).file' must carry file_data as a base64 data: URL for this model")
                    }
                    blocks.append(.object([("type", .string("document")), ("source", source)]))
                case "input_audio":
                    throw .invalidRequest("'\(path)': audio input is not supported for this model")
                default:
                    throw .invalidRequest("'\(path).type' must be \"text\", \"image_url\" or \"file\"")
                }
            }
            return blocks
        case .null:
            return []
        default:
            throw .invalidRequest("'messages[\(index)].content' must be a string or an array of parts")
        }
    }

    /// Anthropic content blocks for an OpenAI assistant message: its text, then its tool calls.
    static func assistantBlocksForAnthropic(_ message: JSON, at index: Int) throws(RelayError) -> [JSON] {
        var blocks: [JSON] = []
        switch message["content"] {
        case .null: break
        case .string, .array:
            let text = openAIText(message["content"])
            if !text.isEmpty { blocks.append(textBlock(text)) }
        default:
            throw .invalidRequest("'messages[\(index)].content' must be a string or an array of parts")
        }
        if let calls = message["tool_calls"].array {
            for (callIndex, call) in calls.enumerated() {
                guard let id = call["id"].string, let name = call["function"]["name"].string else {
                    throw .invalidRequest("'messages[\(index)].tool_calls[\(callIndex)]' must have an id and a function name")
                }
                blocks.append(.object([
                    ("type", .string("tool_use")),
                    ("id", .string(id)),
                    ("name", .string(name)),
                    ("input", toolInput(fromArguments: call["function"]["arguments"])),
                ]))
            }
        }
        return blocks
    }

    static func textBlock(_ text: String) -> JSON {
        .object([("type", .string("text")), ("text", .string(text))])
    }

    /// A `data:<media type>;base64,<data>` URL as an Anthropic base64 source.
    static func base64Source(dataURL: String) -> JSON? {
        guard dataURL.hasPrefix("data:"), let comma = dataURL.firstIndex(of: ",") else { return nil }
        let header = dataURL[dataURL.index(dataURL.startIndex, offsetBy: 5)..<comma]
        guard header.hasSuffix(";base64") else { return nil }
        let mediaType = header.dropLast(";base64".count)
        guard !mediaType.isEmpty else { return nil }
        return .object([
            ("type", .string("base64")),
            ("media_type", .string(String(mediaType))),
            ("data", .string(String(dataURL[dataURL.index(after: comma)...]))),
        ])
    }

    /// An OpenAI image URL as an Anthropic image block.
    static func imageBlockForAnthropic(url: String, path: String) throws(RelayError) -> JSON {
        let source: JSON
        if url.hasPrefix("data:") {
            guard let base64 = base64Source(dataURL: url) else {
                throw .invalidRequest("'\(path).image_url.url' must be a base64 data: URL or an http(s) URL")
            }
            source = base64
        } else if url.hasPrefix("https://") || url.hasPrefix("http://") {
            source = .object([("type", .string("url")), ("url", .string(url))])
        } else {
            throw .invalidRequest("'\(path).image_url.url' must be a base64 data: URL or an http(s) URL")
        }
        return .object([("type", .string("image")), ("source", source)])
    }

    /// OpenAI function tools as Anthropic tools.
    static func toolsForAnthropic(_ tools: JSON) throws(RelayError) -> [JSON] {
        if tools.isNull { return [] }
        guard let list = tools.array else { throw .invalidRequest("'tools' must be an array") }
        var result: [JSON] = []
        for (index, tool) in list.enumerated() {
            guard tool["type"].string == nil || tool["type"].string == "function" else { continue }
            let function = tool["function"]
            guard let name = function["name"].string else { throw .invalidRequest("'tools[\(index)].function.name' must be a string") }
            let schema = function["parameters"]
            result.append(object([
                ("name", .string(name)),
                ("description", function["description"].string.map(JSON.string)),
                ("input_schema", schema.object == nil ? .object([("type", .string("object")), ("properties", .object([]))]) : schema),
            ]))
        }
        return result
    }

    /// An OpenAI `tool_choice` as an Anthropic `tool_choice`.
    static func toolChoiceForAnthropic(_ choice: JSON) throws(RelayError) -> JSON? {
        switch choice {
        case .null: return nil
        case .string("auto"): return .object([("type", .string("auto"))])
        case .string("required"): return .object([("type", .string("any"))])
        case .string("none"): return .object([("type", .string("none"))])
        default:
            if let name = choice["function"]["name"].string {
                return .object([("type", .string("tool")), ("name", .string(name))])
            }
            throw .invalidRequest("'tool_choice' must be \"auto\", \"required\", \"none\" or a named function")
        }
    }
}
