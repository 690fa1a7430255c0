import SQLKit

/// Small named values kept in the database (install-wide settings).
public struct SettingStore: Sendable {
    let database: Database

    /// Creates the store over `database`.
    public init(database: Database) { self.database = database }

    /// The value of `name`.
    public func get(_ name: String) async throws -> String? {
        try await database.withSQL { sql in
            try await sql.raw("SELECT value FROM settings WHERE name = \(bind: name)").first()?.decode(column: "value", as: String.self)
        }
    }

    /// Sets `name` to `value` unless it is set already; answers the value in force.
    public func setIfAbsent(_ name: String, _ value: String) async throws -> String {
        try await database.transaction { sql in
            if let existing = try await sql.raw("SELECT value FROM settings WHERE name = \(bind: name)").first() {
                return try existing.decode(column: "value", as: String.self)
            }
            try await sql.raw("INSERT INTO settings (name, value) VALUES (\(bind: name), \(bind: value))").run()
            return value
        }
    }
}
