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

    /// The conditions of `filter` on `logs`, with no regard to indexes (the rare filters `LogPlan` leaves to `logs`).
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

    /// The page order: newest first, and among rows of the same second the last written first.
    static let order = "ORDER BY created_at DESC, id DESC"

    /// A page of log rows, newest first, and the exact number of rows that match.
    ///
    /// The total adds up the whole days, hours and minutes of the time range in `log_days`, `log_hours` and
    /// `log_minutes` and counts the rows of the partial minutes at either end in `logs`. The same totals, per day, hour
    /// and minute, locate the page: only the minutes that hold its rows are read from `logs`, so neither a deep page nor
    /// a filter that few rows match walks the rows before the page.
    public func list(_ filter: LogFilter, page: Page) async throws -> (items: [LogEntry], total: Int) {
        let plan = LogPlan(filter, dialect: database.dialect)
        if plan.matchesNothing { return ([], 0) }
        return try await database.withSQL { sql in
            let plan = try await plan.narrowed(on: sql).openingEnd(on: sql)
            if plan.logsOnly {
                let clause = LogStore.whereClause(plan.filter)
                let total = try await sql.raw("SELECT COUNT(*) AS n FROM logs WHERE \(clause)").first()?.decode(column: "n", as: Int.self) ?? 0
                let rows = try await sql.raw("""
                    SELECT \(unsafeRaw: LogStore.columns) FROM logs WHERE \(clause) \(unsafeRaw: LogStore.order)
                    LIMIT \(bind: page.size) OFFSET \(bind: page.offset)
                    """).all()
                return (try rows.map(LogStore.decode), total)
            }
            var spans: [(span: LogSpan, count: Int)] = []
            for span in plan.spans() { spans.append((span, try await plan.count(span, on: sql))) }
            let total = spans.reduce(0) { $0 + $1.count }
            let first = page.offset
            if first >= total { return ([], total) }
            var finder = PageFinder(plan: plan, sql: sql)
            let (newest, before) = try await finder.locate(first, in: spans)
            let (oldest, _) = try await finder.locate(min(first + page.size, total) - 1, in: spans)
            let rows = try await sql.raw("""
                SELECT \(unsafeRaw: LogStore.columns) FROM logs WHERE \(plan.rowsWhere(from: oldest.from, through: newest.through))
                \(unsafeRaw: LogStore.order) LIMIT \(bind: page.size) OFFSET \(bind: first - before)
                """).all()
            return (try rows.map(LogStore.decode), total)
        }
    }

    /// Finds where a row of a log query lies: in which day, then which hour, from the totals of each.
    struct PageFinder {
        let plan: LogPlan
        let sql: any SQLDatabase
        /// Buckets of spans read so far (the first and the last row of a page are often in the same ones).
        var buckets: [LogSpan: [(start: Int64, count: Int)]] = [:]

        /// The span of `logs` rows that holds row `index` (0: the newest) of `spans`, and how many rows come before it.
        mutating func locate(_ index: Int, in spans: [(span: LogSpan, count: Int)], before: Int = 0) async throws -> (LogSpan, Int) {
            var before = before
            for (span, count) in spans {
                guard index < before + count else {
                    before += count
                    continue
                }
                guard let level = span.level else { return (span, before) }
                if buckets[span] == nil { buckets[span] = try await plan.buckets(span, on: sql) }
                var passed = before
                for bucket in buckets[span]! {
                    if index < passed + bucket.count {
                        let finer = LogTotals.levels.drop { $0 != level }.dropFirst()
                        let inner = LogSpan.cover(from: bucket.start, through: bucket.start + level.seconds - 1, levels: finer)
                        var counted: [(span: LogSpan, count: Int)] = []
                        // A whole bucket is one span of the next level, with the bucket's count.
                        if inner.count == 1 { counted = [(inner[0], bucket.count)] } else {
                            for span in inner { counted.append((span, try await plan.count(span, on: sql))) }
                        }
                        return try await locate(index, in: counted, before: passed)
                    }
                    passed += bucket.count
                }
                // The buckets no longer add up to the span (rows were written in between): read the span's rows.
                return (LogSpan(level: nil, from: span.from, through: span.through), before)
            }
            return (LogSpan(level: nil, from: spans.last?.span.from, through: spans.first?.span.through), before)
        }
    }

    /// For each span, its rows of totals or of `logs` (one per log row), with the same columns (`bucket`: the day or
    /// hour; for log rows their hour), as one `UNION ALL` for the caller to add up.
    static func source(_ plan: LogPlan, _ spans: [LogSpan]) -> SQLQueryString {
        var union: SQLQueryString = ""
        for (index, span) in spans.enumerated() {
            let part: SQLQueryString
            if let level = span.level {
                part = """
                    SELECT \(unsafeRaw: level.column) AS bucket, model_name, token_id, count AS n, prompt_tokens AS p,
                           completion_tokens AS c, quota AS q
                    FROM \(unsafeRaw: level.table) WHERE \(plan.totalsWhere(level, span))
                    """
            } else {
                part = """
                    SELECT created_at - (created_at % 3600 + 3600) % 3600 AS bucket, model_name, COALESCE(token_id, 0) AS token_id, 1 AS n,
                           prompt_tokens AS p, completion_tokens AS c, quota AS q
                    FROM logs WHERE \(plan.rowsWhere(from: span.from, through: span.through))
                    """
            }
            union = index == 0 ? part : "\(union) UNION ALL \(part)"
        }
        return union
    }

    /// Charged calls per hour, model and token (the UTC hours of `created_at`, rounded down): whole hours from
    /// `log_hours`, partial ones from `logs`.
    public func hourly(_ filter: LogFilter) async throws -> [HourlyUsage] {
        let plan = LogPlan(filter, dialect: database.dialect, consumeOnly: true)
        if plan.matchesNothing { return [] }
        return try await database.withSQL { sql in
            let plan = try await plan.narrowed(on: sql).openingEnd(on: sql)
            let query: SQLQueryString
            if plan.logsOnly {
                query = """
                    SELECT created_at - (created_at % 3600 + 3600) % 3600 AS hour, model_name, COALESCE(token_id, 0) AS token_id, COUNT(*) AS n,
                           CAST(SUM(prompt_tokens) AS BIGINT) AS p, CAST(SUM(completion_tokens) AS BIGINT) AS c, CAST(SUM(quota) AS BIGINT) AS q
                    FROM logs WHERE \(LogStore.whereClause(plan.filter)) AND type = \(bind: LogEntry.Kind.consume)
                    GROUP BY created_at - (created_at % 3600 + 3600) % 3600, model_name, COALESCE(token_id, 0) ORDER BY hour, model_name, token_id
                    """
            } else {
                query = """
                    SELECT bucket AS hour, model_name, token_id, CAST(SUM(n) AS BIGINT) AS n, CAST(SUM(p) AS BIGINT) AS p,
                           CAST(SUM(c) AS BIGINT) AS c, CAST(SUM(q) AS BIGINT) AS q
                    FROM (\(LogStore.source(plan, plan.spans(levels: [LogTotals.hours])))) parts
                    GROUP BY bucket, model_name, token_id ORDER BY hour, model_name, token_id
                    """
            }
            return try await sql.raw(query).all().map { row in
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

    /// Totals of charged calls: whole days, hours and minutes from the totals, partial minutes from `logs`.
    public func totals(_ filter: LogFilter) async throws -> UsageTotals {
        let plan = LogPlan(filter, dialect: database.dialect, consumeOnly: true)
        if plan.matchesNothing { return UsageTotals(count: 0, promptTokens: 0, completionTokens: 0, quota: 0) }
        return try await database.withSQL { sql in
            let plan = try await plan.narrowed(on: sql).openingEnd(on: sql)
            let query: SQLQueryString
            if plan.logsOnly {
                query = """
                    SELECT COUNT(*) AS n, CAST(SUM(prompt_tokens) AS BIGINT) AS p, CAST(SUM(completion_tokens) AS BIGINT) AS c,
                           CAST(SUM(quota) AS BIGINT) AS q
                    FROM logs WHERE \(LogStore.whereClause(plan.filter)) AND type = \(bind: LogEntry.Kind.consume)
                    """
            } else {
                query = """
                    SELECT CAST(SUM(n) AS BIGINT) AS n, CAST(SUM(p) AS BIGINT) AS p, CAST(SUM(c) AS BIGINT) AS c, CAST(SUM(q) AS BIGINT) AS q
                    FROM (\(LogStore.source(plan, plan.spans()))) parts
                    """
            }
            let row = try await sql.raw(query).first()
            return UsageTotals(count: try row?.decode(column: "n", as: Int64?.self) ?? 0,
                               promptTokens: try row?.decode(column: "p", as: Int64?.self) ?? 0,
                               completionTokens: try row?.decode(column: "c", as: Int64?.self) ?? 0,
                               quota: try row?.decode(column: "q", as: Int64?.self) ?? 0)
        }
    }

    /// Inserts one row at once (management events: top-ups, bindings), and adds it to the totals.
    public func insert(_ entry: LogEntry) async throws {
        try await database.transaction { sql in
            try await LogRows.insert([entry], on: sql)
            try await LogTotals.add([entry], on: sql)
        }
    }
}
