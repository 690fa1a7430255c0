import Foundation

/// An API key (`sk-...`) and the rules that admit its calls.
public struct Token: Sendable, Hashable {
    /// Token statuses as the contract numbers them. 3 and 4 are computed from expiry and quota.
    public enum Status {
        public static let enabled = 1
        public static let disabled = 2
        public static let expired = 3
        public static let exhausted = 4
    }

    /// Never expires.
    public static let never: Int64 = -1
    /// Longest name.
    public static let maxNameLength = 30
    /// Most fallback groups.
    public static let maxFallbackGroups = 2

    public var id: Int64
    /// Owner; nil for an independent token bound to no account.
    public var userId: Int64?
    public var name: String
    /// The full key (decrypted from storage).
    public var key: String
    /// The stored status: 1 enabled or 2 disabled (3/4 may be stored too; see `effectiveStatus`).
    public var status: Int
    /// True for a token with a quota of its own that never draws on a user balance.
    public var independent: Bool
    public var remainQuota: Int64
    public var usedQuota: Int64
    public var unlimitedQuota: Bool
    /// Unix seconds, or -1 for never.
    public var expiredTime: Int64
    public var modelLimitsEnabled: Bool
    /// Allowed models (when `modelLimitsEnabled`).
    public var modelLimits: [String]
    /// The raw allow list as the user wrote it.
    public var allowIPs: String
    /// Primary group; "" means the owner's group.
    public var group: String
    public var fallbackGroups: [String]
    public var billingMode: BillingMode
    /// Calls per minute for this token (0 = none).
    public var rpm: Int
    /// Tokens per minute for this token (0 = none).
    public var tpm: Int
    public var createdTime: Int64
    public var accessedTime: Int64
    /// The redemption code that issued an independent token.
    public var redemptionId: Int64?

    public init(id: Int64, userId: Int64?, name: String, key: String, status: Int, independent: Bool, remainQuota: Int64,
                usedQuota: Int64, unlimitedQuota: Bool, expiredTime: Int64, modelLimitsEnabled: Bool, modelLimits: [String],
                allowIPs: String, group: String, fallbackGroups: [String], billingMode: BillingMode, rpm: Int, tpm: Int,
                createdTime: Int64, accessedTime: Int64, redemptionId: Int64?) {
        self.id = id
        self.userId = userId
        self.name = name
        self.key = key
        self.status = status
        self.independent = independent
        self.remainQuota = remainQuota
        self.usedQuota = usedQuota
        self.unlimitedQuota = unlimitedQuota
        self.expiredTime = expiredTime
        self.modelLimitsEnabled = modelLimitsEnabled
        self.modelLimits = modelLimits
        self.allowIPs = allowIPs
        self.group = group
        self.fallbackGroups = fallbackGroups
        self.billingMode = billingMode
        self.rpm = rpm
        self.tpm = tpm
        self.createdTime = createdTime
        self.accessedTime = accessedTime
        self.redemptionId = redemptionId
    }

    /// Whether the token is past its expiry at `now` (unix seconds).
    public func isExpired(now: Int64) -> Bool { expiredTime != Token.never && expiredTime <= now }

    /// Whether a capped token has no quota left.
    public var isExhausted: Bool { !unlimitedQuota && remainQuota <= 0 }

    /// The status users see: a disabled token stays 2; an enabled one past its time is 3, one with no quota left is 4.
    public func effectiveStatus(now: Int64) -> Int {
        if status == Status.disabled { return Status.disabled }
        if isExpired(now: now) { return Status.expired }
        if isExhausted { return Status.exhausted }
        return Status.enabled
    }

    /// Checks a token name: 1..30 characters.
    public static func validateName(_ name: String) throws(ValidationError) {
        if name.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("Token name cannot be empty") }
        if name.count > maxNameLength { throw ValidationError("Token name is too long") }
    }

    /// Sentence of the seeds for enabling an expired token.
    public static let cannotEnableExpired = "The token has expired and cannot be enabled. Please update the token expiration time first, or set it to never expire"
    /// Sentence for enabling a token whose quota is used up.
    public static let cannotEnableExhausted = "The token's quota has been used up and cannot be enabled. Please increase the remaining quota first, or set it to unlimited quota"

    /// Parses a model list given as a comma-separated string, trimming blanks and dropping duplicates.
    public static func parseModelList(_ text: String) -> [String] {
        var seen = Set<String>()
        return text.split(whereSeparator: { $0 == "," || $0 == "\n" }).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && seen.insert($0).inserted }
    }
}

