@preconcurrency import AsyncKit
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SQLiteKit
import Synchronization

/// Where the data lives, parsed from `sqlite:PATH` or `postgres://user:pass@host:port/db`.
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    /// Parses the `--database` value.
    public init(parsing text: String) throws {
        if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw DatabaseError.badLocation("sqlite: needs a path, as in sqlite:data/sluice.sqlite") }
            self = .sqlite(path: path)
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else {
            throw DatabaseError.badLocation("database must be sqlite:PATH or postgres://user:pass@host:port/db, not '\(text)'")
        }
    }

    /// The location with any password hidden, for logs.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let url):
            guard var parts = URLComponents(string: url) else { return "postgres://..." }
            if parts.password != nil { parts.password = "***" }
            return parts.string ?? "postgres://..."
        }
    }
}

/// Storage errors that are the operator's to fix.
public enum DatabaseError: Error, CustomStringConvertible {
    case badLocation(String)
    case migration(String)

    public var description: String {
        switch self {
        case .badLocation(let text), .migration(let text): return text
        }
    }
}

/// The SQL dialect in use; most statements are the same in both.
public enum Dialect: Sendable {
    case sqlite, postgres
}

/// One pool of connections to SQLite or PostgreSQL, used through SQLKit by every repository.
///
/// Transactions take a connection of their own; on SQLite they begin IMMEDIATE so that writers queue on the
/// busy timeout instead of failing on lock upgrades.
/// `@unchecked`: AsyncKit's pools guard their state with a lock but do not declare `Sendable`.
public final class Database: @unchecked Sendable {
    /// Which SQL the statements must speak.
    public let dialect: Dialect
    /// Where the data lives.
    public let location: DatabaseLocation
    private let sqlitePool: EventLoopGroupConnectionPool<SluiceSQLiteSource>?
    private let postgresPool: EventLoopGroupConnectionPool<PostgresConnectionSource>?
    private let postgresConfiguration: SQLPostgresConfiguration?
    let logger: Logger
    private let closed = Mutex(false)

    /// Opens a pool (connections are made on first use). Creates the folder of a SQLite file.
    public init(location: DatabaseLocation, logger: Logger, maxConnections: Int = 8) throws {
        self.location = location
        self.logger = logger
        let group = MultiThreadedEventLoopGroup.singleton
        let loops = max(1, System.coreCount)
        switch location {
        case .sqlite(let path):
            let url = URL(fileURLWithPath: path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            dialect = .sqlite
            // One connection, on one event loop: SQLite takes one writer at a time anyway, and queueing here instead
            // of busy-waiting in SQLite keeps blocked threads from starving the one that holds the lock.
            let source = SluiceSQLiteSource(path: url.path, threadPool: Self.sqliteThreads)
            sqlitePool = EventLoopGroupConnectionPool(source: source, maxConnectionsPerEventLoop: 1,
                                                      requestTimeout: .seconds(60), pruneInterval: nil, logger: logger, on: group.next())
            postgresPool = nil
            postgresConfiguration = nil
        case .postgres(let url):
            dialect = .postgres
            var configuration = try SQLPostgresConfiguration(url: url)
            configuration.coreConfiguration.options.tlsServerName = nil
            postgresConfiguration = configuration
            postgresPool = EventLoopGroupConnectionPool(source: PostgresConnectionSource(sqlConfiguration: configuration),
                                                        maxConnectionsPerEventLoop: max(1, maxConnections / loops),
                                                        requestTimeout: .seconds(30), pruneInterval: nil, logger: logger, on: group)
            sqlitePool = nil
        }
    }

    /// Threads for SQLite's blocking calls, apart from the shared pool that serves files.
    static let sqliteThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        return pool
    }()

    /// Runs `body` with a connection of the pool.
    public func withSQL<T: Sendable>(_ body: @Sendable (DatabaseConnection) async throws -> T) async throws -> T {
        if let sqlitePool {
            let connection = try await sqlitePool.requestConnection(logger: logger).get()
            defer { sqlitePool.releaseConnection(connection, logger: logger) }
            return try await body(DatabaseConnection(sql: connection.sql(queryLogLevel: nil), driver: .sqlite(connection)))
        } else if let postgresPool {
            let connection = try await postgresPool.requestConnection(logger: logger).get()
            defer { postgresPool.releaseConnection(connection, logger: logger) }
            return try await body(DatabaseConnection(sql: connection.sql(queryLogLevel: nil), driver: .postgres(connection)))
        }
        fatalError("no pool")
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    ///
    /// The transaction runs in a task of its own, so that cancelling the caller (a client that left, a shutdown)
    /// cannot stop it between BEGIN and COMMIT or ROLLBACK and leave the connection inside a transaction.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (DatabaseConnection) async throws -> T) async throws -> T {
        let dialect = self.dialect
        return try await Task {
            try await self.withSQL { sql in
                do {
                    try await sql.raw(dialect == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN").run()
                } catch where dialect == .sqlite && "\(error)".contains("within a transaction") {
                    // A connection left inside a transaction by an earlier failure: end that one first.
                    try? await sql.raw("ROLLBACK").run()
                    try await sql.raw("BEGIN IMMEDIATE").run()
                }
                do {
                    let result = try await body(sql)
                    try await sql.raw("COMMIT").run()
                    return result
                } catch {
                    try? await sql.raw("ROLLBACK").run()
                    throw error
                }
            }
        }.value
    }

    /// Opens a dedicated PostgreSQL connection (for LISTEN); nil on SQLite.
    public func dedicatedPostgresConnection() async throws -> PostgresConnection? {
        guard let postgresConfiguration else { return nil }
        return try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(),
                                                    configuration: postgresConfiguration.coreConfiguration,
                                                    id: Int.random(in: 1...Int(Int32.max)), logger: logger)
    }

    /// Closes every connection.
    public func shutdown() async {
        guard closed.withLock({ closed in defer { closed = true }; return !closed }) else { return }
        try? await sqlitePool?.shutdownAsync()
        try? await postgresPool?.shutdownAsync()
    }

    deinit {
        // Dropped without `shutdown()` (a test that failed early): close in the background.
        if closed.withLock({ !$0 }) {
            sqlitePool?.shutdownGracefully { _ in }
            postgresPool?.shutdownGracefully { _ in }
        }
    }
}

/// A connection of the pool: SQLKit's view of it for every statement, and the driver's own connection for the few
/// writes that bind their values directly (`LogRows`: hundreds of rows a flush, where SQLKit's serializer and encoder
/// would box and convert each value).
public struct DatabaseConnection: SQLDatabase {
    let sql: any SQLDatabase
    let driver: Driver

    enum Driver {
        case sqlite(SQLiteConnection)
        case postgres(PostgresConnection)
    }

    public var logger: Logger { sql.logger }
    public var eventLoop: any EventLoop { sql.eventLoop }
    public var version: (any SQLDatabaseReportedVersion)? { sql.version }
    public var dialect: any SQLDialect { sql.dialect }
    public var queryLogLevel: Logger.Level? { sql.queryLogLevel }

    public func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        sql.execute(sql: query, onRow)
    }

    public func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try await sql.execute(sql: query, onRow)
    }

    public func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }
}

/// Opens SQLite connections set up for a server: WAL journal, a busy timeout, NORMAL sync, foreign keys.
struct SluiceSQLiteSource: ConnectionPoolSource {
    let path: String
    let threadPool: NIOThreadPool

    func makeConnection(logger: Logger, on eventLoop: any EventLoop) -> EventLoopFuture<SQLiteConnection> {
        SQLiteConnection.open(storage: .file(path: path), threadPool: threadPool, logger: logger, on: eventLoop).flatMap { connection in
            let pragmas = ["PRAGMA journal_mode = WAL", "PRAGMA busy_timeout = 30000", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON"]
            var future = eventLoop.makeSucceededVoidFuture()
            for pragma in pragmas {
                future = future.flatMap { connection.query(pragma).map { _ in } }
            }
            return future.map { connection }.flatMapError { error in
                connection.close().flatMapThrowing { throw error }
            }
        }
    }
}
