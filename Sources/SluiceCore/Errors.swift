/// A rejected input, with a sentence that names the field.
public struct ValidationError: Error, Sendable, Equatable {
    /// The sentence shown to the user.
    public let message: String
    /// Creates the error.
    public init(_ message: String) { self.message = message }
}

/// A failure of the management API: an HTTP status and a human sentence, rendered in the `{success, message, data}` envelope.
public struct APIError: Error, Sendable, Equatable {
    /// HTTP status code.
    public let status: Int
    /// The sentence shown to the user.
    public let message: String
    /// Seconds after which a throttled request may be tried again.
    public let retryAfter: Int?

    /// Creates the error.
    public init(status: Int, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }

    public static func badRequest(_ message: String) -> APIError { APIError(status: 400, message) }
    public static func unauthorized(_ message: String = "Not logged in, or the session has expired") -> APIError { APIError(status: 401, message) }
    public static func forbidden(_ message: String = "You are not allowed to do this") -> APIError { APIError(status: 403, message) }
    public static func notFound(_ message: String) -> APIError { APIError(status: 404, message) }
    public static func conflict(_ message: String) -> APIError { APIError(status: 409, message) }
    public static func tooMany(_ message: String, retryAfter: Int) -> APIError { APIError(status: 429, message, retryAfter: retryAfter) }

    /// A validation failure as a 400.
    public init(_ validation: ValidationError) { self.init(status: 400, validation.message) }
}

/// A failure of the relay (`/v1`), rendered in the caller's format (OpenAI or Anthropic).
public struct RelayError: Error, Sendable, Equatable {
    /// HTTP status code.
    public let status: Int
    /// Machine-readable code from the contract's table (`invalid_api_key`, `insufficient_quota`, ...).
    public let code: String
    /// The OpenAI error type.
    public let type: String
    /// A human sentence.
    public let message: String
    /// Seconds to wait, for 429 rate limits.
    public let retryAfter: Int?

    /// Creates the error.
    public init(status: Int, code: String, type: String, message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.type = type
        self.message = message
        self.retryAfter = retryAfter
    }

    public static func invalidKey(_ message: String = "Invalid API key") -> RelayError {
        RelayError(status: 401, code: "invalid_api_key", type: "authentication_error", message: message)
    }
    public static func tokenDisabled() -> RelayError {
        RelayError(status: 401, code: "token_disabled", type: "authentication_error", message: "This API key is disabled")
    }
    public static func tokenExpired() -> RelayError {
        RelayError(status: 401, code: "token_expired", type: "authentication_error", message: "This API key has expired")
    }
    public static func tokenExhausted() -> RelayError {
        RelayError(status: 401, code: "token_quota_exhausted", type: "authentication_error", message: "This API key's quota is used up")
    }
    public static func ipNotAllowed(_ ip: String) -> RelayError {
        RelayError(status: 403, code: "ip_not_allowed", type: "permission_error", message: "Requests from \(ip) are not allowed for this API key")
    }
    public static func modelNotAllowed(_ model: String) -> RelayError {
        RelayError(status: 403, code: "model_not_allowed", type: "permission_error", message: "This API key may not use model '\(model)'")
    }
    public static func insufficientQuota(_ message: String) -> RelayError {
        RelayError(status: 429, code: "insufficient_quota", type: "insufficient_quota", message: message)
    }
    public static func rateLimited(_ message: String, retryAfter: Int) -> RelayError {
        RelayError(status: 429, code: "rate_limit_exceeded", type: "rate_limit_error", message: message, retryAfter: retryAfter)
    }
    public static func noChannel(_ message: String) -> RelayError {
        RelayError(status: 503, code: "no_available_channel", type: "server_error", message: message)
    }
    public static func invalidRequest(_ message: String) -> RelayError {
        RelayError(status: 400, code: "invalid_request_error", type: "invalid_request_error", message: message)
    }
    public static func modelNotFound(_ model: String) -> RelayError {
        RelayError(status: 404, code: "model_not_found", type: "invalid_request_error",
                   message: "The model '\(model)' does not exist or this API key may not use it")
    }
    public static func tooLarge(_ limit: Int) -> RelayError {
        RelayError(status: 413, code: "request_too_large", type: "invalid_request_error", message: "The request body is larger than \(limit) bytes")
    }
}
