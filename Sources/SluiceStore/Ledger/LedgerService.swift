import Foundation
import Logging
import SQLKit
import ServiceLifecycle
import SluiceCore

/// Runs the ledger's background work: group commits, idle lease returns, this instance's heartbeat, and recovery
/// of the leases of instances that died. At shutdown it returns every lease and writes everything before exit.
public struct LedgerService: Service {
    public let ledger: QuotaLedger
    let database: Database
    let logger: Logger
    /// How often settled calls are written.
    public var flushInterval: Duration = .milliseconds(50)
    /// How long a lease may sit unused before it goes back.
    public var idleLeaseSeconds: Double = 2
    /// After how long without a heartbeat an instance counts as dead.
    public var deadAfterSeconds: Int64 = 15

    /// Registers this instance (and, on SQLite, where one instance serves the file, recovers leases left by an earlier run).
    public static func start(database: Database, logger: Logger) async throws -> LedgerService {
        let instanceId = UUID().uuidString.lowercased()
        let writer = LedgerWriter(database: database, instanceId: instanceId, logger: logger)
        let ledger = QuotaLedger(database: database, writer: writer, instanceId: instanceId)
        let now = Clock.nowSeconds()
        try await database.withSQL { sql in
            try await sql.raw("INSERT INTO instances (id, started_at, heartbeat_at) VALUES (\(bind: instanceId), \(bind: now), \(bind: now))").run()
        }
        let service = LedgerService(ledger: ledger, database: database, logger: logger)
        if database.dialect == .sqlite {
            try await service.recoverLeases(olderThan: nil)
        }
        return service
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await gracefulShutdown()
            }
            group.addTask {
                var lastHousekeeping = ContinuousClock.now
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await Task.sleep(for: flushInterval)
                    try? await ledger.flush()
                    if ContinuousClock.now - lastHousekeeping > .seconds(1) {
                        lastHousekeeping = ContinuousClock.now
                        ledger.returnLeases(idleSeconds: idleLeaseSeconds)
                        try? await heartbeat()
                        if database.dialect == .postgres { try? await recoverLeases(olderThan: deadAfterSeconds) }
                    }
                }
            }
            await group.next()
            group.cancelAll()
        }
        // Shutdown: hand back every lease and write everything.
        ledger.returnLeases(idleSeconds: nil)
        for attempt in 0..<5 {
            do {
                try await ledger.flush()
                break
            } catch {
                logger.error("final ledger flush failed", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        let instanceId = ledger.instanceId
        try? await database.withSQL { sql in
            try await sql.raw("DELETE FROM quota_leases WHERE instance_id = \(bind: instanceId) AND amount <= 0").run()
            try await sql.raw("DELETE FROM instances WHERE id = \(bind: instanceId)").run()
        }
    }

    func heartbeat() async throws {
        let instanceId = ledger.instanceId
        try await database.withSQL { sql in
            try await sql.raw("UPDATE instances SET heartbeat_at = \(bind: Clock.nowSeconds()) WHERE id = \(bind: instanceId)").run()
        }
    }

    /// Gives back the leases of instances silent for `olderThan` seconds (of every other instance when nil).
    public func recoverLeases(olderThan: Int64?) async throws {
        let instanceId = ledger.instanceId
        let cutoff = olderThan.map { Clock.nowSeconds() - $0 } ?? Int64.max
        let recovered = try await database.transaction { sql -> Int in
            let dead = try await sql.raw("""
                SELECT DISTINCT instance_id FROM quota_leases WHERE instance_id <> \(bind: instanceId)
                AND instance_id NOT IN (SELECT id FROM instances WHERE heartbeat_at >= \(bind: cutoff))
                """).all().map { try $0.decode(column: "instance_id", as: String.self) }
            for id in dead {
                let leases = try await sql.raw("SELECT subject, subject_id, amount FROM quota_leases WHERE instance_id = \(bind: id)").all()
                for lease in leases {
                    let subject = try lease.decode(column: "subject", as: String.self) == "t"
                        ? QuotaSubject.token(try lease.decode(column: "subject_id", as: Int64.self))
                        : QuotaSubject.user(try lease.decode(column: "subject_id", as: Int64.self))
                    let amount = try lease.decode(column: "amount", as: Int64.self)
                    try await sql.raw("""
                        UPDATE \(unsafeRaw: subject.table) SET leased = CASE WHEN leased >= \(bind: amount) THEN leased - \(bind: amount) ELSE 0 END
                        WHERE id = \(bind: subject.id)
                        """).run()
                }
                try await sql.raw("DELETE FROM quota_leases WHERE instance_id = \(bind: id)").run()
            }
            try await sql.raw("DELETE FROM instances WHERE id <> \(bind: instanceId) AND heartbeat_at < \(bind: cutoff)").run()
            return dead.count
        }
        if recovered > 0 { logger.info("recovered the leases of stopped instances", metadata: ["instances": "\(recovered)"]) }
    }
}
