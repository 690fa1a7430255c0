import SQLKit
import SluiceCore

/// Redemption codes at rest, and redeeming them.
///
/// A code is stored sealed (AES-GCM, so administrators can list and export it) and found by its HMAC lookup hash,
/// like API keys. Redeeming is one transaction whose conditional `UPDATE ... WHERE status = 1` decides which of any
/// number of concurrent redemptions wins; the credit or the issued token is written in that same transaction.
public struct RedemptionStore: Sendable {
    let database: Database
    let secrets: SecretBox
    let tokens: TokenStore

    /// Creates the store over `database`, sealing codes with `secrets`; issued tokens are written as `tokens` writes them.
    public init(database: Database, secrets: SecretBox) {
        self.database = database
        self.secrets = secrets
        tokens = TokenStore(database: database, secrets: secrets)
    }

    /// What a successful redemption did.
    public struct Outcome: Sendable {
        /// The code, now used.
        public let redemption: Redemption
        /// Quota credited to the user's balance (`topup` codes), else 0.
        public let credited: Int64
        /// The independent token issued (`token` codes).
        public let token: Token?
    }

    static let columns = """
        id, name, kind, code_enc, status, quota, expired_time, valid_days, group_name, fallback_groups, model_limits,
        created_at, redeemed_at, redeemed_by_user_id, redeemed_token_id
        """

    func decode(_ row: any SQLRow) throws -> Redemption {
        Redemption(id: try row.decode(column: "id", as: Int64.self),
                   name: try row.decode(column: "name", as: String.self),
                   kind: Redemption.Kind(rawValue: try row.decode(column: "kind", as: String.self)) ?? .topup,
                   code: secrets.open(try row.decode(column: "code_enc", as: String.self)) ?? "",
                   status: try row.decode(column: "status", as: Int.self),
                   quota: try row.decode(column: "quota", as: Int64.self),
                   expiredTime: try row.decode(column: "expired_time", as: Int64.self),
                   validDays: try row.decode(column: "valid_days", as: Int.self),
                   group: try row.decode(column: "group_name", as: String.self),
                   fallbackGroups: Token.parseModelList(try row.decode(column: "fallback_groups", as: String.self)),
                   modelLimits: Token.parseModelList(try row.decode(column: "model_limits", as: String.self)),
                   createdAt: try row.decode(column: "created_at", as: Int64.self),
                   redeemedAt: try row.decode(column: "redeemed_at", as: Int64.self),
                   redeemedByUserId: try row.decode(column: "redeemed_by_user_id", as: Int64?.self),
                   redeemedTokenId: try row.decode(column: "redeemed_token_id", as: Int64?.self))
    }

    /// Inserts `codes` (their `id` is ignored; each code must be fresh) in one transaction and answers them with ids.
    public func create(_ codes: [Redemption]) async throws -> [Redemption] {
        try await database.transaction { sql in
            var created: [Redemption] = []
            for var code in codes {
                let row = try await sql.raw("""
                    INSERT INTO redemptions (name, kind, code_hash, code_enc, status, quota, expired_time, valid_days, group_name,
                        fallback_groups, model_limits, created_at, redeemed_at)
                    VALUES (\(bind: code.name), \(bind: code.kind.rawValue), \(bind: secrets.lookupHash(code.code)), \(bind: secrets.seal(code.code)),
                        \(bind: code.status), \(bind: code.quota), \(bind: code.expiredTime), \(bind: code.validDays), \(bind: code.group),
                        \(bind: code.fallbackGroups.joined(separator: ",")), \(bind: code.modelLimits.joined(separator: ",")),
                        \(bind: code.createdAt), 0)
                    RETURNING id
                    """).first()
                code.id = try row?.decode(column: "id", as: Int64.self) ?? 0
                created.append(code)
            }
            return created
        }
    }

    /// The code with `id`.
    public func find(id: Int64) async throws -> Redemption? {
        try await database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: RedemptionStore.columns) FROM redemptions WHERE id = \(bind: id)").first().map(decode)
        }
    }

    /// The code whose text is `code` (found by its lookup hash).
    public func find(code: String) async throws -> Redemption? {
        let hash = secrets.lookupHash(code)
        return try await database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: RedemptionStore.columns) FROM redemptions WHERE code_hash = \(bind: hash)").first().map(decode)
        }
    }

    /// A page of codes, newest first; `keyword` matches the batch name.
    public func list(page: Page, keyword: String? = nil) async throws -> (items: [Redemption], total: Int) {
        let pattern = "%\(TokenStore.escapeLike(keyword ?? ""))%"
        return try await database.withSQL { sql in
            let filter: SQLQueryString = "name LIKE \(bind: pattern) ESCAPE '\\'"
            let total = try await sql.raw("SELECT COUNT(*) AS n FROM redemptions WHERE \(filter)").first()?.decode(column: "n", as: Int.self) ?? 0
            let rows = try await sql.raw("""
                SELECT \(unsafeRaw: RedemptionStore.columns) FROM redemptions WHERE \(filter)
                ORDER BY id DESC LIMIT \(bind: page.size) OFFSET \(bind: page.offset)
                """).all()
            return (try rows.map(decode), total)
        }
    }

    /// Every code of the batch called `name`, oldest first (for export).
    public func batch(name: String) async throws -> [Redemption] {
        try await database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: RedemptionStore.columns) FROM redemptions WHERE name = \(bind: name) ORDER BY id").all().map(decode)
        }
    }

    /// The codes with these ids that exist, oldest first (for export).
    public func find(ids: [Int64]) async throws -> [Redemption] {
        guard !ids.isEmpty else { return [] }
        return try await database.withSQL { sql in
            var list: SQLQueryString = "\(bind: ids[0])"
            for id in ids.dropFirst() { list = "\(list), \(bind: id)" }
            return try await sql.raw("SELECT \(unsafeRaw: RedemptionStore.columns) FROM redemptions WHERE id IN (\(list)) ORDER BY id").all().map(decode)
        }
    }

    /// Saves the editable fields of a code that has not been used (name, status 1 or 2, quota, expiry, validity, groups,
    /// model limits); false when the code is used (or gone) by the time the update runs.
    public func update(_ code: Redemption) async throws -> Bool {
        try await database.withSQL { sql in
            try await sql.raw("""
                UPDATE redemptions SET name = \(bind: code.name), status = \(bind: code.status), quota = \(bind: code.quota),
                    expired_time = \(bind: code.expiredTime), valid_days = \(bind: code.validDays), group_name = \(bind: code.group),
                    fallback_groups = \(bind: code.fallbackGroups.joined(separator: ",")), model_limits = \(bind: code.modelLimits.joined(separator: ","))
                WHERE id = \(bind: code.id) AND status <> \(bind: Redemption.Status.used)
                RETURNING id
                """).first() != nil
        }
    }

    /// Deletes a code; false when there was none. Tokens it issued live on.
    public func delete(id: Int64) async throws -> Bool {
        try await database.withSQL { sql in
            try await sql.raw("DELETE FROM redemptions WHERE id = \(bind: id) RETURNING id").first() != nil
        }
    }

    /// Redeems `code` once and for all, in one transaction.
    ///
    /// A `topup` code adds its quota to `userId`'s balance with an atomic `quota = quota + X` (leases on the balance stay
    /// valid; the caller announces the user change so caches reload it). A `token` code issues an independent token bound
    /// to `userId`, or to no account when `userId` is nil. Of any number of concurrent redemptions of one code exactly one
    /// succeeds: the conditional `UPDATE ... WHERE status = 1` lets one through and the others find it used.
    /// - Parameters:
    ///   - kinds: the kinds accepted here; another kind is refused with `wrongKind`.
    ///   - newKey: the full key of the token a `token` code issues.
    /// - Throws: `RedemptionRefusal` when the code is unknown, used, disabled, expired or of a kind not accepted.
    public func redeem(code: String, userId: Int64?, kinds: Set<Redemption.Kind>, newKey: String,
                       now: Int64 = Clock.nowSeconds()) async throws -> Outcome {
        let hash = secrets.lookupHash(code)
        return try await database.transaction { sql in
            guard var redemption = try await sql.raw("""
                SELECT \(unsafeRaw: RedemptionStore.columns) FROM redemptions WHERE code_hash = \(bind: hash)
                """).first().map(decode) else { throw RedemptionRefusal.unknown }
            switch redemption.status {
            case Redemption.Status.used: throw RedemptionRefusal.used
            case Redemption.Status.disabled: throw RedemptionRefusal.disabled
            default: break
            }
            if redemption.isExpired(now: now) { throw RedemptionRefusal.expired }
            guard kinds.contains(redemption.kind) else { throw RedemptionRefusal.wrongKind(redemption.kind) }
            guard redemption.kind == .token || userId != nil else { throw RedemptionRefusal.wrongKind(.topup) }
            // The decision: only one transaction moves the code from unused to used.
            let claimed = try await sql.raw("""
                UPDATE redemptions SET status = \(bind: Redemption.Status.used), redeemed_at = \(bind: now), redeemed_by_user_id = \(bind: userId)
                WHERE id = \(bind: redemption.id) AND status = \(bind: Redemption.Status.unused)
                RETURNING id
                """).first()
            guard claimed != nil else {
                let status = try await sql.raw("SELECT status FROM redemptions WHERE id = \(bind: redemption.id)").first()?
                    .decode(column: "status", as: Int.self)
                throw status == Redemption.Status.disabled ? RedemptionRefusal.disabled : RedemptionRefusal.used
            }
            redemption.status = Redemption.Status.used
            redemption.redeemedAt = now
            redemption.redeemedByUserId = userId
            switch redemption.kind {
            case .topup:
                guard let userId, try await sql.raw("""
                    UPDATE users SET quota = quota + \(bind: redemption.quota), updated_at = \(bind: now) WHERE id = \(bind: userId) RETURNING id
                    """).first() != nil else { throw RedemptionRefusal.unknown }
                return Outcome(redemption: redemption, credited: redemption.quota, token: nil)
            case .token:
                let token = try await tokens.insert(redemption.issueToken(key: newKey, userId: userId, now: now), on: sql)
                try await sql.raw("UPDATE redemptions SET redeemed_token_id = \(bind: token.id) WHERE id = \(bind: redemption.id)").run()
                redemption.redeemedTokenId = token.id
                return Outcome(redemption: redemption, credited: 0, token: token)
            }
        }
    }
}
