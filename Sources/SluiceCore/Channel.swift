/// An upstream provider account: where calls go, with which key, for which models and groups.
public struct Channel: Sendable, Hashable {
    /// The wire protocol the upstream speaks.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case openai
        case anthropic
    }

    public enum Status {
        public static let enabled = 1
        public static let disabled = 2
    }

    public var id: Int64
    public var name: String
    public var type: Kind
    /// The provider's address without `/v1` (a trailing `/v1` is tolerated).
    public var baseURL: String
    /// The upstream key (decrypted).
    public var key: String
    /// Models this channel serves (as clients name them).
    public var models: [String]
    /// Client model name → upstream model name.
    public var modelMapping: [String: String]
    /// Groups whose calls this channel serves.
    public var groups: [String]
    /// Higher first.
    public var priority: Int
    /// Share of traffic within a priority.
    public var weight: Int
    public var status: Int
    public var connectTimeoutMs: Int
    public var firstByteTimeoutMs: Int
    public var idleTimeoutMs: Int

    public init(id: Int64, name: String, type: Kind, baseURL: String, key: String, models: [String], modelMapping: [String: String],
                groups: [String], priority: Int, weight: Int, status: Int, connectTimeoutMs: Int = 10_000,
                firstByteTimeoutMs: Int = 120_000, idleTimeoutMs: Int = 60_000) {
        self.id = id
        self.name = name
        self.type = type
        self.baseURL = baseURL
        self.key = key
        self.models = models
        self.modelMapping = modelMapping
        self.groups = groups
        self.priority = priority
        self.weight = weight
        self.status = status
        self.connectTimeoutMs = connectTimeoutMs
        self.firstByteTimeoutMs = firstByteTimeoutMs
        self.idleTimeoutMs = idleTimeoutMs
    }

    /// Whether the channel serves `model` for `group`.
    public func serves(model: String, group: String) -> Bool {
        status == Status.enabled && groups.contains(group) && models.contains(model)
    }

    /// The upstream model name for a client's model.
    public func upstreamModel(_ model: String) -> String { modelMapping[model] ?? model }

    /// The URL of an upstream path such as `/v1/chat/completions`, not doubling a `/v1` the base URL ends with.
    public func url(_ path: String) -> String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix("/v1"), path.hasPrefix("/v1/") { base.removeLast(3) }
        return base + path
    }
}

/// One row of the call log.
public struct LogEntry: Sendable, Hashable {
    /// Log types.
    public enum Kind {
        public static let topup = 1
        public static let consume = 2
        public static let manage = 3
        public static let system = 4
        public static let error = 5
    }

    public var id: Int64 = 0
    public var createdAt: Int64
    public var type: Int
    public var userId: Int64?
    public var tokenId: Int64?
    public var tokenName: String
    public var modelName: String
    public var group: String
    public var channelId: Int64?
    public var channelName: String
    public var promptTokens: Int
    public var completionTokens: Int
    public var quota: Int64
    public var useTimeMs: Int
    public var isStream: Bool
    public var ip: String
    public var content: String
    public var requestId: String
    /// Whether `quota` was also taken from the user's balance (internal tokens), not only from the token.
    public var userCharged: Bool = false

    public init(createdAt: Int64, type: Int, userId: Int64?, tokenId: Int64?, tokenName: String, modelName: String, group: String,
                channelId: Int64?, channelName: String, promptTokens: Int, completionTokens: Int, quota: Int64, useTimeMs: Int,
                isStream: Bool, ip: String, content: String, requestId: String) {
        self.createdAt = createdAt
        self.type = type
        self.userId = userId
        self.tokenId = tokenId
        self.tokenName = tokenName
        self.modelName = modelName
        self.group = group
        self.channelId = channelId
        self.channelName = channelName
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.quota = quota
        self.useTimeMs = useTimeMs
        self.isStream = isStream
        self.ip = ip
        self.content = content
        self.requestId = requestId
    }
}
