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
        let clientWantsUsage = call.body["stream_options"]["include_usage"].bool ?? false
        self.clientWantsUsage = clientWantsUsage
        stripUsageChunk = call.stream && endpoint.format == .openai && channel.type == .openai && endpoint != .embeddings && !clientWantsUsage
        switch (endpoint.format, channel.type) {
        case (.openai, .openai):
            translate = .none
            path = endpoint.rawValue
            var needsRewrite = upstreamModel != call.model
            if call.stream, endpoint != .embeddings, !clientWantsUsage { needsRewrite = true }
            if needsRewrite {
                var body = call.body
                body["model"] = .string(upstreamModel)
                if call.stream, endpoint != .embeddings {
                    var options = body["stream_options"]
                    if options.object == nil { options = .object([]) }
                    options["include_usage"] = .bool(true)
                    body["stream_options"] = options
                }
                self.body = ByteBuffer(bytes: body.serialized())
            } else {
                // Untouched: the client's bytes go up as they came.
                self.body = call.request.body
            }
        case (.anthropic, .anthropic):
            translate = .none
            path = "/v1/messages"
            if upstreamModel != call.model {
                var body = call.body
                body["model"] = .string(upstreamModel)
                self.body = ByteBuffer(bytes: body.serialized())
            } else {
                self.body = call.request.body
            }
        case (.anthropic, .openai):
            translate = .anthropicOverOpenAI
            path = "/v1/chat/completions"
            var body = try Translation.anthropicRequestToOpenAI(call.body)
            body["model"] = .string(upstreamModel)
            self.body = ByteBuffer(bytes: body.serialized())
        case (.openai, .anthropic):
            guard endpoint == .chatCompletions else {
                throw RelayError.invalidRequest("\(endpoint.rawValue) is not available on Anthropic channels")
            }
            translate = .openAIOverAnthropic
            path = "/v1/messages"
            var body = try Translation.openAIRequestToAnthropic(call.body, defaultMaxTokens: call.price.maxOutputTokens)
            body["model"] = .string(upstreamModel)
            self.body = ByteBuffer(bytes: body.serialized())
        }
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
