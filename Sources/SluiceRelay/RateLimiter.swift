import Foundation
import Synchronization

/// Sliding 60-second windows of calls and tokens per key (a group and user, or a token), in one-second buckets.
public final class RateLimiter: Sendable {
    struct Window {
        var calls = [Int64](repeating: 0, count: 60)
        var tokens = [Int64](repeating: 0, count: 60)
        var stamps = [Int64](repeating: 0, count: 60)

        mutating func roll(_ second: Int64) {
            let slot = Int(second % 60)
            if stamps[slot] != second {
                stamps[slot] = second
                calls[slot] = 0
                tokens[slot] = 0
            }
        }

        func sum(_ values: [Int64], now: Int64) -> Int64 {
            var total: Int64 = 0
            for slot in 0..<60 where now - stamps[slot] < 60 { total += values[slot] }
            return total
        }

        /// Seconds until the oldest counted second leaves the window.
        func retryAfter(now: Int64, values: [Int64]) -> Int {
            var oldest = now
            for slot in 0..<60 where now - stamps[slot] < 60 && values[slot] > 0 { oldest = min(oldest, stamps[slot]) }
            return max(1, Int(oldest + 60 - now))
        }
    }

    /// A limit to check: a key with its calls-per-minute and tokens-per-minute caps (0 = none).
    public struct Limit: Sendable {
        public let key: String
        public let rpm: Int
        public let tpm: Int
        public let label: String

        public init(key: String, rpm: Int, tpm: Int, label: String) {
            self.key = key
            self.rpm = rpm
            self.tpm = tpm
            self.label = label
        }
    }

    /// A refusal: which limit and how long to wait.
    public struct Refusal: Error, Sendable {
        public let message: String
        public let retryAfter: Int
    }

    private let windows = Mutex<[String: Window]>([:])
    /// Counts from other instances, added to the local ones (see the scale-out notes).
    private let remote = Mutex<[String: (calls: Int64, tokens: Int64)]>([:])

    public init() {}

    /// Counts one call against every limit, or refuses without counting when one of them is full.
    public func admit(_ limits: [Limit], now: Double = Date().timeIntervalSince1970) throws(Refusal) {
        let second = Int64(now)
        let active = limits.filter { $0.rpm > 0 || $0.tpm > 0 }
        if active.isEmpty { return }
        let remoteCounts = remote.withLock { $0 }
        let refusal = windows.withLock { windows -> Refusal? in
            for limit in active {
                // Mutated in place: a copy taken out of the dictionary would copy its three arrays on write.
                windows[limit.key, default: Window()].roll(second)
                let window = windows[limit.key]!
                let others = remoteCounts[limit.key] ?? (0, 0)
                if limit.rpm > 0, window.sum(window.calls, now: second) + others.calls >= Int64(limit.rpm) {
                    return Refusal(message: "Rate limit reached: \(limit.rpm) requests per minute for \(limit.label)",
                                   retryAfter: window.retryAfter(now: second, values: window.calls))
                }
                if limit.tpm > 0, window.sum(window.tokens, now: second) + others.tokens >= Int64(limit.tpm) {
                    return Refusal(message: "Rate limit reached: \(limit.tpm) tokens per minute for \(limit.label)",
                                   retryAfter: window.retryAfter(now: second, values: window.tokens))
                }
            }
            for limit in active {
                let slot = Int(second % 60)
                windows[limit.key]!.calls[slot] += 1
            }
            if windows.count > 500_000 { windows = windows.filter { $0.value.stamps.max() ?? 0 > second - 60 } }
            return nil
        }
        if let refusal { throw refusal }
    }

    /// Adds the tokens a finished call used.
    public func addTokens(_ tokens: Int, to keys: [String], now: Double = Date().timeIntervalSince1970) {
        guard tokens > 0, !keys.isEmpty else { return }
        let second = Int64(now)
        windows.withLock { windows in
            for key in keys {
                windows[key, default: Window()].roll(second)
                windows[key]!.tokens[Int(second % 60)] += Int64(tokens)
            }
        }
    }

    /// This instance's counts in the window, per key (shared with other instances).
    public func localCounts(now: Double = Date().timeIntervalSince1970) -> [String: (calls: Int64, tokens: Int64)] {
        let second = Int64(now)
        return windows.withLock { windows in
            windows.compactMapValues { window in
                let calls = window.sum(window.calls, now: second), tokens = window.sum(window.tokens, now: second)
                return calls == 0 && tokens == 0 ? nil : (calls, tokens)
            }
        }
    }

    /// Replaces the counts other instances reported.
    public func setRemoteCounts(_ counts: [String: (calls: Int64, tokens: Int64)]) {
        remote.withLock { $0 = counts }
    }
}
