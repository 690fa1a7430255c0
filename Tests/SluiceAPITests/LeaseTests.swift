import Logging
import SQLKit
import SluiceCore
@testable import SluiceStore
import Testing

/// How the ledger leases quota from the database: calls short of the same balance at once share one lease, and a
/// busy balance's leases grow, so that calls seldom wait for a transaction. Money stays exact either way.
@Suite struct LeaseTests {
    /// A ledger on a fresh database with one user holding `quota`; the lease window is an hour, so that growth does
    /// not depend on how fast the machine is.
    static func withLedger(_ backend: Backend, quota: Int64,
                           _ body: (QuotaLedger, Int64, Database) async throws -> Void) async throws {
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        do {
            try await database.migrate()
            let service = try await LedgerService.start(database: database, logger: TestEnvironment.quietLogger)
            let ledger = QuotaLedger(database: database, writer: service.ledger.writer, instanceId: service.ledger.instanceId,
                                     leaseWindow: 3600)
            let user = try #require(try await UserStore(database: database).create(username: "lessee", passwordHash: "x", role: 1,
                                                                                   group: "default", quota: quota))
            try await body(ledger, user.id, database)
        } catch {
            await database.shutdown()
            throw error
        }
        await database.shutdown()
    }

    static func leased(_ database: Database, user: Int64) async throws -> (quota: Int64, leased: Int64) {
        try await database.withSQL { sql in
            let row = try #require(try await sql.raw("SELECT quota, leased FROM users WHERE id = \(bind: user)").first())
            return (try row.decode(column: "quota", as: Int64.self), try row.decode(column: "leased", as: Int64.self))
        }
    }

    /// Lets every reservation go and hands the leases back: the balance is whole and nothing is leased.
    static func releaseAll(_ reservations: [Reservation], _ ledger: QuotaLedger, _ database: Database, user: Int64, quota: Int64) async throws {
        for reservation in reservations { ledger.release(reservation) }
        ledger.returnLeases(idleSeconds: nil)
        try await ledger.flush()
        let after = try await leased(database, user: user)
        #expect(after.quota == quota)
        #expect(after.leased == 0)
    }

    @Test(arguments: Backend.all)
    func callsShortAtOnceShareOneLease(_ backend: Backend) async throws {
        try await Self.withLedger(backend, quota: 1_000_000) { ledger, user, database in
            let reservations = try await withThrowingTaskGroup(of: Reservation.self) { group in
                for _ in 0..<50 {
                    group.addTask { try await ledger.reserve(tokenId: 1, tokenCapped: false, userId: user, amount: 10) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(reservations.count == 50)
            // One lease for the first 32 calls' worth, and few more (a second, larger one; perhaps a top-up), where
            // each call taking its own would be 50 transactions.
            #expect(ledger.leasesTaken <= 5, "\(ledger.leasesTaken) leases")
            #expect(ledger.outstanding == 500)
            try await Self.releaseAll(reservations, ledger, database, user: user, quota: 1_000_000)
        }
    }

    @Test(arguments: Backend.all)
    func aBusyBalanceLeasesMoreAtATimeAndNoMoreThanItHolds(_ backend: Backend) async throws {
        // 2,000 reservations held at once: at 32 calls a lease that is 63 transactions; doubling, a handful.
        try await Self.withLedger(backend, quota: 50_000) { ledger, user, database in
            var held: [Reservation] = []
            for _ in 0..<2_000 { held.append(try await ledger.reserve(tokenId: 1, tokenCapped: false, userId: user, amount: 10)) }
            #expect(ledger.leasesTaken <= 12, "\(ledger.leasesTaken) leases")
            // A lease never goes beyond the balance: 5,000 reservations of 10 fit in 50,000, the next does not.
            for _ in 0..<3_000 { held.append(try await ledger.reserve(tokenId: 1, tokenCapped: false, userId: user, amount: 10)) }
            await #expect(throws: ReservationFailure.userInsufficient) {
                _ = try await ledger.reserve(tokenId: 1, tokenCapped: false, userId: user, amount: 10)
            }
            #expect(try await Self.leased(database, user: user).leased == 50_000)
            try await Self.releaseAll(held, ledger, database, user: user, quota: 50_000)
        }
    }
}
