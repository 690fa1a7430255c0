import SQLKit
import SluiceCore

/// One level of the call log's totals: `log_days`, `log_hours` and `log_minutes` hold rows, tokens and quota per user,
/// token, token name, model, type and day, hour or minute (absent ids are 0). Every writer of `logs` adds its rows to
/// all three in the same transaction, so the totals are exact; queries take whole days, hours and minutes from here and
/// only the seconds of a partial minute from `logs`.
struct LogTotals: Sendable, Hashable {
    let table: String
    /// The column of the bucket: the unix second its day or hour starts (UTC).
    let column: String
    let seconds: Int64

    static let days = LogTotals(table: "log_days", column: "day", seconds: 86400)
    static let hours = LogTotals(table: "log_hours", column: "hour", seconds: 3600)
    static let minutes = LogTotals(table: "log_minutes", column: "minute", seconds: 60)
    /// The levels, coarsest first.
    static let levels = [days, hours, minutes]

    /// The start of the bucket of `time` (rounded down), as `created_at - (created_at % 3600 + 3600) % 3600` in SQL.
    func bucket(of time: Int64) -> Int64 { time - (time % seconds + seconds) % seconds }

    /// `bucket(of:)` in SQL, of the column `time`.
    func bucketSQL(of time: String) -> String { "\(time) - (\(time) % \(seconds) + \(seconds)) % \(seconds)" }

    struct Key: Hashable, Comparable {
        var userId: Int64
        var bucket: Int64
        var tokenId: Int64
        var tokenName: String
        var modelName: String
        var type: Int

        static func < (a: Key, b: Key) -> Bool {
            (a.userId, a.bucket, a.tokenId, a.tokenName, a.modelName, a.type) < (b.userId, b.bucket, b.tokenId, b.tokenName, b.modelName, b.type)
        }
    }

    struct Sums {
        var count: Int64 = 0
        var promptTokens: Int64 = 0
        var completionTokens: Int64 = 0
        var quota: Int64 = 0
    }

    /// Adds `logs` (rows being inserted into `logs` in the caller's transaction) to every level: one upsert row per
    /// distinct key, in key order, so that concurrent writers lock rows in the same order.
    static func add(_ logs: some Collection<LogEntry>, on sql: any SQLDatabase) async throws {
        guard !logs.isEmpty else { return }
        for level in levels { try await level.add(logs, on: sql) }
    }

    func add(_ logs: some Collection<LogEntry>, on sql: any SQLDatabase) async throws {
        var sums: [Key: Sums] = [:]
        for log in logs {
            let key = Key(userId: log.userId ?? 0, bucket: bucket(of: log.createdAt), tokenId: log.tokenId ?? 0, tokenName: log.tokenName,
                          modelName: log.modelName, type: log.type)
            sums[key, default: Sums()].count += 1
            sums[key, default: Sums()].promptTokens += Int64(log.promptTokens)
            sums[key, default: Sums()].completionTokens += Int64(log.completionTokens)
            sums[key, default: Sums()].quota += log.quota
        }
        let keys = sums.keys.sorted()
        for start in stride(from: 0, to: keys.count, by: 200) {
            var values: SQLQueryString = ""
            for (index, key) in keys[start..<min(start + 200, keys.count)].enumerated() {
                let sum = sums[key]!
                let row: SQLQueryString = """
                    (\(bind: key.userId), \(bind: key.bucket), \(bind: key.tokenId), \(bind: key.tokenName), \(bind: key.modelName), \(bind: key.type), \
                    \(bind: sum.count), \(bind: sum.promptTokens), \(bind: sum.completionTokens), \(bind: sum.quota))
                    """
                values = index == 0 ? row : "\(values), \(row)"
            }
            try await sql.raw("""
                INSERT INTO \(unsafeRaw: table) (user_id, \(unsafeRaw: column), token_id, token_name, model_name, type, count, prompt_tokens,
                    completion_tokens, quota)
                VALUES \(values)
                ON CONFLICT (user_id, \(unsafeRaw: column), token_id, token_name, model_name, type) DO UPDATE SET
                    count = \(unsafeRaw: table).count + excluded.count,
                    prompt_tokens = \(unsafeRaw: table).prompt_tokens + excluded.prompt_tokens,
                    completion_tokens = \(unsafeRaw: table).completion_tokens + excluded.completion_tokens,
                    quota = \(unsafeRaw: table).quota + excluded.quota
                """).run()
        }
    }
}

/// A stretch of time a log query reads from one source: a level of totals (its whole buckets from `from` through
/// `through`) or the rows of `logs` (`level` nil). Either bound may be open (nil).
struct LogSpan: Hashable {
    var level: LogTotals?
    var from: Int64?
    var through: Int64?

    /// The spans that cover `from...through`, newest first: whole buckets of the coarsest level that fit, then, in
    /// each partial bucket left at either end, those of the next level, and rows for what is left of an hour.
    static func cover(from: Int64?, through: Int64?, levels: ArraySlice<LogTotals> = LogTotals.levels[...]) -> [LogSpan] {
        guard let level = levels.first else { return [LogSpan(level: nil, from: from, through: through)] }
        let rest = levels.dropFirst()
        let first = from.map { level.bucket(of: $0) == $0 ? $0 : level.bucket(of: $0) + level.seconds }
        let end = through.map { level.bucket(of: $0 + 1) }  // exclusive
        if let first, let end, first >= end { return cover(from: from, through: through, levels: rest) }
        var spans: [LogSpan] = []
        if let through, let end, end <= through { spans += cover(from: end, through: through, levels: rest) }
        spans.append(LogSpan(level: level, from: first, through: end.map { $0 - 1 }))
        if let from, let first, from < first { spans += cover(from: from, through: first - 1, levels: rest) }
        return spans
    }
}

/// How one log query is answered: the filter's conditions on `logs` (steered to the index that serves it) and on the
/// levels of totals.
struct LogPlan {
    /// Index of `logs` that serves the filter: its equality columns, then `created_at`.
    enum Driver { case userType, type, token, userModel, user, model, time }

    private(set) var filter: LogFilter
    /// The keys the rows must have: the filter's, or those a key name was resolved to (`narrowed`); nil: any.
    private(set) var tokenIds: [Int64]?
    let dialect: Dialect
    /// The type every row must have (the filter's, or consume for usage totals); nil: any.
    let type: Int?
    /// Nothing can match (start after end, or two different types asked for).
    let matchesNothing: Bool
    /// The filter names an id below 1: the totals keep absent ids as 0, so only `logs` can answer exactly.
    let logsOnly: Bool
    private(set) var driver: Driver

    /// Filter timestamps are clamped to ±2^60 seconds (no row lies beyond), which keeps bucket arithmetic from overflowing.
    static let limit: Int64 = 1 << 60

    init(_ filter: LogFilter, dialect: Dialect, consumeOnly: Bool = false) {
        var filter = filter
        if let name = filter.tokenName, name.isEmpty { filter.tokenName = nil }
        if let model = filter.modelName, model.isEmpty { filter.modelName = nil }
        filter.start = filter.start.map { min(max($0, -Self.limit), Self.limit) }
        filter.end = filter.end.map { min(max($0, -Self.limit), Self.limit) }
        self.filter = filter
        tokenIds = filter.tokenId.map { [$0] }
        self.dialect = dialect
        let consume = LogEntry.Kind.consume
        type = consumeOnly ? consume : filter.type
        let emptyRange = filter.start.flatMap { start in filter.end.map { start > $0 } } ?? false
        matchesNothing = emptyRange || (consumeOnly && filter.type.map { $0 != consume } == true)
        logsOnly = (filter.userId.map { $0 < 1 } ?? false) || (filter.tokenId.map { $0 < 1 } ?? false)
        driver = Self.driver(filter, tokens: tokenIds != nil, type: type)
    }

    static func driver(_ filter: LogFilter, tokens: Bool, type: Int?) -> Driver {
        if let type, type != LogEntry.Kind.consume { return filter.userId != nil ? .userType : .type }
        if tokens { return .token }
        if filter.userId != nil { return filter.modelName != nil ? .userModel : .user }
        return filter.modelName != nil ? .model : .time
    }

    /// The most keys a key name is resolved to.
    static let maxNamedKeys = 16

    /// The plan for the same rows, with a key name (and no key id) resolved to the keys that logged rows under that
    /// name, as the daily totals show them (a name is usually one key's; renamed and deleted keys add more): those rows
    /// are then found through the keys' index. Rows logged without a key, or more than `maxNamedKeys` keys, leave the
    /// plan as it was.
    func narrowed(on sql: any SQLDatabase) async throws -> LogPlan {
        guard filter.tokenName != nil, tokenIds == nil, !logsOnly, !matchesNothing else { return self }
        let whole = LogSpan(level: .days, from: nil, through: nil)
        let ids = try await sql.raw("""
            SELECT DISTINCT token_id FROM log_days WHERE \(totalsWhere(.days, whole)) LIMIT \(bind: Self.maxNamedKeys + 1)
            """).all().map { try $0.decode(column: "token_id", as: Int64.self) }
        guard !ids.isEmpty, ids.count <= Self.maxNamedKeys, !ids.contains(0) else { return self }
        var plan = self
        plan.tokenIds = ids.sorted()
        plan.driver = Self.driver(filter, tokens: true, type: type)
        return plan
    }

    /// The plan with its end left open when no matching row lies after the end (as with `end_timestamp` = now): the
    /// hour the end falls in is then read whole from the totals instead of row by row from `logs`. The rows are the
    /// same, as of this query.
    func openingEnd(on sql: any SQLDatabase) async throws -> LogPlan {
        guard let end = filter.end, !logsOnly, !matchesNothing, end < Self.limit else { return self }
        var open = self
        open.filter.end = nil
        let later = try await sql.raw("SELECT 1 AS later FROM logs WHERE \(open.rowsWhere(from: end + 1)) LIMIT 1").first()
        return later == nil ? open : self
    }

    /// `column = id`, or `column IN (ids)`.
    private func oneOf(_ column: String, _ ids: [Int64]) -> SQLQueryString {
        if ids.count == 1 { return "\(unsafeRaw: column) = \(bind: ids[0])" }
        var list: SQLQueryString = "\(bind: ids[0])"
        for id in ids.dropFirst() { list = "\(list), \(bind: id)" }
        return "\(unsafeRaw: column) IN (\(list))"
    }

    /// The spans of the filter's time range, newest first (`levels`: the levels of totals to use).
    func spans(levels: ArraySlice<LogTotals> = LogTotals.levels[...]) -> [LogSpan] {
        LogSpan.cover(from: filter.start, through: filter.end, levels: levels)
    }

    /// A column in a condition: on SQLite a column the chosen index does not start with is written `+column`, which
    /// keeps SQLite's planner (which has no statistics) on the index chosen here. PostgreSQL plans with statistics.
    private func column(_ name: String, indexed: Bool) -> String {
        indexed || dialect != .sqlite ? name : "+" + name
    }

    /// The conditions on `logs` rows, with `created_at` also in `from...through` (each nil: unbounded).
    func rowsWhere(from: Int64? = nil, through: Int64? = nil) -> SQLQueryString {
        var clause: SQLQueryString = "1 = 1"
        if let userId = filter.userId {
            let indexed = [.userType, .userModel, .user].contains(driver)
            clause = "\(clause) AND \(unsafeRaw: column("user_id", indexed: indexed)) = \(bind: userId)"
        }
        if let tokenIds { clause = "\(clause) AND \(oneOf(column("token_id", indexed: driver == .token), tokenIds))" }
        if let name = filter.tokenName { clause = "\(clause) AND \(unsafeRaw: column("token_name", indexed: false)) = \(bind: name)" }
        if let model = filter.modelName {
            clause = "\(clause) AND \(unsafeRaw: column("model_name", indexed: driver == .userModel || driver == .model)) = \(bind: model)"
        }
        if let type {
            clause = "\(clause) AND \(unsafeRaw: column("type", indexed: driver == .userType || driver == .type)) = \(bind: type)"
            // The exact words of the partial indexes' condition, so that both planners see that they apply.
            if type != LogEntry.Kind.consume { clause = "\(clause) AND type <> 2" }
        }
        if let lower = [filter.start, from].compactMap({ $0 }).max() { clause = "\(clause) AND created_at >= \(bind: lower)" }
        if let upper = [filter.end, through].compactMap({ $0 }).min() { clause = "\(clause) AND created_at <= \(bind: upper)" }
        return clause
    }

    /// The conditions on a level's rows in the buckets of `span`.
    func totalsWhere(_ level: LogTotals, _ span: LogSpan) -> SQLQueryString {
        var clause: SQLQueryString = "1 = 1"
        if let userId = filter.userId {
            // With a token, the level's (token_id, bucket) index serves better than the key that starts with the user.
            clause = "\(clause) AND \(unsafeRaw: column("user_id", indexed: tokenIds == nil)) = \(bind: userId)"
        }
        if let tokenIds { clause = "\(clause) AND \(oneOf("token_id", tokenIds))" }
        if let name = filter.tokenName { clause = "\(clause) AND token_name = \(bind: name)" }
        if let model = filter.modelName { clause = "\(clause) AND model_name = \(bind: model)" }
        if let type { clause = "\(clause) AND type = \(bind: type)" }
        if let from = span.from { clause = "\(clause) AND \(unsafeRaw: level.column) >= \(bind: from)" }
        if let through = span.through { clause = "\(clause) AND \(unsafeRaw: level.column) <= \(bind: through)" }
        return clause
    }

    /// The number of rows that match in `span`.
    func count(_ span: LogSpan, on sql: any SQLDatabase) async throws -> Int {
        let query: SQLQueryString
        if let level = span.level {
            query = "SELECT CAST(SUM(count) AS BIGINT) AS n FROM \(unsafeRaw: level.table) WHERE \(totalsWhere(level, span))"
        } else {
            query = "SELECT COUNT(*) AS n FROM logs WHERE \(rowsWhere(from: span.from, through: span.through))"
        }
        return try await sql.raw(query).first()?.decode(column: "n", as: Int?.self) ?? 0
    }

    /// The rows that match in each bucket of `span` (a level's span), newest first; empty buckets left out.
    func buckets(_ span: LogSpan, on sql: any SQLDatabase) async throws -> [(start: Int64, count: Int)] {
        guard let level = span.level else { return [] }
        return try await sql.raw("""
            SELECT \(unsafeRaw: level.column) AS bucket, CAST(SUM(count) AS BIGINT) AS n FROM \(unsafeRaw: level.table)
            WHERE \(totalsWhere(level, span)) GROUP BY \(unsafeRaw: level.column) ORDER BY \(unsafeRaw: level.column) DESC
            """).all().map { (try $0.decode(column: "bucket", as: Int64.self), try $0.decode(column: "n", as: Int.self)) }
    }
}
