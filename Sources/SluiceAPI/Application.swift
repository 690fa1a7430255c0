import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import SluiceCore
import SluiceRelay
import SluiceStore

/// Builds the whole server from a configuration: storage (migrated and seeded), services and routes.
/// Tests call this directly; `sluice serve` runs what it returns.
public func buildApplication(_ config: SluiceConfig, logger: Logger? = nil) async throws -> some ApplicationProtocol {
    let logger = logger ?? Logger(label: "sluice")
    let location = try DatabaseLocation(parsing: config.database)
    let secret = try Bootstrap.masterSecret(config: config, location: location)
    let database = try Database(location: location, logger: logger, maxConnections: config.databasePoolSize)
    let applied = try await database.migrate()
    if !applied.isEmpty { logger.info("database migrated", metadata: ["versions": "\(applied)", "database": "\(location)"]) }
    var ledgerService = try await LedgerService.start(database: database, logger: logger)
    ledgerService.deadAfterSeconds = config.instanceTimeoutSeconds
    let services = Services(config: config, database: database, secrets: SecretBox(masterSecret: secret), ledger: ledgerService.ledger,
                            logger: logger)
    if let password = try await Bootstrap.seed(services: services) {
        FileHandle.standardOutput.write(Data("Created the admin user 'root' with password: \(password)  (shown once; change it after logging in)\n".utf8))
    }
    let router = buildRouter(services)
    let serverName = "Sluice"
    let relayServer = RelayServer(services: services, serverName: serverName)
    var app = Application(
        router: router,
        server: .sluice(relay: relayServer),
        configuration: .init(address: .hostname(config.host, port: config.port), serverName: serverName),
        onServerRunning: { channel in
            logger.info("Sluice is listening", metadata: ["address": "\(channel.localAddress?.description ?? "?")"])
        },
        logger: logger
    )
    try await services.catalog.reload()
    let cluster = ClusterService(database: database, changes: services.changes, ledger: services.ledger, logger: logger)
    cluster.attach()
    // Shut down in reverse order: the server drains, the relay's calls in progress end, the ledger writes everything,
    // the clients and database close.
    app.addServices(DatabaseService(database: database), UpstreamService(client: services.upstreamClient), ledgerService, cluster,
                    RelayDrainService(calls: relayServer.calls))
    return app
}

/// Opens the database, migrates it and seeds it as a first start would; answers the generated root password, if any.
/// For `sluice` subcommands and tests that need storage without a server.
public func firstStart(_ config: SluiceConfig) async throws -> String? {
    let logger = Logger(label: "sluice")
    let location = try DatabaseLocation(parsing: config.database)
    let secret = try Bootstrap.masterSecret(config: config, location: location)
    let database = try Database(location: location, logger: logger, maxConnections: 2)
    try await database.migrate()
    let ledger = try await LedgerService.start(database: database, logger: logger).ledger
    let services = Services(config: config, database: database, secrets: SecretBox(masterSecret: secret), ledger: ledger, logger: logger)
    let password = try await Bootstrap.seed(services: services)
    await services.upstreamClient.shutdown()
    await database.shutdown()
    return password
}

/// Runs `LedgerCheck` on the configured database (migrating it first, so a fresh one checks clean).
public func ledgerCheck(_ config: SluiceConfig) async throws -> LedgerCheck.Report {
    let location = try DatabaseLocation(parsing: config.database)
    let database = try Database(location: location, logger: Logger(label: "sluice"), maxConnections: 2)
    try await database.migrate()
    let report = try await LedgerCheck(database: database).run()
    await database.shutdown()
    return report
}

/// The routes: `/healthz`, `/api/...`.
func buildRouter(_ services: Services) -> Router<SluiceRequestContext> {
    let router = Router(context: SluiceRequestContext.self)
    router.add(middleware: SluiceMiddleware(metrics: services.relay.metrics))
    router.add(middleware: FileMiddleware(services.config.publicDirectory ?? "Public", searchForIndexHtml: true,
                                          logger: services.logger))
    router.get("/healthz") { _, _ in
        API.respond(["status": "ok"])
    }
    router.get("/metrics") { _, _ in
        services.relay.metrics.reservations(outstanding: services.ledger.outstanding, unwrittenCalls: services.ledger.writer.backlog)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                        body: .init(byteBuffer: ByteBuffer(bytes: services.relay.metrics.render())))
    }
    let api = router.group("api")
    UserController(services: services).addRoutes(to: api.group("user"))
    TokenController(services: services).addRoutes(to: api.group("token"))
    GroupController(services: services).addRoutes(to: api.group("group"))
    ModelController(services: services).addRoutes(to: api.group("model"))
    ChannelController(services: services).addRoutes(to: api.group("channel"))
    RedemptionController(services: services).addRoutes(to: api)
    TokenSessionController(services: services).addRoutes(to: api)
    LogController(services: services).addRoutes(to: api)
    OpenAPIController().addRoutes(to: api)
    RelayController(services: services).addRoutes(to: router)
    api.get("status") { _, _ in
        API.ok(["version": Sluice.version, "system_name": "Sluice"])
    }
    return router
}

/// Version and name.
public enum Sluice {
    public static let version = "0.1.0"
}

/// Closes the upstream client after the server has drained.
struct UpstreamService: Service {
    let client: UpstreamClient

    func run() async throws {
        try? await gracefulShutdown()
        await client.shutdown()
    }
}

/// Closes the database after the server has drained.
struct DatabaseService: Service {
    let database: Database

    func run() async throws {
        try? await gracefulShutdown()
        await database.shutdown()
    }
}
