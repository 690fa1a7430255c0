import Foundation
import Logging
import SQLKit
import SluiceCore
import Synchronization

/// What a balance belongs to: a token's own quota, or a user's balance.
public enum QuotaSubject: Hashable, Sendable {
    case token(Int64)
    case user(Int64)

    var table: String { if case .token = self { return "tokens" } else { return "users" } }
    var remainColumn: String { if case .token = self { return "remain_quota" } else { return "quota" } }
    var code: String { if case .token = self { return "t" } else { return "u" } }
    var id: Int64 {
        switch self {
        case .token(let id), .user(let id): return id
        }
    }
}

/// Everything settled since the last flush, written in one transaction.
struct LedgerBatch: Sendable {
    var logs: [LogEntry] = []
    /// Charges against remaining balances (and the leases they were taken from).
    var charges: [QuotaSubject: Int64] = [:]
    /// Spending of tokens without a cap (used_quota only).
    var usedOnly: [Int64: Int64] = [:]
    /// Calls per user.
    var requests: [Int64: Int64] = [:]
    /// Lease returned to the database.
    var returns: [QuotaSubject: Int64] = [:]
    /// Last use of tokens.
    var accessed: [Int64: Int64] = [:]

    var isEmpty: Bool { logs.isEmpty && charges.isEmpty && usedOnly.isEmpty && requests.isEmpty && returns.isEmpty && accessed.isEmpty }

    /// Puts an unwritten batch back in front of what came after it.
    mutating func prepend(_ earlier: LedgerBatch) {
        logs = earlier.logs + logs
        for (key, value) in earlier.charges { charges[key, default: 0] += value }
        for (key, value) in earlier.usedOnly { usedOnly[key, default: 0] += value }
        for (key, value) in earlier.requests { requests[key, default: 0] += value }
        for (key, value) in earlier.returns { returns[key, default: 0] += value }
        for (key, value) in earlier.accessed { accessed[key] = max(accessed[key] ?? 0, value) }
    }
}

/// Group commit of charges, call logs and lease returns: the hot path appends in memory; one transaction writes
/// everything every `interval` (and on demand, and at shutdown). A crash loses at most the last interval's calls,
/// whose logs and charges are lost together, so the ledger stays consistent.
public final class LedgerWriter: Sendable {
    let database: Database
    let instanceId: String
    let logger: Logger
    private let batch = Mutex(LedgerBatch())
    private let serializer = FlushSerializer()
    private let onFlushed = Mutex<(@Sendable ([QuotaSubject: Int64]) -> Void)?>(nil)

    init(database: Database, instanceId: String, logger: Logger) {
        self.database = database
        self.instanceId = instanceId
        self.logger = logger
    }

    func setOnFlushed(_ handler: @escaping @Sendable ([QuotaSubject: Int64]) -> Void) {
        onFlushed.withLock { $0 = handler }
    }

    func append(_ change: (inout LedgerBatch) -> Void) {
        batch.withLock { change(&$0) }
    }

    /// Calls waiting to be written.
    public var backlog: Int { batch.withLock { $0.logs.count } }

    /// Writes everything appended so far; answers when it is committed.
    public func flush() async throws {
        try await serializer.run {
            let taken = self.batch.withLock { current -> LedgerBatch in
                let taken = current
                current = LedgerBatch()
                return taken
            }
            if taken.isEmpty { return }
            do {
                try await self.write(taken)
            } catch {
                self.batch.withLock { $0.prepend(taken) }
                self.logger.error("ledger flush failed; will retry", metadata: ["error": "\(error)"])
                throw error
            }
            if !taken.charges.isEmpty { self.onFlushed.withLock { $0 }?(taken.charges) }
        }
    }

    private func write(_ batch: LedgerBatch) async throws {
        let instanceId = self.instanceId
        try await database.transaction { sql in
            try await LogRows.insert(batch.logs, on: sql)
            try await LogTotals.add(batch.logs, on: sql)
            for (subject, amount) in batch.charges.sorted(by: { $0.key.id < $1.key.id }) where amount != 0 {
                let extra = subject.table == "users" ? SQLQueryString(", request_count = request_count + \(bind: batch.requests[subject.id] ?? 0)") : ""
                try await sql.raw("""
                    UPDATE \(unsafeRaw: subject.table) SET
                        \(unsafeRaw: subject.remainColumn) = CASE WHEN \(unsafeRaw: subject.remainColumn) >= \(bind: amount) THEN \(unsafeRaw: subject.remainColumn) - \(bind: amount) ELSE 0 END,
                        used_quota = used_quota + \(bind: amount),
                        leased = CASE WHEN leased >= \(bind: amount) THEN leased - \(bind: amount) ELSE 0 END\(extra)
                    WHERE id = \(bind: subject.id)
                    """).run()
                try await sql.raw("""
                    UPDATE quota_leases SET amount = CASE WHEN amount >= \(bind: amount) THEN amount - \(bind: amount) ELSE 0 END
                    WHERE instance_id = \(bind: instanceId) AND subject = \(bind: subject.code) AND subject_id = \(bind: subject.id)
                    """).run()
            }
            for (userId, count) in batch.requests where batch.charges[.user(userId)] == nil {
                try await sql.raw("UPDATE users SET request_count = request_count + \(bind: count) WHERE id = \(bind: userId)").run()
            }
            for (tokenId, amount) in batch.usedOnly where amount != 0 {
                try await sql.raw("UPDATE tokens SET used_quota = used_quota + \(bind: amount) WHERE id = \(bind: tokenId)").run()
            }
            for (subject, amount) in batch.returns where amount > 0 {
                try await sql.raw("""
                    UPDATE \(unsafeRaw: subject.table) SET leased = CASE WHEN leased >= \(bind: amount) THEN leased - \(bind: amount) ELSE 0 END
                    WHERE id = \(bind: subject.id)
                    """).run()
                try await sql.raw("""
                    UPDATE quota_leases SET amount = CASE WHEN amount >= \(bind: amount) THEN amount - \(bind: amount) ELSE 0 END
                    WHERE instance_id = \(bind: instanceId) AND subject = \(bind: subject.code) AND subject_id = \(bind: subject.id)
                    """).run()
            }
            for (tokenId, time) in batch.accessed {
                try await sql.raw("UPDATE tokens SET accessed_time = \(bind: time) WHERE id = \(bind: tokenId) AND accessed_time < \(bind: time)").run()
            }
            if !batch.returns.isEmpty {
                try await sql.raw("DELETE FROM quota_leases WHERE instance_id = \(bind: instanceId) AND amount <= 0").run()
            }
        }
    }
}

/// Runs flushes one at a time, in order (an actor alone would interleave them at each `await`).
final class FlushSerializer: Sendable {
    private let lock = AsyncLock()

    func run(_ body: @Sendable () async throws -> Void) async throws {
        await lock.lock()
        do {
            try await body()
            await lock.unlock()
        } catch {
            await lock.unlock()
            throw error
        }
    }
}

/// A first-come first-served lock for async code.
actor AsyncLock {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func lock() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func unlock() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }
}
