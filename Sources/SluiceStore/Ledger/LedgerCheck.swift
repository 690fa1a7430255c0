import SQLKit
import SluiceCore

/// Verifies that balances, spent amounts, leases and the call log agree, for every token and user; and that the hourly
/// and daily log totals and the users' token counts agree with the rows they count.
public struct LedgerCheck: Sendable {
    /// One disagreement.
    public struct Problem: Sendable, CustomStringConvertible {
        public let subject: String
        public let detail: String
        public var description: String { "\(subject): \(detail)" }
    }

    /// What a check found.
    public struct Report: Sendable {
        public var tokens = 0
        public var users = 0
        public var logs = 0
        public var problems: [Problem] = []
        public var ok: Bool { problems.isEmpty }
    }

    let database: Database

    public init(database: Database) { self.database = database }

    /// Checks, for every token: `used_quota` equals the sum of its charged calls, nothing is negative, and `leased`
    /// equals the leases instances hold on it; for every user likewise with the calls charged to their balance.
    /// `activeInstances` false (the default) also expects no lease at all: run it with every instance stopped.
    /// Then: every row of `log_minutes` equals the rows of `logs` it counts (and no logged minute is missing), every row
    /// of `log_hours` the minutes it adds up, every row of `log_days` the hours, and each user's `token_count` the tokens
    /// they own.
    public func run(expectNoLeases: Bool = false) async throws -> Report {
        try await database.withSQL { sql in
            var report = Report()
            let consume = LogEntry.Kind.consume
            report.logs = try await sql.raw("SELECT COUNT(*) AS n FROM logs").first()?.decode(column: "n", as: Int.self) ?? 0
            let tokenRows = try await sql.raw("""
                SELECT t.id, t.remain_quota, t.used_quota, t.leased,
                       (SELECT CAST(COALESCE(SUM(l.quota), 0) AS BIGINT) FROM logs l WHERE l.token_id = t.id AND l.type = \(bind: consume)) AS logged,
                       (SELECT CAST(COALESCE(SUM(q.amount), 0) AS BIGINT) FROM quota_leases q WHERE q.subject = 't' AND q.subject_id = t.id) AS held
                FROM tokens t
                """).all()
            report.tokens = tokenRows.count
            for row in tokenRows {
                let id = try row.decode(column: "id", as: Int64.self)
                try check(row, subject: "token \(id)", remainColumn: "remain_quota", expectNoLeases: expectNoLeases, into: &report)
            }
            let userRows = try await sql.raw("""
                SELECT u.id, u.quota, u.used_quota, u.leased,
                       (SELECT CAST(COALESCE(SUM(l.quota), 0) AS BIGINT) FROM logs l WHERE l.user_id = u.id AND l.type = \(bind: consume) AND l.user_charged = 1) AS logged,
                       (SELECT CAST(COALESCE(SUM(q.amount), 0) AS BIGINT) FROM quota_leases q WHERE q.subject = 'u' AND q.subject_id = u.id) AS held,
                       u.token_count, (SELECT COUNT(*) FROM tokens t WHERE t.user_id = u.id) AS owned
                FROM users u
                """).all()
            report.users = userRows.count
            for row in userRows {
                let id = try row.decode(column: "id", as: Int64.self)
                try check(row, subject: "user \(id)", remainColumn: "quota", expectNoLeases: expectNoLeases, into: &report)
                let owned = try row.decode(column: "owned", as: Int64.self), counted = try row.decode(column: "token_count", as: Int64.self)
                if owned != counted {
                    report.problems.append(Problem(subject: "user \(id)", detail: "token_count \(counted) but owns \(owned) tokens"))
                }
            }
            // Each level of totals against the level below it (the finest against the rows): the keys and sums of
            // each side that the other lacks.
            let keys = "token_name, model_name, type"
            let sums = """
                CAST(SUM(count) AS BIGINT) AS count, CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens,
                CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, CAST(SUM(quota) AS BIGINT) AS quota
                """
            func stored(_ level: LogTotals) -> String {
                "SELECT user_id, \(level.column) AS bucket, token_id, \(keys), count, prompt_tokens, completion_tokens, quota FROM \(level.table)"
            }
            func rolledUp(_ finer: LogTotals, into level: LogTotals) -> String {
                let bucket = level.bucketSQL(of: finer.column)
                return "SELECT user_id, \(bucket) AS bucket, token_id, \(keys), \(sums) FROM \(finer.table) GROUP BY user_id, \(bucket), token_id, \(keys)"
            }
            let finest = LogTotals.levels[LogTotals.levels.count - 1]
            let bucketOfRow = finest.bucketSQL(of: "created_at")
            let rows = """
                SELECT COALESCE(user_id, 0) AS user_id, \(bucketOfRow) AS bucket, COALESCE(token_id, 0) AS token_id, \(keys),
                       COUNT(*) AS count, CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens,
                       CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, CAST(SUM(quota) AS BIGINT) AS quota
                FROM logs GROUP BY COALESCE(user_id, 0), \(bucketOfRow), COALESCE(token_id, 0), \(keys)
                """
            var comparisons = [("log \(finest.column)", rows, "logs", stored(finest), finest.table)]
            for (level, finer) in zip(LogTotals.levels, LogTotals.levels.dropFirst()) {
                comparisons.append(("log \(level.column)", rolledUp(finer, into: level), finer.table, stored(level), level.table))
            }
            for (subject, counted, countedName, stored, storedName) in comparisons {
                for (query, side) in [("\(counted) EXCEPT \(stored)", countedName), ("\(stored) EXCEPT \(counted)", storedName)] {
                    for row in try await sql.raw("\(unsafeRaw: query)").all() {
                        let user = try row.decode(column: "user_id", as: Int64.self), bucket = try row.decode(column: "bucket", as: Int64.self)
                        let token = try row.decode(column: "token_id", as: Int64.self), model = try row.decode(column: "model_name", as: String.self)
                        let type = try row.decode(column: "type", as: Int.self), count = try row.decode(column: "count", as: Int64.self)
                        let quota = try row.decode(column: "quota", as: Int64.self)
                        report.problems.append(Problem(subject: "\(subject) \(bucket) of user \(user), token \(token), model '\(model)', type \(type)",
                                                       detail: "\(side) has \(count) rows and \(quota) quota that the other side does not"))
                    }
                }
            }
            return report
        }
    }

    private func check(_ row: any SQLRow, subject: String, remainColumn: String, expectNoLeases: Bool, into report: inout Report) throws {
        let remain = try row.decode(column: remainColumn, as: Int64.self)
        let used = try row.decode(column: "used_quota", as: Int64.self)
        let leased = try row.decode(column: "leased", as: Int64.self)
        let logged = try row.decode(column: "logged", as: Int64.self)
        let held = try row.decode(column: "held", as: Int64.self)
        if remain < 0 { report.problems.append(Problem(subject: subject, detail: "remaining balance is negative (\(remain))")) }
        if used != logged { report.problems.append(Problem(subject: subject, detail: "used_quota \(used) but its logged charges add up to \(logged)")) }
        if leased < 0 || leased > max(remain, 0) { report.problems.append(Problem(subject: subject, detail: "leased \(leased) outside 0...\(remain)")) }
        if leased != held { report.problems.append(Problem(subject: subject, detail: "leased \(leased) but instances hold \(held)")) }
        if expectNoLeases, leased != 0 { report.problems.append(Problem(subject: subject, detail: "\(leased) still leased with no instance running")) }
    }
}
