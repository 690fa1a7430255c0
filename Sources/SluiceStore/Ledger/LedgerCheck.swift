import SQLKit
import SluiceCore

/// Verifies that balances, spent amounts, leases and the call log agree, for every token and user.
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
                       (SELECT CAST(COALESCE(SUM(q.amount), 0) AS BIGINT) FROM quota_leases q WHERE q.subject = 'u' AND q.subject_id = u.id) AS held
                FROM users u
                """).all()
            report.users = userRows.count
            for row in userRows {
                let id = try row.decode(column: "id", as: Int64.self)
                try check(row, subject: "user \(id)", remainColumn: "quota", expectNoLeases: expectNoLeases, into: &report)
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
