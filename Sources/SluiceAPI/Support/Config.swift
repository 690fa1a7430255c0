import Foundation
import SluiceStore

/// Everything `sluice serve` can be told: flags override environment variables, which override defaults.
public struct SluiceConfig: Sendable {
    /// Listen address.
    public var host: String = "127.0.0.1"
    /// Listen port (0 picks a free one).
    public var port: Int = 3000
    /// `sqlite:PATH` or `postgres://...`.
    public var database: String = "sqlite:data/sluice.sqlite"
    /// Password of the `root` admin created on first start; random and printed once when nil.
    public var rootPassword: String?
    /// Master secret for key encryption and lookup; generated beside the SQLite file when nil, required with PostgreSQL.
    public var secret: String?
    /// Addresses or ranges of reverse proxies whose X-Forwarded-For is believed.
    public var trustedProxies: String = ""
    /// Largest request body accepted, in bytes.
    public var maxBodyBytes: Int = 32 * 1024 * 1024
    /// Whether anyone may register an account.
    public var registrationOpen: Bool = true
    /// Balance given to a newly registered user, in quota units.
    public var newUserQuota: Int64 = 0
    /// Lifetime of a login session, in seconds.
    public var sessionSeconds: Int64 = 30 * 24 * 3600
    /// How many channels of one group a call may try before the next group (nil: every channel once).
    public var channelsPerGroup: Int?
    /// Connections to PostgreSQL per instance (SQLite always uses one).
    public var databasePoolSize: Int = 8
    /// Seconds without a heartbeat after which an instance counts as dead and its leases come back.
    public var instanceTimeoutSeconds: Int64 = 15
    /// Where the console's files are served from; nil uses the files built into the binary's folder or `Public/`.
    public var publicDirectory: String?
    /// bcrypt cost of new password hashes (4 to 31; each step doubles the work). Existing hashes keep their own.
    public var passwordCost: UInt8 = PasswordHasher.defaultCost

    /// Defaults.
    public init() {}

    /// Flags over environment over defaults: the command line's values win where given.
    public static func resolve(environment: [String: String] = ProcessInfo.processInfo.environment,
                               host: String? = nil, port: Int? = nil, database: String? = nil) -> SluiceConfig {
        var config = fromEnvironment(environment)
        if let host { config.host = host }
        if let port { config.port = port }
        if let database { config.database = database }
        return config
    }

    /// Reads the `SLUICE_*` environment variables over the defaults.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> SluiceConfig {
        var config = SluiceConfig()
        if let value = environment["SLUICE_HOST"], !value.isEmpty { config.host = value }
        if let value = environment["SLUICE_PORT"], let port = Int(value) { config.port = port }
        if let value = environment["SLUICE_DATABASE"], !value.isEmpty { config.database = value }
        if let value = environment["SLUICE_ROOT_PASSWORD"], !value.isEmpty { config.rootPassword = value }
        if let value = environment["SLUICE_SECRET"], !value.isEmpty { config.secret = value }
        if let value = environment["SLUICE_TRUSTED_PROXIES"] { config.trustedProxies = value }
        if let value = environment["SLUICE_MAX_BODY_BYTES"], let bytes = Int(value), bytes > 0 { config.maxBodyBytes = bytes }
        if let value = environment["SLUICE_REGISTRATION"] { config.registrationOpen = !["0", "false", "off", "no"].contains(value.lowercased()) }
        if let value = environment["SLUICE_NEW_USER_QUOTA"], let quota = Int64(value), quota >= 0 { config.newUserQuota = quota }
        if let value = environment["SLUICE_CHANNEL_RETRIES"], let count = Int(value), count >= 0 { config.channelsPerGroup = count + 1 }
        if let value = environment["SLUICE_DB_POOL"], let size = Int(value), size >= 1 { config.databasePoolSize = size }
        if let value = environment["SLUICE_INSTANCE_TIMEOUT"], let seconds = Int64(value), seconds >= 2 { config.instanceTimeoutSeconds = seconds }
        if let value = environment["SLUICE_PUBLIC_DIR"], !value.isEmpty { config.publicDirectory = value }
        if let value = environment["SLUICE_BCRYPT_COST"], let cost = UInt8(value), (4...31).contains(cost) { config.passwordCost = cost }
        return config
    }
}
