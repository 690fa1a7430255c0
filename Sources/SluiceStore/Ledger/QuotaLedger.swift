import Foundation
import Logging
import SQLKit
import SluiceCore
import Synchronization

/// A call's hold on quota, taken before it goes upstream.
public struct Reservation: Sendable {
    /// The token reserved against, when the token has a cap.
    public let token: Int64?
    /// The user reserved against, for an internal token.
    public let user: Int64?
    /// The token, capped or not, that the charge is recorded on.
    public let chargedToken: Int64
    /// Units held.
    public let amount: Int64
}

/// Why a reservation was refused.
public enum ReservationFailure: Error, Sendable, Equatable {
    /// The token has nothing left at all.
    case tokenExhausted
    /// The token has quota left, but not enough for this call.
    case tokenInsufficient
    /// The user's balance cannot cover the call.
    case userInsufficient
}

/// Exact quota under any concurrency, on one instance or many.
///
/// The database holds every balance (`remain_quota` of tokens, `quota` of users) and how much of it is *leased* to
/// instances. An instance leases quota in chunks with one atomic update, reserves calls against its lease in memory
/// (no database round trip per call), and settles the exact cost through the group-commit writer, which moves the
/// charged amount from lease to spent. Unused lease goes back after a short idle time, at shutdown, or when the balance
/// is edited. A balance can never be leased beyond what it holds, so no balance goes negative and N instances cannot
/// spend N times the cap.
public final class QuotaLedger: Sendable {
    struct Account {
        var lease: Int64 = 0
        var reserved: Int64 = 0
        var lastUsed: Double = 0
        /// What the next lease asks for, in `leaseCalls` calls' worth: doubled each time a lease follows the last
        /// within `leaseWindow` seconds, so that a busy balance goes to the database about once a window.
        var scale: Int64 = 1
        var lastLeased: Double = 0
        /// The last lease asked for was refused (not enough unleased quota): no top-up ahead of need for a window.
        var lastRefused: Double = 0
    }

    let database: Database
    public let writer: LedgerWriter
    let instanceId: String
    private let accounts = Mutex<[QuotaSubject: Account]>([:])
    /// Charged here but not yet flushed.
    private let unflushed = Mutex<[QuotaSubject: Int64]>([:])
    /// How many calls' worth of quota one lease asks for.
    let leaseCalls: Int64
    /// Asks other instances to give back idle lease of a balance (set when there are other instances).
    let leaseWanted = Mutex<(@Sendable (QuotaSubject) -> Void)?>(nil)
    /// Seconds within which a second lease of a balance makes the next one twice as large.
    let leaseWindow: Double
    /// The largest `scale` of a lease.
    static let maxLeaseScale: Int64 = 64
    /// The lease being taken for each balance: calls that run short at the same time wait for it, not each for a
    /// transaction of its own.
    private let leasing = Mutex<[QuotaSubject: Task<LeaseOutcome, any Error>]>([:])
    private let leaseCount = Mutex(0)

    init(database: Database, writer: LedgerWriter, instanceId: String, leaseCalls: Int64 = 32, leaseWindow: Double = 1) {
        self.database = database
        self.writer = writer
        self.instanceId = instanceId
        self.leaseCalls = leaseCalls
        self.leaseWindow = leaseWindow
        writer.setOnFlushed { [weak self] charges in
            self?.unflushed.withLock { pending in
                for (subject, amount) in charges {
                    let left = (pending[subject] ?? 0) - amount
                    pending[subject] = left > 0 ? left : nil
                }
            }
        }
    }

    /// Holds `amount` on the token (when capped) and the user (for an internal token), both or neither.
    ///
    /// A call reserves against this instance's leases in memory. When a lease runs short, one transaction leases more
    /// (calls short of the same balance at the same time wait for it); when a reservation leaves less than a quarter
    /// of a lease free, the next lease is taken in the background, so that calls seldom wait for the database.
    nonisolated(nonsending) public func reserve(tokenId: Int64, tokenCapped: Bool, userId: Int64?, amount: Int64) async throws(ReservationFailure) -> Reservation {
        let reservation = Reservation(token: tokenCapped ? tokenId : nil, user: userId, chargedToken: tokenId, amount: amount)
        let subjects = reservation.subjects
        if subjects.isEmpty || amount <= 0 { return reservation }
        var lastFailure: (QuotaSubject, Int64)?
        var refusals = 0
        // Each round without a refusal leased something (or waited for another call's lease) that concurrent calls
        // may have taken first; the bound only stops a pathological loop.
        for _ in 0..<64 where refusals < 4 {
            let (short, topUps) = accounts.withLock { accounts -> ([(QuotaSubject, Int64)], [QuotaSubject]) in
                let short = subjects.compactMap { subject -> (QuotaSubject, Int64)? in
                    let account = accounts[subject] ?? Account()
                    let free = account.lease - account.reserved
                    return free >= amount ? nil : (subject, amount - free)
                }
                guard short.isEmpty else { return (short, []) }
                let now = Date().timeIntervalSince1970
                var topUps: [QuotaSubject] = []
                for subject in subjects {
                    var account = accounts[subject, default: Account()]
                    account.reserved += amount
                    account.lastUsed = now
                    if (account.lease - account.reserved) * 4 < amount * leaseCalls * account.scale, now - account.lastRefused > leaseWindow {
                        topUps.append(subject)
                    }
                    accounts[subject] = account
                }
                return ([], topUps)
            }
            if short.isEmpty {
                for subject in topUps where leasing.withLock({ $0[subject] == nil }) {
                    Task { _ = try? await self.lease(subject, need: amount, amount: amount) }
                }
                return reservation
            }
            var unavailable: (QuotaSubject, Int64)?
            for (subject, need) in short {
                let outcome: LeaseOutcome?
                do {
                    outcome = try await lease(subject, need: need, amount: amount)
                } catch {
                    // The database is unreachable: refuse rather than overspend.
                    writer.logger.error("quota lease failed", metadata: ["subject": "\(subject)", "error": "\(String(reflecting: error))"])
                    throw subject.isToken ? .tokenInsufficient : .userInsufficient
                }
                if case .unavailable(let remainAfterPending) = outcome, unavailable == nil { unavailable = (subject, remainAfterPending) }
            }
            guard let unavailable else { continue }
            lastFailure = unavailable
            refusals += 1
            if refusals == 1 {
                // Lease this instance gave back may still sit in the writer: write it, then look again.
                try? await writer.flush()
            } else if refusals == 2, let ask = leaseWanted.withLock({ $0 }) {
                // Another instance may hold idle lease of this balance: ask for it and look again shortly.
                ask(unavailable.0)
                try? await Task.sleep(for: .milliseconds(150))
            }
            // Otherwise look again at once: a concurrent call may have leased what this one needs.
        }
        let failure = lastFailure ?? (subjects.first!, 1)
        if case .token = failure.0 { throw failure.1 <= 0 ? .tokenExhausted : .tokenInsufficient }
        throw .userInsufficient
    }

    /// Leases more of a balance for a call that needs `need` more (or joins the lease being taken for it). Answers
    /// the outcome of the lease this call took, or nil when it waited for another call's: either way, look again.
    private func lease(_ subject: QuotaSubject, need: Int64, amount: Int64) async throws -> LeaseOutcome? {
        let (flight, joined) = leasing.withLock { flights -> (Task<LeaseOutcome, any Error>, Bool) in
            if let running = flights[subject] { return (running, true) }
            let want = accounts.withLock { accounts -> Int64 in
                let now = Date().timeIntervalSince1970
                var account = accounts[subject, default: Account()]
                account.scale = now - account.lastLeased < leaseWindow ? min(account.scale * 2, Self.maxLeaseScale) : 1
                account.lastLeased = now
                accounts[subject] = account
                return max(need, amount * leaseCalls * account.scale)
            }
            // Removed from `leasing` under its lock, which this closure holds: never before it is stored.
            let flight = Task<LeaseOutcome, any Error> {
                defer { leasing.withLock { $0[subject] = nil } }
                let outcome = try await acquire(subject, need: need, want: want)
                let now = Date().timeIntervalSince1970
                accounts.withLock { accounts in
                    switch outcome {
                    case .granted(let granted):
                        leaseCount.withLock { $0 += 1 }
                        accounts[subject, default: Account()].lease += granted
                        // Fresh lease is not idle: the sweeper must leave it to the call that asked for it.
                        accounts[subject, default: Account()].lastUsed = now
                    case .unavailable:
                        accounts[subject, default: Account()].lastRefused = now
                    }
                }
                return outcome
            }
            flights[subject] = flight
            return (flight, false)
        }
        let outcome = try await flight.value
        return joined ? nil : outcome
    }

    /// Leases taken since start (each one transaction), for tests and metrics.
    public var leasesTaken: Int { leaseCount.withLock { $0 } }

    enum LeaseOutcome {
        case granted(Int64)
        /// Not enough unleased quota; carries the balance minus what this instance has charged but not written.
        case unavailable(Int64)
    }

    /// Leases between `need` and `want` units of a balance, atomically; nothing when less than `need` is free.
    func acquire(_ subject: QuotaSubject, need: Int64, want: Int64) async throws -> LeaseOutcome {
        let instanceId = self.instanceId
        let dialect = database.dialect
        let pending = unflushed.withLock { $0[subject] ?? 0 }
        return try await database.transaction { sql in
            let lock = dialect == .postgres ? " FOR UPDATE" : ""
            guard let row = try await sql.raw("""
                SELECT \(unsafeRaw: subject.remainColumn) AS remain, leased FROM \(unsafeRaw: subject.table) WHERE id = \(bind: subject.id)\(unsafeRaw: lock)
                """).first() else { return .unavailable(0) }
            let remain = try row.decode(column: "remain", as: Int64.self)
            let leased = try row.decode(column: "leased", as: Int64.self)
            let available = remain - leased
            guard available >= need else {
                self.writer.logger.debug("lease unavailable", metadata: ["subject": "\(subject)", "remain": "\(remain)", "leased": "\(leased)", "need": "\(need)"])
                return .unavailable(remain - pending)
            }
            let grant = min(want, available)
            try await sql.raw("UPDATE \(unsafeRaw: subject.table) SET leased = leased + \(bind: grant) WHERE id = \(bind: subject.id)").run()
            try await sql.raw("""
                INSERT INTO quota_leases (instance_id, subject, subject_id, amount) VALUES (\(bind: instanceId), \(bind: subject.code), \(bind: subject.id), \(bind: grant))
                ON CONFLICT (instance_id, subject, subject_id) DO UPDATE SET amount = quota_leases.amount + excluded.amount
                """).run()
            return .granted(grant)
        }
    }

    /// Settles a call at its exact cost (never more than the held amount plus what is still free in the leases),
    /// records it for the writer, and answers the amount charged.
    @discardableResult
    public func settle(_ reservation: Reservation, cost: Int64, log: LogEntry) -> Int64 {
        let subjects = reservation.subjects
        let charged = accounts.withLock { accounts -> Int64 in
            var charge = max(0, cost)
            for subject in subjects {
                accounts[subject, default: Account()].reserved -= reservation.amount
                let account = accounts[subject]!
                charge = min(charge, max(0, account.lease - account.reserved))
            }
            for subject in subjects { accounts[subject]!.lease -= charge }
            return charge
        }
        if charged > 0 {
            unflushed.withLock { pending in for subject in subjects { pending[subject, default: 0] += charged } }
        }
        var entry = log
        entry.quota = charged
        entry.userCharged = reservation.user != nil
        if charged < cost { entry.content += (entry.content.isEmpty ? "" : "; ") + "charged \(charged) of \(cost): balance reached zero" }
        writer.append { batch in
            batch.logs.append(entry)
            for subject in subjects { batch.charges[subject, default: 0] += charged }
            if reservation.token == nil, charged > 0 { batch.usedOnly[reservation.chargedToken, default: 0] += charged }
            if let user = reservation.user { batch.requests[user, default: 0] += 1 }
            batch.accessed[reservation.chargedToken] = max(batch.accessed[reservation.chargedToken] ?? 0, entry.createdAt)
        }
        return charged
    }

    /// Lets go of a call that is not charged (it failed upstream or was refused after reserving).
    public func release(_ reservation: Reservation) {
        let subjects = reservation.subjects
        accounts.withLock { accounts in
            for subject in subjects { accounts[subject, default: Account()].reserved -= reservation.amount }
        }
    }

    /// Charges outside any call (an unlimited token's spending is tracked through `settle`); records a log row alone.
    public func record(_ log: LogEntry) {
        writer.append { $0.logs.append(log) }
    }

    /// Gives back the free part of leases idle for `idleSeconds`, or of every lease when `idleSeconds` is nil.
    public func returnLeases(idleSeconds: Double?) {
        let now = Date().timeIntervalSince1970
        let returned = accounts.withLock { accounts -> [QuotaSubject: Int64] in
            var returned: [QuotaSubject: Int64] = [:]
            for (subject, account) in accounts {
                let free = account.lease - account.reserved
                guard free > 0 else {
                    if account.lease == 0, account.reserved == 0 { accounts[subject] = nil }
                    continue
                }
                if let idleSeconds, now - account.lastUsed < idleSeconds { continue }
                returned[subject] = free
                accounts[subject]!.lease -= free
                if accounts[subject]!.lease == 0, accounts[subject]!.reserved == 0 { accounts[subject] = nil }
            }
            return returned
        }
        if !returned.isEmpty { writer.append { batch in for (subject, amount) in returned { batch.returns[subject, default: 0] += amount } } }
    }

    /// Gives back the free lease of one balance at once (it was edited, or another instance needs it).
    public func returnLease(_ subject: QuotaSubject) {
        let free = accounts.withLock { accounts -> Int64 in
            guard var account = accounts[subject] else { return 0 }
            let free = account.lease - account.reserved
            guard free > 0 else { return 0 }
            account.lease -= free
            accounts[subject] = account
            return free
        }
        if free > 0 { writer.append { $0.returns[subject, default: 0] += free } }
    }

    /// Units reserved by calls in flight, over every balance.
    public var outstanding: Int64 {
        accounts.withLock { $0.values.reduce(0) { $0 + $1.reserved } }
    }

    /// Whether anything settled here waits to be written.
    public var hasUnwritten: Bool { writer.backlog > 0 || !unflushed.withLock { $0.isEmpty } }

    /// Charged here but not yet written, for one balance.
    public func unwritten(_ subject: QuotaSubject) -> Int64 {
        unflushed.withLock { $0[subject] ?? 0 }
    }

    /// Writes everything settled so far.
    public func flush() async throws { try await writer.flush() }
}

extension QuotaSubject {
    var isToken: Bool { if case .token = self { return true }; return false }
}

extension Reservation {
    /// The balances held: the capped token's, then the user's.
    var subjects: QuotaSubjects { QuotaSubjects(token: token, user: user) }
}

/// At most two balances, the token's then the user's, as a sequence that needs no array: a call walks them several
/// times between its reservation and its settlement.
struct QuotaSubjects: Sequence {
    let token: Int64?
    let user: Int64?

    var isEmpty: Bool { token == nil && user == nil }
    var first: QuotaSubject? { token.map(QuotaSubject.token) ?? user.map(QuotaSubject.user) }

    func makeIterator() -> Iterator { Iterator(token: token, user: user) }

    struct Iterator: IteratorProtocol {
        var token: Int64?
        var user: Int64?

        mutating func next() -> QuotaSubject? {
            if let id = token { token = nil; return .token(id) }
            if let id = user { user = nil; return .user(id) }
            return nil
        }
    }
}
