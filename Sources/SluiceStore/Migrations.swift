import Foundation
import SQLKit

/// One versioned schema step. `{pk}` and `{without_rowid}` in a statement become the dialect's words
/// (see `Schema.dialectSQL`).
struct Migration: Sendable {
    let version: Int
    let name: String
    let statements: [String]
}

/// The schema, in order. Never edit a released step: add a new one.
public enum Schema {
    /// The newest schema version this binary knows.
    public static var latestVersion: Int { migrations.map(\.version).max() ?? 0 }

    /// `statement` in `dialect`: `{pk}` becomes the auto-increment primary key, `{without_rowid}` a clustered primary
    /// key on SQLite (nothing on PostgreSQL).
    static func dialectSQL(_ statement: String, _ dialect: Dialect) -> String {
        statement
            .replacingOccurrences(of: "{pk}", with: dialect == .sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY")
            .replacingOccurrences(of: "{without_rowid}", with: dialect == .sqlite ? " WITHOUT ROWID" : "")
    }

    static let migrations: [Migration] = [
        Migration(version: 1, name: "users, groups, tokens, sessions", statements: [
            """
            CREATE TABLE users (
                id {pk},
                username TEXT NOT NULL UNIQUE,
                display_name TEXT NOT NULL DEFAULT '',
                password_hash TEXT NOT NULL,
                role INTEGER NOT NULL DEFAULT 1,
                status INTEGER NOT NULL DEFAULT 1,
                group_name TEXT NOT NULL DEFAULT 'default',
                quota BIGINT NOT NULL DEFAULT 0,
                used_quota BIGINT NOT NULL DEFAULT 0,
                leased BIGINT NOT NULL DEFAULT 0,
                request_count BIGINT NOT NULL DEFAULT 0,
                access_token_hash TEXT UNIQUE,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE user_groups (
                id {pk},
                name TEXT NOT NULL UNIQUE,
                description TEXT NOT NULL DEFAULT '',
                ratio_ppm BIGINT NOT NULL DEFAULT 1000000,
                models TEXT NOT NULL DEFAULT '',
                rpm INTEGER NOT NULL DEFAULT 0,
                tpm INTEGER NOT NULL DEFAULT 0,
                selectable INTEGER NOT NULL DEFAULT 1,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE tokens (
                id {pk},
                user_id BIGINT,
                name TEXT NOT NULL,
                key_hash TEXT NOT NULL UNIQUE,
                key_enc TEXT NOT NULL,
                status INTEGER NOT NULL DEFAULT 1,
                independent INTEGER NOT NULL DEFAULT 0,
                remain_quota BIGINT NOT NULL DEFAULT 0,
                used_quota BIGINT NOT NULL DEFAULT 0,
                leased BIGINT NOT NULL DEFAULT 0,
                unlimited_quota INTEGER NOT NULL DEFAULT 0,
                expired_time BIGINT NOT NULL DEFAULT -1,
                model_limits_enabled INTEGER NOT NULL DEFAULT 0,
                model_limits TEXT NOT NULL DEFAULT '',
                allow_ips TEXT NOT NULL DEFAULT '',
                group_name TEXT NOT NULL DEFAULT '',
                fallback_groups TEXT NOT NULL DEFAULT '',
                billing_mode TEXT NOT NULL DEFAULT 'usage',
                rpm INTEGER NOT NULL DEFAULT 0,
                tpm INTEGER NOT NULL DEFAULT 0,
                redemption_id BIGINT,
                created_time BIGINT NOT NULL,
                accessed_time BIGINT NOT NULL DEFAULT 0,
                updated_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX tokens_user ON tokens (user_id, id)",
            "CREATE INDEX tokens_updated ON tokens (updated_at)",
            """
            CREATE TABLE sessions (
                id_hash TEXT PRIMARY KEY,
                user_id BIGINT,
                token_id BIGINT,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL
            )
            """,
            "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ]),
        Migration(version: 2, name: "prices, channels, logs, leases", statements: [
            """
            CREATE TABLE model_prices (
                id {pk},
                model TEXT NOT NULL UNIQUE,
                input_price BIGINT NOT NULL DEFAULT 0,
                output_price BIGINT NOT NULL DEFAULT 0,
                call_price BIGINT,
                max_output_tokens INTEGER NOT NULL DEFAULT 4096,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE channels (
                id {pk},
                name TEXT NOT NULL,
                type TEXT NOT NULL,
                base_url TEXT NOT NULL,
                key_enc TEXT NOT NULL,
                models TEXT NOT NULL DEFAULT '',
                model_mapping TEXT NOT NULL DEFAULT '{}',
                groups TEXT NOT NULL DEFAULT 'default',
                priority INTEGER NOT NULL DEFAULT 0,
                weight INTEGER NOT NULL DEFAULT 1,
                status INTEGER NOT NULL DEFAULT 1,
                connect_timeout_ms INTEGER NOT NULL DEFAULT 10000,
                first_byte_timeout_ms INTEGER NOT NULL DEFAULT 120000,
                idle_timeout_ms INTEGER NOT NULL DEFAULT 60000,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE logs (
                id {pk},
                created_at BIGINT NOT NULL,
                type INTEGER NOT NULL,
                user_id BIGINT,
                token_id BIGINT,
                token_name TEXT NOT NULL DEFAULT '',
                model_name TEXT NOT NULL DEFAULT '',
                group_name TEXT NOT NULL DEFAULT '',
                channel_id BIGINT,
                channel_name TEXT NOT NULL DEFAULT '',
                prompt_tokens BIGINT NOT NULL DEFAULT 0,
                completion_tokens BIGINT NOT NULL DEFAULT 0,
                quota BIGINT NOT NULL DEFAULT 0,
                use_time_ms BIGINT NOT NULL DEFAULT 0,
                is_stream INTEGER NOT NULL DEFAULT 0,
                ip TEXT NOT NULL DEFAULT '',
                content TEXT NOT NULL DEFAULT '',
                request_id TEXT NOT NULL DEFAULT '',
                user_charged INTEGER NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX logs_user ON logs (user_id, id)",
            "CREATE INDEX logs_token ON logs (token_id, id)",
            "CREATE INDEX logs_created ON logs (created_at)",
            """
            CREATE TABLE quota_leases (
                instance_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                subject_id BIGINT NOT NULL,
                amount BIGINT NOT NULL,
                PRIMARY KEY (instance_id, subject, subject_id)
            )
            """,
            "CREATE TABLE instances (id TEXT PRIMARY KEY, started_at BIGINT NOT NULL, heartbeat_at BIGINT NOT NULL)",
        ]),
        Migration(version: 3, name: "redemption codes", statements: [
            """
            CREATE TABLE redemptions (
                id {pk},
                name TEXT NOT NULL,
                kind TEXT NOT NULL,
                code_hash TEXT NOT NULL UNIQUE,
                code_enc TEXT NOT NULL,
                status INTEGER NOT NULL DEFAULT 1,
                quota BIGINT NOT NULL DEFAULT 0,
                expired_time BIGINT NOT NULL DEFAULT -1,
                valid_days INTEGER NOT NULL DEFAULT 0,
                group_name TEXT NOT NULL DEFAULT '',
                fallback_groups TEXT NOT NULL DEFAULT '',
                model_limits TEXT NOT NULL DEFAULT '',
                created_at BIGINT NOT NULL,
                redeemed_at BIGINT NOT NULL DEFAULT 0,
                redeemed_by_user_id BIGINT,
                redeemed_token_id BIGINT
            )
            """,
            "CREATE INDEX redemptions_name ON redemptions (name, id)",
        ]),
        Migration(version: 4, name: "shared rate-limit windows", statements: [
            """
            CREATE TABLE rate_windows (
                key TEXT NOT NULL,
                second BIGINT NOT NULL,
                calls BIGINT NOT NULL DEFAULT 0,
                tokens BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (key, second)
            )
            """,
        ]),
        Migration(version: 5, name: "log indexes, hourly and daily log totals, token counts", statements: [
            // Each log filter finds its newest rows through an index that ends in created_at (the page order is
            // created_at DESC, id DESC; SQLite keeps the rowid in every index, PostgreSQL sorts ties incrementally).
            // A key name is looked up as the key that logged under it (LogPlan.narrowed), so it needs no index.
            "CREATE INDEX logs_user_time ON logs (user_id, created_at)",
            "CREATE INDEX logs_user_model ON logs (user_id, model_name, created_at)",
            "CREATE INDEX logs_token_time ON logs (token_id, created_at)",
            // An administrator's model filter: without it, the newest rows of other models are read past one by one.
            // Few distinct models, so rows are appended at the end of each model's range: cheap to write.
            "CREATE INDEX logs_model_time ON logs (model_name, created_at)",
            // Rows other than charged calls are few; these partial indexes cost the calls the ledger writes nothing.
            "CREATE INDEX logs_user_type ON logs (user_id, type, created_at) WHERE type <> 2",
            "CREATE INDEX logs_type ON logs (type, created_at) WHERE type <> 2",
            "DROP INDEX logs_user",
            "DROP INDEX logs_token",
            // Rows, tokens and quota per user, token, token name, model, type and hour, and the same per day, kept
            // exact in the transaction that writes the rows (absent ids are 0). Totals come from whole days and hours
            // here, and only from the rows of partial hours in logs (see LogTotals).
            totalsTable("log_hours", bucket: "hour"),
            "CREATE INDEX log_hours_token ON log_hours (token_id, hour)",
            "CREATE INDEX log_hours_time ON log_hours (hour)",
            totalsTable("log_days", bucket: "day"),
            "CREATE INDEX log_days_token ON log_days (token_id, day)",
            "CREATE INDEX log_days_time ON log_days (day)",
            totalsFromLogs("log_hours", bucket: "hour", seconds: 3600),
            """
            INSERT INTO log_days (user_id, day, token_id, token_name, model_name, type, count, prompt_tokens, completion_tokens, quota)
            SELECT user_id, hour - (hour % 86400 + 86400) % 86400, token_id, token_name, model_name, type,
                   SUM(count), SUM(prompt_tokens), SUM(completion_tokens), SUM(quota)
            FROM log_hours
            GROUP BY user_id, hour - (hour % 86400 + 86400) % 86400, token_id, token_name, model_name, type
            """,
            // The number of tokens each user owns, kept in the transactions that create, delete or bind tokens.
            "ALTER TABLE users ADD COLUMN token_count BIGINT NOT NULL DEFAULT 0",
            "UPDATE users SET token_count = (SELECT COUNT(*) FROM tokens WHERE tokens.user_id = users.id)",
        ]),
        Migration(version: 6, name: "log totals by the minute", statements: [
            // The finest level of totals: a range that starts or ends inside an hour counts at most a minute's rows
            // one by one, however busy the hour (LogTotals).
            totalsTable("log_minutes", bucket: "minute"),
            "CREATE INDEX log_minutes_token ON log_minutes (token_id, minute)",
            "CREATE INDEX log_minutes_time ON log_minutes (minute)",
            totalsFromLogs("log_minutes", bucket: "minute", seconds: 60),
        ]),
    ]
}

extension Schema {
    /// A table of log totals (migration 5): rows, tokens and quota per user, key, key name, model, type and `bucket`.
    /// Fills a table of log totals from the rows already in `logs` (the migration that adds the table).
    static func totalsFromLogs(_ name: String, bucket: String, seconds: Int) -> String {
        let of = "created_at - (created_at % \(seconds) + \(seconds)) % \(seconds)"
        return """
            INSERT INTO \(name) (user_id, \(bucket), token_id, token_name, model_name, type, count, prompt_tokens, completion_tokens, quota)
            SELECT COALESCE(user_id, 0), \(of), COALESCE(token_id, 0), token_name, model_name, type,
                   COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(quota)
            FROM logs
            GROUP BY COALESCE(user_id, 0), \(of), COALESCE(token_id, 0), token_name, model_name, type
            """
    }

    static func totalsTable(_ name: String, bucket: String) -> String {
        """
        CREATE TABLE \(name) (
            user_id BIGINT NOT NULL,
            \(bucket) BIGINT NOT NULL,
            token_id BIGINT NOT NULL,
            token_name TEXT NOT NULL,
            model_name TEXT NOT NULL,
            type INTEGER NOT NULL,
            count BIGINT NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            quota BIGINT NOT NULL,
            PRIMARY KEY (user_id, \(bucket), token_id, token_name, model_name, type)
        ){without_rowid}
        """
    }
}

extension Database {
    /// Brings the schema up to date, each step in its own transaction; safe when several instances start at once
    /// (PostgreSQL serialises them on an advisory lock, SQLite on its write lock).
    /// - Returns: the versions applied now.
    @discardableResult
    public func migrate() async throws -> [Int] {
        try await migrate(through: Schema.latestVersion)
    }

    /// Applies the steps up to `version` only (tests of a step's backfill).
    @discardableResult
    func migrate(through version: Int) async throws -> [Int] {
        let dialect = self.dialect
        try await withSQL { sql in
            try await sql.raw("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)").run()
        }
        var applied: [Int] = []
        for migration in Schema.migrations where migration.version <= version {
            let didApply = try await transaction { sql in
                if dialect == .postgres {
                    try await sql.raw("SELECT pg_advisory_xact_lock(727274)").run()
                }
                let done = try await sql.raw("SELECT version FROM schema_migrations WHERE version = \(bind: migration.version)").first()
                if done != nil { return false }
                for statement in migration.statements {
                    try await sql.raw(SQLQueryString(Schema.dialectSQL(statement, dialect))).run()
                }
                try await sql.raw("INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: Clock.nowSeconds()))").run()
                return true
            }
            if didApply { applied.append(migration.version) }
        }
        return applied
    }

    /// The highest applied schema version.
    public func schemaVersion() async throws -> Int {
        try await withSQL { sql in
            try await sql.raw("SELECT MAX(version) AS v FROM schema_migrations").first()?.decodeNil(column: "v") == false
                ? (try await sql.raw("SELECT MAX(version) AS v FROM schema_migrations").first()?.decode(column: "v", as: Int.self) ?? 0) : 0
        }
    }
}

/// Wall-clock time in the units the schema stores.
public enum Clock {
    /// Unix seconds.
    public static func nowSeconds() -> Int64 { Int64(Date().timeIntervalSince1970) }
    /// Unix milliseconds.
    public static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
