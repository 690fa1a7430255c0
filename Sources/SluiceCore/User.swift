/// A person with an account: a balance, a group and a role.
public struct User: Sendable, Hashable {
    /// Roles as numbers, as new-api has them.
    public enum Role {
        public static let user = 1
        public static let admin = 10
        public static let root = 100
        /// The roles that may be given.
        public static let all: Set<Int> = [user, admin, root]
    }

    /// Account statuses.
    public enum Status {
        public static let enabled = 1
        public static let disabled = 2
    }

    public var id: Int64
    public var username: String
    public var displayName: String
    public var passwordHash: String
    public var role: Int
    public var status: Int
    /// The user's own group (always usable on their tokens).
    public var group: String
    /// Remaining balance in quota units.
    public var quota: Int64
    /// Quota units spent so far.
    public var usedQuota: Int64
    /// Calls made so far.
    public var requestCount: Int64
    /// Lookup hash of the management access token, if one was generated.
    public var accessTokenHash: String?
    public var createdAt: Int64

    public init(id: Int64, username: String, displayName: String, passwordHash: String, role: Int, status: Int, group: String,
                quota: Int64, usedQuota: Int64, requestCount: Int64, accessTokenHash: String?, createdAt: Int64) {
        self.id = id
        self.username = username
        self.displayName = displayName
        self.passwordHash = passwordHash
        self.role = role
        self.status = status
        self.group = group
        self.quota = quota
        self.usedQuota = usedQuota
        self.requestCount = requestCount
        self.accessTokenHash = accessTokenHash
        self.createdAt = createdAt
    }

    /// Whether the user may use admin endpoints.
    public var isAdmin: Bool { role >= Role.admin }

    /// Checks a username: 3..30 characters of letters, digits, `_`, `-`, `.`, `@`.
    public static func validateUsername(_ name: String) throws(ValidationError) {
        guard (3...30).contains(name.count) else { throw ValidationError("username must be 3 to 30 characters long") }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.@")
        guard name.allSatisfy(allowed.contains) else {
            throw ValidationError("username may contain only letters, digits and _ - . @")
        }
    }

    /// Checks a password: 8..72 bytes (bcrypt reads no further).
    public static func validatePassword(_ password: String) throws(ValidationError) {
        guard password.count >= 8 else { throw ValidationError("password must be at least 8 characters long") }
        guard password.utf8.count <= 72 else { throw ValidationError("password must be at most 72 bytes long") }
    }
}
