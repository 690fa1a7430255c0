import Foundation
import Synchronization

/// Keeps failing channels out of rotation: after `threshold` failures in a row a channel rests for a back-off
/// period (doubling up to a ceiling); when it is over, one call probes it back in.
public final class ChannelHealth: Sendable {
    /// What the admin API shows of a channel's health.
    public struct State: Sendable {
        public var consecutiveFailures = 0
        public var totalFailures = 0
        public var totalSuccesses = 0
        /// Unix seconds until which the channel rests (0: in rotation).
        public var restingUntil: Double = 0
        public var backoffSeconds: Double = 0
        public var lastError = ""
        public var probing = false

        /// `healthy`, `resting` or `probing`.
        public func status(now: Double) -> String {
            if restingUntil > now { return "resting" }
            if probing || restingUntil > 0 { return "probing" }
            return "healthy"
        }
    }

    let threshold: Int
    let initialBackoff: Double
    let maxBackoff: Double
    private let states = Mutex<[Int64: State]>([:])

    public init(threshold: Int = 3, initialBackoff: Double = 10, maxBackoff: Double = 300) {
        self.threshold = threshold
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    /// Whether a call may go to the channel now (a resting channel may not; one probe goes to a channel whose rest is over).
    public func admits(_ channelId: Int64, now: Double = Date().timeIntervalSince1970) -> Bool {
        states.withLock { states in
            guard var state = states[channelId], state.restingUntil > 0 else { return true }
            if state.restingUntil > now { return false }
            if state.probing { return false }
            state.probing = true
            states[channelId] = state
            return true
        }
    }

    public func succeeded(_ channelId: Int64) {
        states.withLock { states in
            var state = states[channelId] ?? State()
            state.consecutiveFailures = 0
            state.totalSuccesses += 1
            state.restingUntil = 0
            state.backoffSeconds = 0
            state.probing = false
            states[channelId] = state
        }
    }

    public func failed(_ channelId: Int64, error: String, now: Double = Date().timeIntervalSince1970) {
        states.withLock { states in
            var state = states[channelId] ?? State()
            state.consecutiveFailures += 1
            state.totalFailures += 1
            state.lastError = String(error.prefix(300))
            if state.probing || state.consecutiveFailures >= threshold {
                state.backoffSeconds = state.backoffSeconds == 0 ? initialBackoff : min(maxBackoff, state.backoffSeconds * 2)
                state.restingUntil = now + state.backoffSeconds
            }
            state.probing = false
            states[channelId] = state
        }
    }

    /// The health of a channel.
    public func state(_ channelId: Int64) -> State { states.withLock { $0[channelId] ?? State() } }

    /// Puts a channel back in rotation (it was edited or tested successfully).
    public func reset(_ channelId: Int64) { _ = states.withLock { $0.removeValue(forKey: channelId) } }
}
