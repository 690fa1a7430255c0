import NIOCore
import SluiceCore
import SluiceStore

/// The relay's endpoints.
public enum RelayEndpoint: String, Sendable, CaseIterable {
    case chatCompletions = "/v1/chat/completions"
    case completions = "/v1/completions"
    case embeddings = "/v1/embeddings"
    case messages = "/v1/messages"

    /// The format the caller speaks (and gets errors in).
    public var format: RelayFormat { self == .messages ? .anthropic : .openai }
}

/// OpenAI or Anthropic wire format.
public enum RelayFormat: Sendable {
    case openai, anthropic
}

/// What the HTTP layer knows of a relay call.
public struct RelayRequest: Sendable {
    public let endpoint: RelayEndpoint
    /// The key from `Authorization: Bearer` or `x-api-key`.
    public let key: String?
    /// `key`'s lookup digest, when the connection already computed it for an earlier call with the same key.
    public let keyDigest: KeyDigest?
    /// The client address (after trusted proxies).
    public let clientIP: IPAddress?
    /// `clientIP` as written in the call log ("" when unknown).
    public let clientAddress: String
    public let body: ByteBuffer
    public let requestId: String
    /// `anthropic-version` and `anthropic-beta` of the caller, passed to Anthropic channels.
    public let anthropicHeaders: [(String, String)]
    /// The caller's headers that go on to Anthropic channels.
    public static let anthropicHeaderNames = ["anthropic-version", "anthropic-beta"]

    /// - Parameter clientAddress: `clientIP` already written out (a connection's peer is written once, not per call).
    public init(endpoint: RelayEndpoint, key: String?, clientIP: IPAddress?, clientAddress: String? = nil, body: ByteBuffer,
                requestId: String, anthropicHeaders: [(String, String)] = [], keyDigest: KeyDigest? = nil) {
        self.endpoint = endpoint
        self.key = key
        self.keyDigest = keyDigest
        self.clientIP = clientIP
        self.clientAddress = clientAddress ?? clientIP?.description ?? ""
        self.body = body
        self.requestId = requestId
        self.anthropicHeaders = anthropicHeaders
    }
}

/// The relay's answer: complete, or a stream the HTTP layer pumps to the client.
public enum RelayResponse: Sendable {
    case complete(status: Int, headers: [(String, String)], body: ByteBuffer)
    case stream(status: Int, headers: [(String, String)], StreamRelay)
}

/// Token counts of a call.
public struct Usage: Sendable, Equatable {
    public var prompt: Int
    public var completion: Int

    public init(prompt: Int, completion: Int) {
        self.prompt = prompt
        self.completion = completion
    }

    /// Usage in an OpenAI or Anthropic body (`usage.prompt_tokens`/`completion_tokens` or `input_tokens`/`output_tokens`).
    public static func from(_ body: JSON) -> Usage? {
        let usage = body["usage"]
        if let prompt = usage["prompt_tokens"].int { return Usage(prompt: prompt, completion: usage["completion_tokens"].int ?? 0) }
        if let input = usage["input_tokens"].int {
            let cached = (usage["cache_read_input_tokens"].int ?? 0) + (usage["cache_creation_input_tokens"].int ?? 0)
            return Usage(prompt: input + cached, completion: usage["output_tokens"].int ?? 0)
        }
        return nil
    }
}

/// Renders relay errors in the caller's format.
public enum RelayErrorBody {
    public static func render(_ error: RelayError, format: RelayFormat) -> ByteBuffer {
        let body: JSON
        switch format {
        case .openai:
            body = .object([("error", .object([("message", .string(error.message)), ("type", .string(error.type)),
                                               ("param", .null), ("code", .string(error.code))]))])
        case .anthropic:
            body = .object([("type", .string("error")),
                            ("error", .object([("type", .string(anthropicType(error))), ("message", .string(error.message)),
                                               ("code", .string(error.code))]))])
        }
        return ByteBuffer(bytes: body.serialized())
    }

    static func anthropicType(_ error: RelayError) -> String {
        switch error.status {
        case 400: return "invalid_request_error"
        case 401: return "authentication_error"
        case 402: return "billing_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 413: return "request_too_large"
        case 429: return "rate_limit_error"
        case 504: return "timeout_error"
        case 503, 529: return "overloaded_error"
        default: return "api_error"
        }
    }
}

extension SluiceCore.Channel {
    /// The channel's limits for the upstream client.
    var upstreamTimeouts: UpstreamTimeouts {
        UpstreamTimeouts(connectMs: connectTimeoutMs, firstByteMs: firstByteTimeoutMs, idleMs: idleTimeoutMs)
    }
}
