import Foundation
import SQLKit
import SluiceCore

/// Upstream channels; their keys sealed like API keys.
public struct ChannelStore: Sendable {
    let database: Database
    let secrets: SecretBox

    /// Creates the store over `database`.
    public init(database: Database, secrets: SecretBox) {
        self.database = database
        self.secrets = secrets
    }

    static let columns = """
        id, name, type, base_url, key_enc, models, model_mapping, groups, priority, weight, status,
        connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms
        """

    func decode(_ row: any SQLRow) throws -> Channel {
        let mappingText = try row.decode(column: "model_mapping", as: String.self)
        let mapping = (try? JSON.parse(mappingText))?.object?.reduce(into: [String: String]()) { result, member in
            if let value = member.1.string { result[member.0] = value }
        } ?? [:]
        return Channel(id: try row.decode(column: "id", as: Int64.self),
                       name: try row.decode(column: "name", as: String.self),
                       type: Channel.Kind(rawValue: try row.decode(column: "type", as: String.self)) ?? .openai,
                       baseURL: try row.decode(column: "base_url", as: String.self),
                       key: secrets.open(try row.decode(column: "key_enc", as: String.self)) ?? "",
                       models: Token.parseModelList(try row.decode(column: "models", as: String.self)),
                       modelMapping: mapping,
                       groups: Token.parseModelList(try row.decode(column: "groups", as: String.self)),
                       priority: try row.decode(column: "priority", as: Int.self),
                       weight: try row.decode(column: "weight", as: Int.self),
                       status: try row.decode(column: "status", as: Int.self),
                       connectTimeoutMs: try row.decode(column: "connect_timeout_ms", as: Int.self),
                       firstByteTimeoutMs: try row.decode(column: "first_byte_timeout_ms", as: Int.self),
                       idleTimeoutMs: try row.decode(column: "idle_timeout_ms", as: Int.self))
    }

    static func mappingText(_ mapping: [String: String]) -> String {
        JSON.object(mapping.sorted { $0.key < $1.key }.map { ($0.key, JSON.string($0.value)) }).text
    }

    /// Every channel, by id.
    public func all() async throws -> [Channel] {
        try await database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: ChannelStore.columns) FROM channels ORDER BY id").all().map(decode)
        }
    }

    /// The channel with `id`.
    public func find(id: Int64) async throws -> Channel? {
        try await database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: ChannelStore.columns) FROM channels WHERE id = \(bind: id)").first().map(decode)
        }
    }

    /// Inserts a channel and answers its id.
    public func create(_ channel: Channel) async throws -> Int64 {
        let now = Clock.nowSeconds()
        return try await database.withSQL { sql in
            try await sql.raw("""
                INSERT INTO channels (name, type, base_url, key_enc, models, model_mapping, groups, priority, weight, status,
                    connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms, created_at, updated_at)
                VALUES (\(bind: channel.name), \(bind: channel.type.rawValue), \(bind: channel.baseURL), \(bind: secrets.seal(channel.key)),
                    \(bind: channel.models.joined(separator: ",")), \(bind: ChannelStore.mappingText(channel.modelMapping)),
                    \(bind: channel.groups.joined(separator: ",")), \(bind: channel.priority), \(bind: channel.weight), \(bind: channel.status),
                    \(bind: channel.connectTimeoutMs), \(bind: channel.firstByteTimeoutMs), \(bind: channel.idleTimeoutMs), \(bind: now), \(bind: now))
                RETURNING id
                """).first()?.decode(column: "id", as: Int64.self) ?? 0
        }
    }

    /// Saves a channel.
    public func update(_ channel: Channel) async throws {
        try await database.withSQL { sql in
            try await sql.raw("""
                UPDATE channels SET name = \(bind: channel.name), type = \(bind: channel.type.rawValue), base_url = \(bind: channel.baseURL),
                    key_enc = \(bind: secrets.seal(channel.key)), models = \(bind: channel.models.joined(separator: ",")),
                    model_mapping = \(bind: ChannelStore.mappingText(channel.modelMapping)), groups = \(bind: channel.groups.joined(separator: ",")),
                    priority = \(bind: channel.priority), weight = \(bind: channel.weight), status = \(bind: channel.status),
                    connect_timeout_ms = \(bind: channel.connectTimeoutMs), first_byte_timeout_ms = \(bind: channel.firstByteTimeoutMs),
                    idle_timeout_ms = \(bind: channel.idleTimeoutMs), updated_at = \(bind: Clock.nowSeconds())
                WHERE id = \(bind: channel.id)
                """).run()
        }
    }

    /// Deletes a channel.
    public func delete(id: Int64) async throws {
        try await database.withSQL { sql in try await sql.raw("DELETE FROM channels WHERE id = \(bind: id)").run() }
    }
}
