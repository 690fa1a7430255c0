import Foundation
import SluiceCore
import Synchronization

/// A token as admission needs it, with its allow list parsed once. A class: a call takes it from the cache with one
/// reference instead of copying the token's twenty fields.
public final class CachedToken: Sendable {
    public let token: Token
    public let allowList: IPAllowList
    public let modelLimits: Set<String>

    init(token: Token, allowList: IPAllowList, modelLimits: Set<String>) {
        self.token = token
        self.allowList = allowList
        self.modelLimits = modelLimits
    }
}

/// Key → token lookups in memory: an HMAC, one dictionary probe, constant from ten tokens to millions.
/// Misses go to the database once; unknown keys are remembered briefly so that guessing costs nothing.
/// Entries are dropped when the change feed names their token or user.
public final class KeyCache: Sendable {
    struct State {
        var byHash: [KeyDigest: CachedToken] = [:]
        var hashById: [Int64: KeyDigest] = [:]
        var unknown: [KeyDigest: Double] = [:]
    }

    let tokens: TokenStore
    let secrets: SecretBox
    let capacity: Int
    private let state = Mutex(State())
    /// How long an unknown key is remembered as unknown.
    let unknownSeconds: Double = 5

    public init(tokens: TokenStore, secrets: SecretBox, capacity: Int = 2_000_000) {
        self.tokens = tokens
        self.secrets = secrets
        self.capacity = capacity
    }

    /// The digest a key is cached under.
    public func digest(_ key: String) -> KeyDigest { secrets.lookupDigest(key) }

    /// The token with that key, or nil. `digest`, when given, is `digest(key)` computed earlier.
    nonisolated(nonsending) public func lookup(key: String, digest: KeyDigest? = nil) async throws -> CachedToken? {
        guard RandomSecret.looksLikeAPIKey(key) else { return nil }
        let hash = digest ?? secrets.lookupDigest(key)
        let cached = state.withLock { state -> (CachedToken?, Bool) in
            if let entry = state.byHash[hash] { return (entry, true) }
            if let seen = state.unknown[hash], Date().timeIntervalSince1970 - seen < unknownSeconds { return (nil, true) }
            return (nil, false)
        }
        if cached.1 { return cached.0 }
        let now = Date().timeIntervalSince1970
        guard let token = try await tokens.find(key: key) else {
            state.withLock { state in
                if state.unknown.count > 100_000 { state.unknown.removeAll() }
                state.unknown[hash] = now
            }
            return nil
        }
        let entry = CachedToken(token: token, allowList: (try? IPAllowList(parsing: token.allowIPs)) ?? (try! IPAllowList(parsing: "")),
                                modelLimits: Set(token.modelLimits))
        state.withLock { state in
            if state.byHash.count >= capacity {
                state.byHash.removeAll(keepingCapacity: true)
                state.hashById.removeAll(keepingCapacity: true)
            }
            state.byHash[hash] = entry
            state.hashById[token.id] = hash
            state.unknown[hash] = nil
        }
        return entry
    }

    /// Forgets a token (it changed or went away).
    public func invalidate(tokenId: Int64) {
        state.withLock { state in
            if let hash = state.hashById.removeValue(forKey: tokenId) { state.byHash[hash] = nil }
        }
    }

    /// Forgets the tokens of a user.
    public func invalidate(userId: Int64) {
        state.withLock { state in
            for (hash, entry) in state.byHash where entry.token.userId == userId {
                state.byHash[hash] = nil
                state.hashById[entry.token.id] = nil
            }
        }
    }

    /// Forgets everything.
    public func clear() {
        state.withLock { $0 = State() }
    }

    /// Cached tokens.
    public var count: Int { state.withLock { $0.byHash.count } }
}

/// Users as admission needs them (status and group), cached by id.
public final class UserCache: Sendable {
    public struct Entry: Sendable {
        public let status: Int
        public let group: String
    }

    let users: UserStore
    private let state = Mutex<[Int64: Entry]>([:])

    public init(users: UserStore) { self.users = users }

    /// The user's status and group, or nil when the user is gone.
    nonisolated(nonsending) public func lookup(_ id: Int64) async throws -> Entry? {
        if let entry = state.withLock({ $0[id] }) { return entry }
        guard let user = try await users.find(id: id) else { return nil }
        let entry = Entry(status: user.status, group: user.group)
        state.withLock { state in
            if state.count > 1_000_000 { state.removeAll() }
            state[id] = entry
        }
        return entry
    }

    public func invalidate(_ id: Int64) { _ = state.withLock { $0.removeValue(forKey: id) } }
    public func clear() { state.withLock { $0.removeAll() } }
}
