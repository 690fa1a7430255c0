import SQLKit
import SluiceCore

/// A login session: a user's, or one scoped to a single token (token login).
public struct Session: Sendable, Hashable {
    public var userId: Int64?
    public var tokenId: Int64?
    public var expiresAt: Int64

    public init(userId: Int64?, tokenId: Int64?, expiresAt: Int64) {
        self.userId = userId
        self.tokenId = tokenId
        self.expiresAt = expiresAt
    }
}

/// Sessions live in the database (shared by every instance), found by a hash of the cookie value.
public struct SessionStore: Sendable {
    let database: Database

    /// Creates the store over `database`.
    public init(database: Database) { self.database = database }

    /// Stores a session under the hash of its cookie value.
    public func create(idHash: String, session: Session) async throws {
        try await database.withSQL { sql in
            try await sql.raw("""
                INSERT INTO sessions (id_hash, user_id, token_id, created_at, expires_at)
                VALUES (\(bind: idHash), \(bind: session.userId), \(bind: session.tokenId), \(bind: Clock.nowSeconds()), \(bind: session.expiresAt))
                """).run()
        }
    }

    /// The live session with that hash.
    public func find(idHash: String) async throws -> Session? {
        try await database.withSQL { sql in
            guard let row = try await sql.raw("SELECT user_id, token_id, expires_at FROM sessions WHERE id_hash = \(bind: idHash)").first() else { return nil }
            let session = Session(userId: try row.decode(column: "user_id", as: Int64?.self),
                                  tokenId: try row.decode(column: "token_id", as: Int64?.self),
                                  expiresAt: try row.decode(column: "expires_at", as: Int64.self))
            return session.expiresAt > Clock.nowSeconds() ? session : nil
        }
    }

    /// Ends a session.
    public func delete(idHash: String) async throws {
        try await database.withSQL { sql in
            try await sql.raw("DELETE FROM sessions WHERE id_hash = \(bind: idHash)").run()
        }
    }

    /// Drops expired sessions.
    public func purgeExpired() async throws {
        try await database.withSQL { sql in
            try await sql.raw("DELETE FROM sessions WHERE expires_at <= \(bind: Clock.nowSeconds())").run()
        }
    }
}
