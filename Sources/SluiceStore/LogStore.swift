import SQLKit
import SluiceCore

/// Filters of a log query.
public struct LogFilter: Sendable {
    public var userId: Int64?
    public var tokenId: Int64?
    public var tokenName: String?
    public var modelName: String?
    public var type: Int?
    public var start: Int64?
    public var end: Int64?

    public init(userId: Int64? = nil, tokenId: Int64? = nil, tokenName: String? = nil, modelName: String? = nil, type: Int? = nil,
                start: Int64? = nil, end: Int64? = nil) {
        self.userId = userId
        self.tokenId = tokenId
        self.tokenName = tokenName
        self.modelName = modelName
        self.type = type
        self.start = start
        self.end = end
    }
}

/// One hour of usage of one model through one token.
public struct HourlyUsage: Sendable, Hashable {
    public var hour: Int64
    public var modelName: String
    public var tokenId: Int64
    public var count: Int64
    public var promptTokens: Int64
    public var completionTokens: Int64
    public var quota: Int64
}

/// Totals of a token's or user's spending.
public struct UsageTotals: Sendable, Hashable {
    public var count: Int64
    public var promptTokens: Int64
    public var completionTokens: Int64
    public var quota: Int64
}

/// The call log: written by the ledger's group commits, read here.
public struct LogStore: Sendable {
    let database: Database

    /// Creates the store over `database`.
    public init(database: Database) { self.database = database }

    static let columns = """
        id, created_at, type, user_id, token_id, token_name, model_name, group_name, channel_id, channel_name,
        prompt_tokens, completion_tokens, quota, use_time_ms, is_stream, ip, content, request_id
        """

    static func decode(_ row: any SQLRow) throws -> LogEntry {
        var entry = LogEntry(createdAt: try row.decode(column: "created_at", as: Int64.self),
                             type: try row.decode(column: "type", as: Int.self),
                             userId: try row.decode(column: "user_id", as: Int64?.self),
                             tokenId: try row.decode(column: "token_id", as: Int64?.self),
                             tokenName: try row.decode(column: "token_name", as: String.self),
                             modelName: try row.decode(column: "model_name", as: String.self),
                             group: try row.decode(column: "group_name", as: String.self),
                             channelId: try row.decode(column: "channel_id", as: Int64?.self),
                             channelName: try row.decode(column: "channel_name", as: String.self),
                             promptTokens: try row.decode(column: "prompt_tokens", as: Int.self),
                             completionTokens: try row.decode(column: "completion_tokens", as: Int.self),
                             quota: try row.decode(column: "quota", as: Int64.self),
                             useTimeMs: try row.decode(column: "use_time_ms", as: Int.self),
                             isStream: try row.decode(column: "is_stream", as: Int.self) != 0,
                             ip: try row.decode(column: "ip", as: String.self),
                             content: try row.decode(column: "content", as: String.self),
                             requestId: try row.decode(column: "request_id", as: String.self))
        entry.id = try row.decode(column: "id", as: Int64.self)
        return entry
    }

    static func whereClause(_ filter: LogFilter) -> SQLQueryString {
        var clause: SQLQueryString = "1 = 1"
        if let userId = filter.userId { clause = "\(clause) AND user_id = \(bind: userId)" }
        if let tokenId = filter.tokenId { clause = "\(clause) AND token_id = \(bind: tokenId)" }
        if let name = filter.tokenName, !name.isEmpty { clause = "\(clause) AND token_name = \(bind: name)" }
        if let model = filter.modelName, !model.isEmpty { clause = "\(clause) AND model_name = \(bind: model)" }
        if let type = filter.type { clause = "\(clause) AND type = \(bind: type)" }
        if let start = filter.start { clause = "\(clause) AND created_at >= \(bind: start)" }
        if let end = filter.end { clause = "\(clause) AND created_at <= \(bind: end)" }
        return clause
    }

    /// A page of log rows, newest first, and the number of rows that match.
    public func list(_ filter: LogFilter, page: Page) async throws -> (items: [LogEntry], total: Int) {
        try await database.withSQL { sql in
            let clause = LogStore.whereClause(filter)
            let total = try await sql.raw("SELECT COUNT(*) AS n FROM logs WHERE \(clause)").first()?.decode(column: "n", as: Int.self) ?? 0
            let rows = try await sql.raw("""
                SELECT \(unsafeRaw: LogStore.columns) FROM logs WHERE \(clause) ORDER BY id DESC LIMIT \(bind: page.size) OFFSET \(bind: page.offset)
                """).all()
            return (try rows.map(LogStore.decode), total)
        }
    }

    /// Usage per hour, model and token.
    public func hourly(_ filter: LogFilter) async throws -> [HourlyUsage] {
        try await database.withSQL { sql in
            var clause = LogStore.whereClause(filter)
            clause = "\(clause) AND type = \(bind: LogEntry.Kind.consume)"
            return try await sql.raw("""
                SELECT (created_at / 3600) * 3600 AS hour, model_name, token_id, COUNT(*) AS n, CAST(SUM(prompt_tokens) AS BIGINT) AS p,
                       CAST(SUM(completion_tokens) AS BIGINT) AS c, CAST(SUM(quota) AS BIGINT) AS q
                FROM logs WHERE \(clause) GROUP BY (created_at / 3600) * 3600, model_name, token_id ORDER BY hour, model_name, token_id
                """).all().map { row in
                HourlyUsage(hour: try row.decode(column: "hour", as: Int64.self),
                            modelName: try row.decode(column: "model_name", as: String.self),
                            tokenId: try row.decode(column: "token_id", as: Int64?.self) ?? 0,
                            count: try row.decode(column: "n", as: Int64.self),
                            promptTokens: try row.decode(column: "p", as: Int64?.self) ?? 0,
                            completionTokens: try row.decode(column: "c", as: Int64?.self) ?? 0,
                            quota: try row.decode(column: "q", as: Int64?.self) ?? 0)
            }
        }
    }

    /// Totals of charged calls.
    public func totals(_ filter: LogFilter) async throws -> UsageTotals {
        try await database.withSQL { sql in
            var clause = LogStore.whereClause(filter)
            clause = "\(clause) AND type = \(bind: LogEntry.Kind.consume)"
            let row = try await sql.raw("""
                SELECT COUNT(*) AS n, CAST(SUM(prompt_tokens) AS BIGINT) AS p, CAST(SUM(completion_tokens) AS BIGINT) AS c, CAST(SUM(quota) AS BIGINT) AS q FROM logs WHERE \(clause)
                """).first()
            return UsageTotals(count: try row?.decode(column: "n", as: Int64?.self) ?? 0,
                               promptTokens: try row?.decode(column: "p", as: Int64?.self) ?? 0,
                               completionTokens: try row?.decode(column: "c", as: Int64?.self) ?? 0,
                               quota: try row?.decode(column: "q", as: Int64?.self) ?? 0)
        }
    }

    /// Inserts one row at once (management events: top-ups, bindings).
    public func insert(_ entry: LogEntry) async throws {
        try await database.withSQL { sql in
            try await sql.raw("""
                INSERT INTO logs (created_at, type, user_id, token_id, token_name, model_name, group_name, channel_id, channel_name,
                    prompt_tokens, completion_tokens, quota, use_time_ms, is_stream, ip, content, request_id)
                VALUES (\(bind: entry.createdAt), \(bind: entry.type), \(bind: entry.userId), \(bind: entry.tokenId), \(bind: entry.tokenName),
                    \(bind: entry.modelName), \(bind: entry.group), \(bind: entry.channelId), \(bind: entry.channelName), \(bind: entry.promptTokens),
                    \(bind: entry.completionTokens), \(bind: entry.quota), \(bind: entry.useTimeMs), \(bind: entry.isStream ? 1 : 0),
                    \(bind: entry.ip), \(bind: entry.content), \(bind: entry.requestId))
                """).run()
        }
    }
}
