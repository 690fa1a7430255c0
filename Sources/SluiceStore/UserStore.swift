import SQLKit
import SluiceCore

/// Users: accounts, balances, roles and management access tokens.
public struct UserStore: Sendable {
    let database: Database

    /// Creates the store over `database`.
    public init(database: Database) { self.database = database }

    static let columns = "id, username, display_name, password_hash, role, status, group_name, quota, used_quota, request_count, access_token_hash, created_at"

    static func decode(_ row: any SQLRow) throws -> User {
        User(id: try row.decode(column: "id", as: Int64.self),
             username: try row.decode(column: "username", as: String.self),
             displayName: try row.decode(column: "display_name", as: String.self),
             passwordHash: try row.decode(column: "password_hash", as: String.self),
             role: try row.decode(column: "role", as: Int.self),
             status: try row.decode(column: "status", as: Int.self),
             group: try row.decode(column: "group_name", as: String.self),
             quota: try row.decode(column: "quota", as: Int64.self),
             usedQuota: try row.decode(column: "used_quota", as: Int64.self),
             requestCount: try row.decode(column: "request_count", as: Int64.self),
             accessTokenHash: try row.decode(column: "access_token_hash", as: String?.self),
             createdAt: try row.decode(column: "created_at", as: Int64.self))
    }

    /// Inserts a user; nil when the username is taken.
    public func create(username: String, passwordHash: String, role: Int, group: String, quota: Int64) async throws -> User? {
        let now = Clock.nowSeconds()
        return try await database.withSQL { sql in
            if try await sql.raw("SELECT id FROM users WHERE username = \(bind: username)").first() != nil { return nil }
            let row = try await sql.raw("""
                INSERT INTO users (username, display_name, password_hash, role, status, group_name, quota, created_at, updated_at)
                VALUES (\(bind: username), \(bind: username), \(bind: passwordHash), \(bind: role), 1, \(bind: group), \(bind: quota), \(bind: now), \(bind: now))
                RETURNING \(unsafeRaw: UserStore.columns)
                """).first()
            return try row.map(UserStore.decode)
        }
    }

    /// The user with `id`.
    public func find(id: Int64) async throws -> User? {
        try await database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: UserStore.columns) FROM users WHERE id = \(bind: id)").first().map(UserStore.decode)
        }
    }

    /// The user called `username`.
    public func find(username: String) async throws -> User? {
        try await database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: UserStore.columns) FROM users WHERE username = \(bind: username)").first().map(UserStore.decode)
        }
    }

    /// A page of users, newest first, optionally filtered by a keyword in the username.
    public func list(page: Page, keyword: String? = nil) async throws -> (items: [User], total: Int) {
        try await database.withSQL { sql in
            let pattern = "%\(keyword ?? "")%"
            let total = try await sql.raw("SELECT COUNT(*) AS n FROM users WHERE username LIKE \(bind: pattern)").first()?.decode(column: "n", as: Int.self) ?? 0
            let rows = try await sql.raw("""
                SELECT \(unsafeRaw: UserStore.columns) FROM users WHERE username LIKE \(bind: pattern)
                ORDER BY id DESC LIMIT \(bind: page.size) OFFSET \(bind: page.offset)
                """).all()
            return (try rows.map(UserStore.decode), total)
        }
    }

    /// Saves the editable fields of `user` (display name, password, role, status, group, quota).
    public func update(_ user: User) async throws {
        try await database.withSQL { sql in
            try await sql.raw("""
                UPDATE users SET display_name = \(bind: user.displayName), password_hash = \(bind: user.passwordHash), role = \(bind: user.role),
                status = \(bind: user.status), group_name = \(bind: user.group), quota = \(bind: user.quota), updated_at = \(bind: Clock.nowSeconds())
                WHERE id = \(bind: user.id)
                """).run()
        }
    }

    /// Sets the balance to `quota` and revokes every lease on it (the instances learn of it through the change feed).
    public func setQuota(id: Int64, quota: Int64) async throws {
        try await database.transaction { sql in
            try await sql.raw("UPDATE users SET quota = \(bind: quota), leased = 0, updated_at = \(bind: Clock.nowSeconds()) WHERE id = \(bind: id)").run()
            try await sql.raw("DELETE FROM quota_leases WHERE subject = 'u' AND subject_id = \(bind: id)").run()
        }
    }

    /// Stores the lookup hash of a new access token.
    public func setAccessTokenHash(id: Int64, hash: String) async throws {
        try await database.withSQL { sql in
            try await sql.raw("UPDATE users SET access_token_hash = \(bind: hash), updated_at = \(bind: Clock.nowSeconds()) WHERE id = \(bind: id)").run()
        }
    }

    /// Deletes a user, their internal tokens and sessions; independent tokens bound to them become unbound.
    public func delete(id: Int64) async throws -> Bool {
        try await database.transaction { sql in
            guard try await sql.raw("SELECT id FROM users WHERE id = \(bind: id)").first() != nil else { return false }
            try await sql.raw("DELETE FROM tokens WHERE user_id = \(bind: id) AND independent = 0").run()
            try await sql.raw("UPDATE tokens SET user_id = NULL, updated_at = \(bind: Clock.nowSeconds()) WHERE user_id = \(bind: id)").run()
            try await sql.raw("DELETE FROM sessions WHERE user_id = \(bind: id)").run()
            try await sql.raw("DELETE FROM quota_leases WHERE subject = 'u' AND subject_id = \(bind: id)").run()
            try await sql.raw("DELETE FROM users WHERE id = \(bind: id)").run()
            return true
        }
    }

    /// How many users exist.
    public func count() async throws -> Int {
        try await database.withSQL { sql in
            try await sql.raw("SELECT COUNT(*) AS n FROM users").first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }
}

/// A page request: 1-based page number and size (1...100).
public struct Page: Sendable, Equatable {
    public let number: Int
    public let size: Int

    /// Clamps the page to 1...10,000,000 (no offset overflow) and the size to 1...100 (default 20).
    public init(number: Int?, size: Int?) {
        self.number = min(10_000_000, max(1, number ?? 1))
        self.size = min(100, max(1, size ?? 20))
    }

    /// Rows to skip.
    public var offset: Int { (number - 1) * size }
}
