import NIOCore
import SluiceCore
import SluiceStore

/// How one call goes to one channel: the upstream path and body, and how answers come back in the caller's format.
struct UpstreamPlan: Sendable {
    /// Caller and upstream speak different formats.
    enum Translate: Sendable {
        case none
        /// Caller speaks Anthropic, the channel OpenAI.
        case anthropicOverOpenAI
        /// Caller speaks OpenAI, the channel Anthropic.
        case openAIOverAnthropic
    }

    let path: String
    let body: ByteBuffer
    let translate: Translate
    /// The model name the caller sent (answers carry the upstream's, as providers do, unless translated).
    let clientModel: String
    /// Whether the caller asked for usage in its stream (OpenAI `stream_options.include_usage`).
    let clientWantsUsage: Bool
    /// The caller's format.
    let callerFormat: RelayFormat
    /// Sluice asked the upstream for a usage chunk the caller did not ask for: it is read, not forwarded.
    let stripUsageChunk: Bool

    init(call: RelayEngine.Admitted, channel: Channel) throws(RelayError) {
        let endpoint = call.request.endpoint
        let upstreamModel = channel.upstreamModel(call.model)
        clientModel = call.model
        callerFormat = endpoint.format
        let clientWantsUsage = call.summary.includeUsage ?? false
        self.clientWantsUsage = clientWantsUsage
        stripUsageChunk = call.stream && endpoint.format == .openai && channel.type == .openai && endpoint != .embeddings && !clientWantsUsage
        switch (endpoint.format, channel.type) {
        case (.openai, .openai):
            translate = .none
            path = endpoint.rawValue
            let askForUsage = call.stream && endpoint != .embeddings && !clientWantsUsage
            if let edited = Self.edit(call, model: upstreamModel, addUsageOption: askForUsage) {
                self.body = edited
            } else {
                var body = try call.parsedBody()
                body["model"] = .string(upstreamModel)
                if askForUsage {
                    var options = body["stream_options"]
                    if options.object == nil { options = .object([]) }
                    options["include_usage"] = .bool(true)
                    body["stream_options"] = options
                }
                self.body = ByteBuffer(bytes: body.serialized())
            }
        case (.anthropic, .anthropic):
            translate = .none
            path = "/v1/messages"
            self.body = Self.edit(call, model: upstreamModel, addUsageOption: false) ?? call.request.body
        case (.anthropic, .openai):
            translate = .anthropicOverOpenAI
            path = "/v1/chat/completions"
            var body = try Translation.anthropicRequestToOpenAI(try call.parsedBody())
            body["model"] = .string(upstreamModel)
            self.body = ByteBuffer(bytes: body.serialized())
        case (.openai, .anthropic):
            guard endpoint == .chatCompletions else {
                throw RelayError.invalidRequest("\(endpoint.rawValue) is not available on Anthropic channels")
            }
            translate = .openAIOverAnthropic
            path = "/v1/messages"
            var body = try Translation.openAIRequestToAnthropic(try call.parsedBody(), defaultMaxTokens: call.price.maxOutputTokens)
            body["model"] = .string(upstreamModel)
            self.body = ByteBuffer(bytes: body.serialized())
        }
    }

    /// The caller's body with the model renamed and `stream_options.include_usage` added, edited as bytes: the
    /// caller's bytes go up untouched when neither is needed. Nil when the edit needs the tree (the caller sent
    /// `stream_options` without `include_usage: true`).
    static func edit(_ call: RelayEngine.Admitted, model: String, addUsageOption: Bool) -> ByteBuffer? {
        edit(call.request.body, summary: call.summary, model: model, addUsageOption: addUsageOption)
    }

    static func edit(_ original: ByteBuffer, summary: RequestSummary, model: String, addUsageOption: Bool) -> ByteBuffer? {
        let rename = model != summary.model
        guard rename || addUsageOption else { return original }
        if addUsageOption, summary.hasStreamOptions { return nil }
        guard let modelRange = summary.modelRange else { return nil }
        var out = ByteBuffer()
        out.reserveCapacity(original.readableBytes + model.utf8.count + 48)
        var cut = original
        let brace = summary.objectStart + 1
        out.writeImmutableBuffer(cut.readSlice(length: brace)!)
        if addUsageOption { out.writeStaticString("\"stream_options\":{\"include_usage\":true},") }
        if rename {
            out.writeImmutableBuffer(cut.readSlice(length: modelRange.lowerBound - brace)!)
            var name: [UInt8] = []
            JSON.writeString(model, to: &name)
            out.writeBytes(name)
            cut.moveReaderIndex(forwardBy: modelRange.count)
        }
        out.writeImmutableBuffer(cut)
        return out
    }

    /// A whole answer in the caller's format (the upstream's bytes untouched when no translation is needed).
    func translateResponse(_ parsed: JSON, original: ByteBuffer) -> ByteBuffer {
        switch translate {
        case .none: return original
        case .anthropicOverOpenAI: return ByteBuffer(bytes: Translation.openAIResponseToAnthropic(parsed, model: clientModel).serialized())
        case .openAIOverAnthropic: return ByteBuffer(bytes: Translation.anthropicResponseToOpenAI(parsed, model: clientModel).serialized())
        }
    }

    /// An upstream error body in the caller's format.
    func translateError(_ body: ByteBuffer, status: Int) -> ByteBuffer {
        guard let parsed = try? JSON.parse(body.readableBytesView) else {
            let message = String(buffer: body).prefix(500)
            let error = RelayError(status: status, code: "upstream_error", type: "invalid_request_error", message: "The upstream refused the request: \(message)")
            return RelayErrorBody.render(error, format: callerFormat)
        }
        switch translate {
        case .none: return body
        case .anthropicOverOpenAI: return ByteBuffer(bytes: Translation.openAIErrorToAnthropic(parsed, status: status).serialized())
        case .openAIOverAnthropic: return ByteBuffer(bytes: Translation.anthropicErrorToOpenAI(parsed, status: status).serialized())
        }
    }
}
