import Foundation

/// A redemption code: an administrator's voucher that either credits a user balance (`topup`) or issues an
/// independent token with a quota of its own (`token`). A code works exactly once.
public struct Redemption: Sendable, Hashable {
    /// What redeeming the code does.
    public enum Kind: String, Sendable, CaseIterable {
        /// Credits `quota` to the redeeming user's balance.
        case topup
        /// Issues an independent token holding `quota`, valid for `validDays` from redemption.
        case token
    }

    /// Code statuses as the contract numbers them.
    public enum Status {
        public static let unused = 1
        public static let disabled = 2
        /// Set only by redeeming.
        public static let used = 3
    }

    /// Never expires.
    public static let never: Int64 = -1
    /// Longest batch name (it also names the tokens a `token` code issues).
    public static let maxNameLength = Token.maxNameLength
    /// Length of a generated code.
    public static let codeLength = 32
    /// Most codes per batch.
    public static let maxBatch = 100
    /// Longest validity of an issued token, in days (ten years).
    public static let maxValidDays = 3650
    /// Largest quota one code may carry (2,000,000,000 USD), so sums never overflow.
    public static let maxQuota: Int64 = 1_000_000_000_000_000

    public var id: Int64
    /// Batch name; codes created together share it.
    public var name: String
    public var kind: Kind
    /// The code itself (decrypted from storage).
    public var code: String
    /// 1 unused, 2 disabled, 3 used.
    public var status: Int
    /// Quota units credited (`topup`) or given to the issued token (`token`).
    public var quota: Int64
    /// When the code itself stops working: unix seconds, or -1 for never.
    public var expiredTime: Int64
    /// Days an issued token stays valid from redemption; 0 for a token that never expires.
    public var validDays: Int
    /// Primary group of the issued token; "" issues it in `default`.
    public var group: String
    /// Fallback groups of the issued token.
    public var fallbackGroups: [String]
    /// Models the issued token may use; empty for no limit.
    public var modelLimits: [String]
    /// Unix seconds.
    public var createdAt: Int64
    /// Unix seconds of redemption, 0 while unused.
    public var redeemedAt: Int64
    /// The user who redeemed it (nil while unused, and for a token code redeemed without an account).
    public var redeemedByUserId: Int64?
    /// The token a `token` code issued.
    public var redeemedTokenId: Int64?

    public init(id: Int64, name: String, kind: Kind, code: String, status: Int, quota: Int64, expiredTime: Int64, validDays: Int,
                group: String, fallbackGroups: [String], modelLimits: [String], createdAt: Int64, redeemedAt: Int64,
                redeemedByUserId: Int64?, redeemedTokenId: Int64?) {
        self.id = id
        self.name = name
        self.kind = kind
        self.code = code
        self.status = status
        self.quota = quota
        self.expiredTime = expiredTime
        self.validDays = validDays
        self.group = group
        self.fallbackGroups = fallbackGroups
        self.modelLimits = modelLimits
        self.createdAt = createdAt
        self.redeemedAt = redeemedAt
        self.redeemedByUserId = redeemedByUserId
        self.redeemedTokenId = redeemedTokenId
    }

    /// Whether the code itself is past its expiry at `now` (unix seconds).
    public func isExpired(now: Int64) -> Bool { expiredTime != Redemption.never && expiredTime <= now }

    /// A fresh random code.
    public static func newCode() -> String { RandomSecret.string(count: codeLength) }

    /// Checks a batch name: 1..30 characters.
    public static func validateName(_ name: String) throws(ValidationError) {
        if name.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("name cannot be empty") }
        if name.count > maxNameLength { throw ValidationError("name must be at most \(maxNameLength) characters long") }
    }

    /// The independent token a `token` code issues at `now`: the code's quota, groups and model limits, valid for
    /// `validDays` from now, owned by `userId` (nil for a token bound to no account).
    public func issueToken(key: String, userId: Int64?, now: Int64) -> Token {
        Token(id: 0, userId: userId, name: name, key: key, status: Token.Status.enabled, independent: true,
              remainQuota: quota, usedQuota: 0, unlimitedQuota: false,
              expiredTime: validDays > 0 ? now + Int64(validDays) * 86_400 : Token.never,
              modelLimitsEnabled: !modelLimits.isEmpty, modelLimits: modelLimits, allowIPs: "",
              group: group.isEmpty ? Group.defaultName : group, fallbackGroups: fallbackGroups, billingMode: .usage, rpm: 0, tpm: 0,
              createdTime: now, accessedTime: 0, redemptionId: id)
    }
}

/// Why a code cannot be redeemed.
public enum RedemptionRefusal: Error, Sendable, Equatable {
    /// No code matches.
    case unknown
    /// Already redeemed (by someone else, or a moment ago by a concurrent request).
    case used
    /// Disabled by an administrator.
    case disabled
    /// Past the code's own expiry.
    case expired
    /// A code of the other kind where this one was expected.
    case wrongKind(Redemption.Kind)

    /// The sentence shown to the user.
    public var message: String {
        switch self {
        case .unknown: return "This redemption code does not exist"
        case .used: return "This redemption code has already been used"
        case .disabled: return "This redemption code is disabled"
        case .expired: return "This redemption code has expired"
        case .wrongKind(.topup): return "This is a top-up code: redeem it on your account with POST /api/user/topup"
        case .wrongKind(.token): return "This code issues an independent token, not a balance top-up"
        }
    }
}
