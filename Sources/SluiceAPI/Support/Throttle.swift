import Foundation
import Synchronization

/// Counts events per key in a sliding window, in memory, to throttle abuse (failed logins, key reveals).
final class Throttle: Sendable {
    private let limit: Int
    private let window: Double
    private let state = Mutex<[String: [Double]]>([:])

    /// At most `limit` events per key in `window` seconds.
    init(limit: Int, window: Double) {
        self.limit = limit
        self.window = window
    }

    /// Seconds to wait when the key is over its limit, else nil.
    func retryAfter(_ key: String, now: Double = Date().timeIntervalSince1970) -> Int? {
        state.withLock { events in
            let live = (events[key] ?? []).filter { $0 > now - window }
            events[key] = live.isEmpty ? nil : live
            guard live.count >= limit, let oldest = live.first else { return nil }
            return max(1, Int((oldest + window - now).rounded(.up)))
        }
    }

    /// Records one event for the key.
    func record(_ key: String, now: Double = Date().timeIntervalSince1970) {
        state.withLock { events in
            var live = (events[key] ?? []).filter { $0 > now - window }
            live.append(now)
            events[key] = live
            if events.count > 100_000 { events.removeAll() }
        }
    }

    /// Forgets the key (after a successful login).
    func reset(_ key: String) {
        _ = state.withLock { $0.removeValue(forKey: key) }
    }
}
