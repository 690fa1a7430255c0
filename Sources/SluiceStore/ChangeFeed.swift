import Synchronization

/// A change that caches must learn of.
public enum Change: Sendable, Hashable {
    case token(Int64)
    case user(Int64)
    case groups
    case channels
    case prices
    /// Everything may have changed (periodic resync, or a lost notification connection).
    case all
}

/// Tells every cache of a change: subscribers in this process at once; other instances through the database's
/// notification channel when one is attached (PostgreSQL LISTEN/NOTIFY).
public final class ChangeFeed: Sendable {
    private let subscribers = Mutex<[@Sendable (Change) -> Void]>([])
    private let remote = Mutex<(@Sendable (Change) -> Void)?>(nil)

    /// An empty feed.
    public init() {}

    /// Calls `handler` for every change from now on.
    public func subscribe(_ handler: @escaping @Sendable (Change) -> Void) {
        subscribers.withLock { $0.append(handler) }
    }

    /// Sends local changes to other instances too.
    public func attachRemote(_ send: @escaping @Sendable (Change) -> Void) {
        remote.withLock { $0 = send }
    }

    /// Announces a change made here: local caches now, other instances through the remote channel.
    public func publish(_ change: Change) {
        deliver(change)
        remote.withLock { $0 }?(change)
    }

    /// Delivers a change that came from another instance to the local caches.
    public func deliver(_ change: Change) {
        for handler in subscribers.withLock({ $0 }) { handler(change) }
    }

    public func tokenChanged(_ id: Int64) { publish(.token(id)) }
    public func userChanged(_ id: Int64) { publish(.user(id)) }
}

extension Change {
    /// The wire form used in NOTIFY payloads: `t:12`, `u:3`, `g`, `c`, `p`, `*`.
    public var wire: String {
        switch self {
        case .token(let id): return "t:\(id)"
        case .user(let id): return "u:\(id)"
        case .groups: return "g"
        case .channels: return "c"
        case .prices: return "p"
        case .all: return "*"
        }
    }

    /// Parses the wire form; unknown text means everything.
    public init(wire: String) {
        let parts = wire.split(separator: ":", maxSplits: 1)
        switch (parts.first.map(String.init), parts.count == 2 ? Int64(parts[1]) : nil) {
        case ("t", let id?): self = .token(id)
        case ("u", let id?): self = .user(id)
        case ("g", _): self = .groups
        case ("c", _): self = .channels
        case ("p", _): self = .prices
        default: self = .all
        }
    }
}
