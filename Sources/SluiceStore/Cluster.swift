import Foundation
import Logging
import PostgresNIO
import SQLKit
import ServiceLifecycle
import SluiceCore
import Synchronization

/// Ties the instances that share one PostgreSQL together: changes made on one reach the caches of all within
/// moments (LISTEN/NOTIFY), a balance's idle lease is handed back when another instance needs it, and every cache is
/// rebuilt now and then as a safety net. On SQLite (one instance) it only waits for shutdown.
public struct ClusterService: Service {
    static let channel = "sluice_events"

    let database: Database
    let changes: ChangeFeed
    let ledger: QuotaLedger
    let logger: Logger
    /// How often every cache is rebuilt from the store regardless of notifications.
    public var resyncInterval: Duration = .seconds(30)

    public init(database: Database, changes: ChangeFeed, ledger: QuotaLedger, logger: Logger) {
        self.database = database
        self.changes = changes
        self.ledger = ledger
        self.logger = logger
    }

    /// Wires the change feed and the ledger to the notification channel (PostgreSQL only). Call before serving.
    public func attach() {
        guard database.dialect == .postgres else { return }
        let database = self.database, me = ledger.instanceId, logger = self.logger
        let send: @Sendable (String) -> Void = { payload in
            Task {
                do {
                    try await database.withSQL { sql in
                        try await sql.raw("SELECT pg_notify(\(bind: ClusterService.channel), \(bind: payload))").run()
                    }
                } catch {
                    logger.warning("could not notify other instances", metadata: ["error": "\(error)"])
                }
            }
        }
        changes.attachRemote { change in send("c|\(me)|\(change.wire)") }
        ledger.leaseWanted.withLock { $0 = { subject in send("l|\(me)|\(subject.code):\(subject.id)") } }
    }

    public func run() async throws {
        guard database.dialect == .postgres else {
            try? await gracefulShutdown()
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await gracefulShutdown() }
            group.addTask { await listen() }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: resyncInterval)
                    if Task.isCancelled { break }
                    changes.deliver(.all)
                    try? await SharedRateWindows(database: database).prune(now: Clock.nowSeconds())
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Listens until cancelled; after a lost connection every cache is rebuilt (notifications may have been missed).
    func listen() async {
        var first = true
        while !Task.isCancelled {
            do {
                guard let connection = try await database.dedicatedPostgresConnection() else { return }
                if !first { changes.deliver(.all) }
                first = false
                do {
                    try await connection.listen(on: Self.channel) { notifications in
                        for try await notification in notifications {
                            handle(notification.payload)
                        }
                    }
                } catch {
                    if !Task.isCancelled { logger.warning("notification channel lost; reconnecting", metadata: ["error": "\(error)"]) }
                }
                try? await connection.close()
            } catch {
                if !Task.isCancelled { logger.warning("cannot listen for notifications; retrying", metadata: ["error": "\(error)"]) }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// `c|<instance>|<change>` or `l|<instance>|t:<id>`; messages from this instance are ignored.
    func handle(_ payload: String) {
        let parts = payload.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, parts[1] != ledger.instanceId else { return }
        switch parts[0] {
        case "c":
            changes.deliver(Change(wire: parts[2]))
        case "l":
            let subject = parts[2].split(separator: ":")
            guard subject.count == 2, let id = Int64(subject[1]) else { return }
            ledger.returnLease(subject[0] == "t" ? .token(id) : .user(id))
            Task { try? await ledger.flush() }
        default:
            break
        }
    }
}

/// Rate-limit windows shared by every instance on PostgreSQL: per key, calls and tokens per second, checked and
/// counted under an advisory lock on the key, so N instances together never admit more than the limit.
public struct SharedRateWindows: Sendable {
    let database: Database

    public init(database: Database) { self.database = database }

    /// A limit as checked here.
    public struct Check: Sendable {
        public let key: String
        public let rpm: Int
        public let tpm: Int

        public init(key: String, rpm: Int, tpm: Int) {
            self.key = key
            self.rpm = rpm
            self.tpm = tpm
        }
    }

    /// Counts one call against every check, or answers the index of the first full one and its calls/tokens sums.
    public func admit(_ checks: [Check], now: Int64) async throws -> (index: Int, byTokens: Bool, oldest: Int64)? {
        try await database.transaction { sql in
            for check in checks.sorted(by: { $0.key < $1.key }) {
                try await sql.raw("SELECT pg_advisory_xact_lock(hashtext(\(bind: check.key)))").run()
            }
            for (index, check) in checks.enumerated() {
                let row = try await sql.raw("""
                    SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS calls, CAST(COALESCE(SUM(tokens), 0) AS BIGINT) AS tokens,
                           CAST(COALESCE(MIN(second), 0) AS BIGINT) AS oldest
                    FROM rate_windows WHERE key = \(bind: check.key) AND second > \(bind: now - 60)
                    """).first()
                let calls = try row?.decode(column: "calls", as: Int64.self) ?? 0
                let tokens = try row?.decode(column: "tokens", as: Int64.self) ?? 0
                let oldest = try row?.decode(column: "oldest", as: Int64.self) ?? now
                if check.rpm > 0, calls >= Int64(check.rpm) { return (index, false, oldest) }
                if check.tpm > 0, tokens >= Int64(check.tpm) { return (index, true, oldest) }
            }
            for check in checks {
                try await sql.raw("""
                    INSERT INTO rate_windows (key, second, calls, tokens) VALUES (\(bind: check.key), \(bind: now), 1, 0)
                    ON CONFLICT (key, second) DO UPDATE SET calls = rate_windows.calls + 1
                    """).run()
            }
            return nil
        }
    }

    /// Adds the tokens a finished call used.
    public func addTokens(_ tokens: Int, keys: [String], now: Int64) async throws {
        try await database.withSQL { sql in
            for key in keys {
                try await sql.raw("""
                    INSERT INTO rate_windows (key, second, calls, tokens) VALUES (\(bind: key), \(bind: now), 0, \(bind: tokens))
                    ON CONFLICT (key, second) DO UPDATE SET tokens = rate_windows.tokens + \(bind: tokens)
                    """).run()
            }
        }
    }

    /// Drops seconds that left every window.
    public func prune(now: Int64) async throws {
        try await database.withSQL { sql in
            try await sql.raw("DELETE FROM rate_windows WHERE second <= \(bind: now - 120)").run()
        }
    }
}
