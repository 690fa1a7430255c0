import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import SluiceAPI
import SluiceCore
import SluiceStore
import Testing

/// The storage a test runs on. Every storage test runs on SQLite, and on PostgreSQL when
/// `SLUICE_TEST_POSTGRES_URL` names a server (the test command starts one).
enum Backend: String, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// The backends of this run.
    static var all: [Backend] {
        ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"].map { _ in [.sqlite, .postgres] } ?? [.sqlite]
    }
}

/// A fresh, empty database and a configuration pointing at it.
struct TestEnvironment: Sendable {
    static let rootPassword = "root-password-1"
    let config: SluiceConfig
    let backend: Backend

    /// Makes an empty database on `backend`.
    static func make(_ backend: Backend, configure: (inout SluiceConfig) -> Void = { _ in }) async throws -> TestEnvironment {
        var config = SluiceConfig()
        config.host = "127.0.0.1"
        config.port = 0
        config.rootPassword = rootPassword
        config.secret = "test-secret-" + RandomSecret.string(count: 16)
        config.databasePoolSize = 4
        // The suites create and log in hundreds of accounts at once, on two cores: cheap hashes keep them from
        // queueing for tens of seconds behind each other.
        config.passwordCost = 4
        switch backend {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-test-\(RandomSecret.string(count: 10))")
            config.database = "sqlite:\(dir.path)/sluice.sqlite"
        case .postgres:
            config.database = try await createPostgresDatabase()
        }
        configure(&config)
        return TestEnvironment(config: config, backend: backend)
    }

    /// Creates a new database on the test server and answers its URL.
    static func createPostgresDatabase() async throws -> String {
        guard let admin = ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"],
              var parts = URLComponents(string: admin) else { throw TestSetupError("SLUICE_TEST_POSTGRES_URL is not set") }
        let name = "sluice_t_" + RandomSecret.string(count: 12, alphabet: Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8))
        let configuration = PostgresConnection.Configuration(host: parts.host ?? "127.0.0.1", port: parts.port ?? 5432,
                                                             username: parts.user ?? "postgres", password: parts.password,
                                                             database: String(parts.path.dropFirst()), tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Logger(label: "test"))
        do {
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Logger(label: "test"))
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
        parts.path = "/" + name
        return parts.string!
    }

    /// A handle on the same database, for looking behind the API.
    func openDatabase() throws -> Database {
        try Database(location: DatabaseLocation(parsing: config.database), logger: Logger(label: "test"), maxConnections: 2)
    }

    /// Builds the application and runs `body` against it through the router.
    func test(_ mode: TestingSetup = .router, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = try await buildApplication(config, logger: Self.quietLogger)
        try await app.test(mode, body)
    }

    static let quietLogger: Logger = {
        var logger = Logger(label: "sluice-test")
        logger.logLevel = ProcessInfo.processInfo.environment["SLUICE_TEST_DEBUG"] != nil ? .debug : .warning
        return logger
    }()
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A value that test closures fill in and the test reads afterwards.
final class Box<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// Whether `condition` holds within `seconds`, checked every 50 ms.
func eventually(_ seconds: Double = 10, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
