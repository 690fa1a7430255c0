import Foundation
import SQLKit
import SluiceCore

/// API keys at rest: the key sealed with AES-GCM, found by its HMAC lookup hash.
public struct TokenStore: Sendable {
    let database: Database
    let secrets: SecretBox

    /// Creates the store over `database`, sealing keys with `secrets`.
    public init(database: Database, secrets: SecretBox) {
        self.database = database
        self.secrets = secrets
    }

    static let columns = """
        id, user_id, name, key_enc, status, independent, remain_quota, used_quota, unlimited_quota, expired_time,
        model_limits_enabled, model_limits, allow_ips, group_name, fallback_groups, billing_mode, rpm, tpm,
        created_time, accessed_time, redemption_id
        """

    func decode(_ row: any SQLRow) throws -> Token {
        let sealed = try row.decode(column: "key_enc", as: String.self)
        return Token(id: try row.decode(column: "id", as: Int64.self),
                     userId: try row.decode(column: "user_id", as: Int64?.self),
                     name: try row.decode(column: "name", as: String.self),
                     key: secrets.open(sealed) ?? "",
                     status: try row.decode(column: "status", as: Int.self),
                     independent: try row.decode(column: "independent", as: Int.self) != 0,
                     remainQuota: try row.decode(column: "remain_quota", as: Int64.self),
                     usedQuota: try row.decode(column: "used_quota", as: Int64.self),
                     unlimitedQuota: try row.decode(column: "unlimited_quota", as: Int.self) != 0,
                     expiredTime: try row.decode(column: "expired_time", as: Int64.self),
                     modelLimitsEnabled: try row.decode(column: "model_limits_enabled", as: Int.self) != 0,
                     modelLimits: Token.parseModelList(try row.decode(column: "model_limits", as: String.self)),
                     allowIPs: try row.decode(column: "allow_ips", as: String.self),
                     group: try row.decode(column: "group_name", as: String.self),
                     fallbackGroups: Token.parseModelList(try row.decode(column: "fallback_groups", as: String.self)),
                     billingMode: BillingMode(rawValue: try row.decode(column: "billing_mode", as: String.self)) ?? .usage,
                     rpm: try row.decode(column: "rpm", as: Int.self),
                     tpm: try row.decode(column: "tpm", as: Int.self),
                     createdTime: try row.decode(column: "created_time", as: Int64.self),
                     accessedTime: try row.decode(column: "accessed_time", as: Int64.self),
                     redemptionId: try row.decode(column: "redemption_id", as: Int64?.self))
    }

    /// Inserts `tokens` (their `id` is ignored; the key must be fresh) in one transaction and answers them with ids.
    public func create(_ tokens: [Token]) async throws -> [Token] {
        try await database.transaction { sql in
            var created: [Token] = []
            for token in tokens { created.append(try await insert(token, on: sql)) }
            return created
        }
    }

    /// Inserts one token on `sql` (inside the caller's transaction), counts it for its owner, and answers it with its id.
    func insert(_ token: Token, on sql: any SQLDatabase) async throws -> Token {
        var token = token
        let row = try await sql.raw("""
            INSERT INTO tokens (user_id, name, key_hash, key_enc, status, independent, remain_quota, used_quota, unlimited_quota,
                expired_time, model_limits_enabled, model_limits, allow_ips, group_name, fallback_groups, billing_mode, rpm, tpm,
                redemption_id, created_time, accessed_time, updated_at)
            VALUES (\(bind: token.userId), \(bind: token.name), \(bind: secrets.lookupHash(token.key)), \(bind: secrets.seal(token.key)),
                \(bind: token.status), \(bind: token.independent ? 1 : 0), \(bind: token.remainQuota), \(bind: token.usedQuota),
                \(bind: token.unlimitedQuota ? 1 : 0), \(bind: token.expiredTime), \(bind: token.modelLimitsEnabled ? 1 : 0),
                \(bind: token.modelLimits.joined(separator: ",")), \(bind: token.allowIPs), \(bind: token.group),
                \(bind: token.fallbackGroups.joined(separator: ",")), \(bind: token.billingMode.rawValue), \(bind: token.rpm), \(bind: token.tpm),
                \(bind: token.redemptionId), \(bind: token.createdTime), \(bind: token.accessedTime), \(bind: Clock.nowMillis()))
            RETURNING id
            """).first()
        token.id = try row?.decode(column: "id", as: Int64.self) ?? 0
        if let userId = token.userId { try await Self.count(1, of: userId, on: sql) }
        return token
    }

    /// Adds `change` to the number of tokens `userId` owns (`users.token_count`, kept in the transaction that creates,
    /// deletes or binds tokens, so that listing a user's tokens need not count them).
    static func count(_ change: Int, of userId: Int64, on sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE users SET token_count = token_count + \(bind: change) WHERE id = \(bind: userId)").run()
    }

    /// Binds an independent token that belongs to no account to `userId`, in one conditional update;
    /// false when it is not independent or someone holds it already (also when another request bound it a moment ago).
    public func bind(id: Int64, to userId: Int64) async throws -> Bool {
        try await database.transaction { sql in
            let bound = try await sql.raw("""
                UPDATE tokens SET user_id = \(bind: userId), updated_at = \(bind: Clock.nowMillis())
                WHERE id = \(bind: id) AND user_id IS NULL AND independent = 1 RETURNING id
                """).first() != nil
            if bound { try await Self.count(1, of: userId, on: sql) }
            return bound
        }
    }

    /// The token with `id`, if it belongs to `userId` (any owner when `userId` is nil).
    public func find(id: Int64, userId: Int64?) async throws -> Token? {
        try await database.withSQL { sql in
            let row = try await sql.raw("SELECT \(unsafeRaw: TokenStore.columns) FROM tokens WHERE id = \(bind: id)").first()
            guard let token = try row.map(decode) else { return nil }
            if let userId, token.userId != userId { return nil }
            return token
        }
    }

    /// The token whose key is `key`.
    public func find(key: String) async throws -> Token? {
        let hash = secrets.lookupHash(key)
        return try await database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: TokenStore.columns) FROM tokens WHERE key_hash = \(bind: hash)").first().map(decode)
        }
    }

    /// A page of a user's tokens, newest first; `keyword` matches the name (or, given a whole key, that key).
    /// Without a keyword the total is the owner's token count, not a count of rows.
    public func list(userId: Int64, page: Page, keyword: String? = nil) async throws -> (items: [Token], total: Int) {
        let keyword = keyword.flatMap { $0.isEmpty ? nil : $0 }
        let keyHash = keyword.flatMap { RandomSecret.looksLikeAPIKey($0) ? secrets.lookupHash($0) : nil } ?? ""
        let pattern = "%\(Self.escapeLike(keyword ?? ""))%"
        return try await database.withSQL { sql in
            let filter: SQLQueryString
            let total: Int
            if keyword == nil {
                filter = "user_id = \(bind: userId)"
                total = try await sql.raw("SELECT token_count AS n FROM users WHERE id = \(bind: userId)").first()?.decode(column: "n", as: Int.self) ?? 0
            } else {
                filter = "user_id = \(bind: userId) AND (name LIKE \(bind: pattern) ESCAPE '\\' OR key_hash = \(bind: keyHash))"
                total = try await sql.raw("SELECT COUNT(*) AS n FROM tokens WHERE \(filter)").first()?.decode(column: "n", as: Int.self) ?? 0
            }
            let rows = try await sql.raw("""
                SELECT \(unsafeRaw: TokenStore.columns) FROM tokens WHERE \(filter) ORDER BY id DESC LIMIT \(bind: page.size) OFFSET \(bind: page.offset)
                """).all()
            return (try rows.map(decode), total)
        }
    }

    /// Saves every editable field of `token` (not its owner: tokens change hands only through `bind`). When
    /// `quotaChanged`, the remaining quota is set and leases on it revoked.
    public func update(_ token: Token, quotaChanged: Bool) async throws {
        try await database.transaction { sql in
            try await sql.raw("""
                UPDATE tokens SET name = \(bind: token.name), status = \(bind: token.status), unlimited_quota = \(bind: token.unlimitedQuota ? 1 : 0),
                    expired_time = \(bind: token.expiredTime), model_limits_enabled = \(bind: token.modelLimitsEnabled ? 1 : 0),
                    model_limits = \(bind: token.modelLimits.joined(separator: ",")), allow_ips = \(bind: token.allowIPs),
                    group_name = \(bind: token.group), fallback_groups = \(bind: token.fallbackGroups.joined(separator: ",")),
                    billing_mode = \(bind: token.billingMode.rawValue), rpm = \(bind: token.rpm), tpm = \(bind: token.tpm),
                    updated_at = \(bind: Clock.nowMillis())
                WHERE id = \(bind: token.id)
                """).run()
            if quotaChanged {
                try await sql.raw("UPDATE tokens SET remain_quota = \(bind: token.remainQuota), leased = 0 WHERE id = \(bind: token.id)").run()
                try await sql.raw("DELETE FROM quota_leases WHERE subject = 't' AND subject_id = \(bind: token.id)").run()
            }
        }
    }

    /// Sets only the status.
    public func setStatus(id: Int64, status: Int) async throws {
        try await database.withSQL { sql in
            try await sql.raw("UPDATE tokens SET status = \(bind: status), updated_at = \(bind: Clock.nowMillis()) WHERE id = \(bind: id)").run()
        }
    }

    /// Deletes the given tokens of `userId` (any owner when nil); answers how many went.
    public func delete(ids: [Int64], userId: Int64?) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await database.transaction { sql in
            var deleted = 0
            for id in Set(ids).sorted() {
                let row: (any SQLRow)?
                if let userId {
                    row = try await sql.raw("DELETE FROM tokens WHERE id = \(bind: id) AND user_id = \(bind: userId) RETURNING user_id").first()
                } else {
                    row = try await sql.raw("DELETE FROM tokens WHERE id = \(bind: id) RETURNING user_id").first()
                }
                if let row {
                    deleted += 1
                    if let owner = try row.decode(column: "user_id", as: Int64?.self) { try await Self.count(-1, of: owner, on: sql) }
                    try await sql.raw("DELETE FROM quota_leases WHERE subject = 't' AND subject_id = \(bind: id)").run()
                    try await sql.raw("DELETE FROM sessions WHERE token_id = \(bind: id)").run()
                }
            }
            return deleted
        }
    }

    /// Records the last use of tokens (unix seconds), in one statement each.
    public func touch(_ accessed: [Int64: Int64]) async throws {
        guard !accessed.isEmpty else { return }
        try await database.transaction { sql in
            for (id, time) in accessed {
                try await sql.raw("UPDATE tokens SET accessed_time = \(bind: time) WHERE id = \(bind: id) AND accessed_time < \(bind: time)").run()
            }
        }
    }

    /// Ids of tokens changed at or after `sinceMillis` (for the cache's periodic resync).
    public func changedSince(_ sinceMillis: Int64) async throws -> [Int64] {
        try await database.withSQL { sql in
            try await sql.raw("SELECT id FROM tokens WHERE updated_at >= \(bind: sinceMillis)").all().map { try $0.decode(column: "id", as: Int64.self) }
        }
    }

    /// Whether the secret opens a stored key (nil when no key is stored).
    public func sampleKeyOpens() async throws -> Bool? {
        try await database.withSQL { sql in
            guard let row = try await sql.raw("SELECT key_enc FROM tokens ORDER BY id LIMIT 1").first() else { return nil }
            return secrets.open(try row.decode(column: "key_enc", as: String.self)) != nil
        }
    }

    /// Escapes LIKE wildcards in user input.
    static func escapeLike(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }
}
