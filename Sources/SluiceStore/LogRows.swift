import PostgresKit
import SQLKit
import SQLiteKit
import SluiceCore

/// Writes rows of the call log: the group commit's hundreds a flush, and the single management rows.
///
/// The values are bound straight through the driver (SQLite's or PostgreSQL's own connection) in statements of up to
/// `chunk` rows whose text is built once. SQLKit's query builder would box every value, serialize the statement anew
/// and convert each value again, which cost a relayed call about 20 allocations and a tenth of the server's time
/// (docs/performance.md, "fifth pass").
enum LogRows {
    static let columns = ["created_at", "type", "user_id", "token_id", "token_name", "model_name", "group_name", "channel_id",
                          "channel_name", "prompt_tokens", "completion_tokens", "quota", "use_time_ms", "is_stream", "ip", "content",
                          "request_id", "user_charged"]
    /// Rows per statement: 7,200 bound values, within both databases' limits.
    static let chunk = 400

    /// Inserts `logs` on `connection` (in the caller's transaction).
    static func insert(_ logs: [LogEntry], on connection: DatabaseConnection) async throws {
        for start in stride(from: 0, to: logs.count, by: chunk) {
            let rows = logs[start..<min(start + chunk, logs.count)]
            switch connection.driver {
            case .sqlite(let sqlite):
                var binds: [SQLiteData] = []
                binds.reserveCapacity(rows.count * columns.count)
                for log in rows { append(log, to: &binds) }
                _ = try await sqlite.query(statement(rows: rows.count, postgres: false), binds)
            case .postgres(let postgres):
                var binds = PostgresBindings(capacity: rows.count * columns.count)
                for log in rows { append(log, to: &binds) }
                _ = try await postgres.query(PostgresQuery(unsafeSQL: statement(rows: rows.count, postgres: true), binds: binds),
                                             logger: connection.logger)
            }
        }
    }

    private static func append(_ log: LogEntry, to binds: inout [SQLiteData]) {
        binds.append(.integer(Int(log.createdAt)))
        binds.append(.integer(log.type))
        binds.append(log.userId.map { .integer(Int($0)) } ?? .null)
        binds.append(log.tokenId.map { .integer(Int($0)) } ?? .null)
        binds.append(.text(log.tokenName))
        binds.append(.text(log.modelName))
        binds.append(.text(log.group))
        binds.append(log.channelId.map { .integer(Int($0)) } ?? .null)
        binds.append(.text(log.channelName))
        binds.append(.integer(log.promptTokens))
        binds.append(.integer(log.completionTokens))
        binds.append(.integer(Int(log.quota)))
        binds.append(.integer(log.useTimeMs))
        binds.append(.integer(log.isStream ? 1 : 0))
        binds.append(.text(log.ip))
        binds.append(.text(log.content))
        binds.append(.text(log.requestId))
        binds.append(.integer(log.userCharged ? 1 : 0))
    }

    private static func append(_ log: LogEntry, to binds: inout PostgresBindings) {
        binds.append(log.createdAt)
        binds.append(Int64(log.type))
        binds.append(log.userId)
        binds.append(log.tokenId)
        binds.append(log.tokenName)
        binds.append(log.modelName)
        binds.append(log.group)
        binds.append(log.channelId)
        binds.append(log.channelName)
        binds.append(Int64(log.promptTokens))
        binds.append(Int64(log.completionTokens))
        binds.append(log.quota)
        binds.append(Int64(log.useTimeMs))
        binds.append(Int64(log.isStream ? 1 : 0))
        binds.append(log.ip)
        binds.append(log.content)
        binds.append(log.requestId)
        binds.append(Int64(log.userCharged ? 1 : 0))
    }

    private static let fullSQLite = build(rows: chunk, postgres: false)
    private static let fullPostgres = build(rows: chunk, postgres: true)

    /// `INSERT INTO logs (...) VALUES (...), ...` for `rows` rows, with `?` (SQLite) or `$n` (PostgreSQL) placeholders.
    static func statement(rows: Int, postgres: Bool) -> String {
        if rows == chunk { return postgres ? fullPostgres : fullSQLite }
        return build(rows: rows, postgres: postgres)
    }

    private static func build(rows: Int, postgres: Bool) -> String {
        var text = "INSERT INTO logs (\(columns.joined(separator: ", "))) VALUES "
        text.reserveCapacity(text.utf8.count + rows * columns.count * 6)
        var number = 0
        for row in 0..<rows {
            text += row == 0 ? "(" : ", ("
            for column in 0..<columns.count {
                number += 1
                if column > 0 { text += ", " }
                text += postgres ? "$\(number)" : "?"
            }
            text += ")"
        }
        return text
    }
}
