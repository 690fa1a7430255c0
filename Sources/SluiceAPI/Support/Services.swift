import Foundation
import Logging
import SluiceCore
import SluiceRelay
import SluiceStore

/// What the handlers share: the database, its stores, the secrets and the configuration.
public final class Services: Sendable {
    public let config: SluiceConfig
    public let database: Database
    public let secrets: SecretBox
    public let users: UserStore
    public let tokens: TokenStore
    public let groups: GroupStore
    public let sessions: SessionStore
    public let settings: SettingStore
    public let prices: PriceStore
    public let channels: ChannelStore
    public let logs: LogStore
    /// Tells caches (here and on other instances) of changes.
    public let changes = ChangeFeed()
    public let keyCache: KeyCache
    public let userCache: UserCache
    public let catalog: Catalog
    public let ledger: QuotaLedger
    public let relay: RelayEngine
    let upstreamClient = UpstreamClient()
    let loginFailuresByName = Throttle(limit: 10, window: 600)
    let loginFailuresByAddress = Throttle(limit: 30, window: 600)
    let logger: Logger
    /// Proxies whose X-Forwarded-For is believed.
    let trustedProxies: IPAllowList

    init(config: SluiceConfig, database: Database, secrets: SecretBox, ledger: QuotaLedger, logger: Logger) {
        self.config = config
        self.database = database
        self.secrets = secrets
        self.logger = logger
        trustedProxies = (try? IPAllowList(parsing: config.trustedProxies)) ?? (try! IPAllowList(parsing: ""))
        users = UserStore(database: database)
        tokens = TokenStore(database: database, secrets: secrets)
        groups = GroupStore(database: database)
        sessions = SessionStore(database: database)
        settings = SettingStore(database: database)
        prices = PriceStore(database: database)
        channels = ChannelStore(database: database, secrets: secrets)
        logs = LogStore(database: database)
        keyCache = KeyCache(tokens: tokens, secrets: secrets)
        userCache = UserCache(users: users)
        catalog = Catalog(groups: groups, channels: channels, prices: prices)
        self.ledger = ledger
        relay = RelayEngine(keys: keyCache, users: userCache, catalog: catalog, ledger: ledger, client: upstreamClient,
                            health: ChannelHealth(), rateLimiter: RateLimiter(), settings: RelaySettings(channelsPerGroup: config.channelsPerGroup),
                            logger: logger, sharedRates: database.dialect == .postgres ? SharedRateWindows(database: database) : nil)
        subscribeCaches()
    }

    /// Key reveals per user: 30 a minute.
    let keyReveals = Throttle(limit: 30, window: 60)

    /// Records who did what, as a `manage` row of the log (shown to admins in `/api/log/?type=3`).
    func audit(_ actor: User, _ action: String, tokenId: Int64? = nil, tokenName: String = "", ip: String = "") async {
        let entry = LogEntry(createdAt: Clock.nowSeconds(), type: LogEntry.Kind.manage, userId: actor.id, tokenId: tokenId, tokenName: tokenName,
                             modelName: "", group: "", channelId: nil, channelName: "", promptTokens: 0, completionTokens: 0, quota: 0,
                             useTimeMs: 0, isStream: false, ip: ip, content: "\(actor.username): \(action)", requestId: "")
        do { try await logs.insert(entry) } catch { logger.error("audit write failed", metadata: ["error": "\(error)", "action": "\(action)"]) }
    }

    /// Writes the calls settled so far, so that balances read next are exact (read-your-writes on this instance).
    func settleReads() async {
        if ledger.hasUnwritten { try? await ledger.flush() }
    }

    /// Announces a change made here; a changed catalog is reloaded before this returns, so the next call sees it.
    func announce(_ change: Change) async {
        switch change {
        case .groups, .channels, .prices, .all: try? await catalog.reload()
        default: break
        }
        changes.publish(change)
    }

    /// Keeps caches and leases true to the store: a changed token or user is dropped (and its free lease returned),
    /// changed groups, channels or prices reload the catalog.
    private func subscribeCaches() {
        let keyCache = self.keyCache, userCache = self.userCache, catalog = self.catalog, ledger = self.ledger, logger = self.logger
        changes.subscribe { change in
            switch change {
            case .token(let id):
                keyCache.invalidate(tokenId: id)
                ledger.returnLease(.token(id))
            case .user(let id):
                userCache.invalidate(id)
                keyCache.invalidate(userId: id)
                ledger.returnLease(.user(id))
            case .groups, .channels, .prices:
                Task { do { try await catalog.reload() } catch { logger.error("catalog reload failed", metadata: ["error": "\(error)"]) } }
            case .all:
                keyCache.clear()
                userCache.clear()
                Task { try? await catalog.reload() }
            }
        }
    }
}

/// One-off start-up work: the master secret, migrations, the root user and the default group.
enum Bootstrap {
    /// Finds or creates the master secret: the configured one, else a file beside the SQLite database (mode 0600).
    static func masterSecret(config: SluiceConfig, location: DatabaseLocation) throws -> String {
        if let secret = config.secret { return secret }
        switch location {
        case .postgres:
            throw BootstrapError("SLUICE_SECRET is required with PostgreSQL: every instance must share the same secret")
        case .sqlite(let path):
            let file = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("sluice.secret")
            if let existing = try? String(contentsOf: file, encoding: .utf8), !existing.isEmpty {
                return existing.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            let secret = RandomSecret.string(count: 64)
            _ = FileManager.default.createFile(atPath: file.path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600])
            return secret
        }
    }

    /// Creates `root` and `default` on an empty database. Answers the generated root password, if one was made.
    static func seed(services: Services) async throws -> String? {
        if try await services.groups.find(name: Group.defaultName) == nil {
            _ = try await services.groups.create(Group(id: 0, name: Group.defaultName, description: "Default group", ratio: .one,
                                                       models: [], rpm: 0, tpm: 0, selectable: true))
        }
        guard try await services.users.count() == 0 else { return nil }
        let generated = services.config.rootPassword == nil ? RandomSecret.string(count: 20) : nil
        let password = services.config.rootPassword ?? generated!
        _ = try await services.users.create(username: "root", passwordHash: try await PasswordHasher.hash(password, cost: services.config.passwordCost), role: User.Role.root,
                                            group: Group.defaultName, quota: 0)
        return generated
    }
}

/// A start-up failure the operator must fix.
struct BootstrapError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
