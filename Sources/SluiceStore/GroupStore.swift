import SQLKit
import SluiceCore

/// Groups: pricing tiers with their whitelist and limits.
public struct GroupStore: Sendable {
    let database: Database

    /// Creates the store over `database`.
    public init(database: Database) { self.database = database }

    static let columns = "id, name, description, ratio_ppm, models, rpm, tpm, selectable"

    static func decode(_ row: any SQLRow) throws -> Group {
        Group(id: try row.decode(column: "id", as: Int64.self),
              name: try row.decode(column: "name", as: String.self),
              description: try row.decode(column: "description", as: String.self),
              ratio: Micros(raw: try row.decode(column: "ratio_ppm", as: Int64.self)),
              models: Token.parseModelList(try row.decode(column: "models", as: String.self)),
              rpm: try row.decode(column: "rpm", as: Int.self),
              tpm: try row.decode(column: "tpm", as: Int.self),
              selectable: try row.decode(column: "selectable", as: Int.self) != 0)
    }

    /// Every group, by id.
    public func all() async throws -> [Group] {
        try await database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: GroupStore.columns) FROM user_groups ORDER BY id").all().map(GroupStore.decode)
        }
    }

    /// The group called `name`.
    public func find(name: String) async throws -> Group? {
        try await database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: GroupStore.columns) FROM user_groups WHERE name = \(bind: name)").first().map(GroupStore.decode)
        }
    }

    /// The group with `id`.
    public func find(id: Int64) async throws -> Group? {
        try await database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: GroupStore.columns) FROM user_groups WHERE id = \(bind: id)").first().map(GroupStore.decode)
        }
    }

    /// Inserts a group; nil when the name is taken.
    public func create(_ group: Group) async throws -> Group? {
        let now = Clock.nowSeconds()
        return try await database.withSQL { sql in
            if try await sql.raw("SELECT id FROM user_groups WHERE name = \(bind: group.name)").first() != nil { return nil }
            return try await sql.raw("""
                INSERT INTO user_groups (name, description, ratio_ppm, models, rpm, tpm, selectable, created_at, updated_at)
                VALUES (\(bind: group.name), \(bind: group.description), \(bind: group.ratio.raw), \(bind: group.models.joined(separator: ",")),
                        \(bind: group.rpm), \(bind: group.tpm), \(bind: group.selectable ? 1 : 0), \(bind: now), \(bind: now))
                RETURNING \(unsafeRaw: GroupStore.columns)
                """).first().map(GroupStore.decode)
        }
    }

    /// Saves a group's fields (the name stays).
    public func update(_ group: Group) async throws {
        try await database.withSQL { sql in
            try await sql.raw("""
                UPDATE user_groups SET description = \(bind: group.description), ratio_ppm = \(bind: group.ratio.raw),
                    models = \(bind: group.models.joined(separator: ",")), rpm = \(bind: group.rpm), tpm = \(bind: group.tpm),
                    selectable = \(bind: group.selectable ? 1 : 0), updated_at = \(bind: Clock.nowSeconds())
                WHERE id = \(bind: group.id)
                """).run()
        }
    }

    /// How many users have `name` as their group.
    public func memberCount(name: String) async throws -> Int {
        try await database.withSQL { sql in
            try await sql.raw("SELECT COUNT(*) AS n FROM users WHERE group_name = \(bind: name)").first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    /// Deletes a group.
    public func delete(id: Int64) async throws {
        try await database.withSQL { sql in
            try await sql.raw("DELETE FROM user_groups WHERE id = \(bind: id)").run()
        }
    }
}
