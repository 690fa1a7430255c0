import Foundation
import Logging
import SluiceCore
import SluiceStore

/// `sluice doctor`: checks a configuration before it serves, and says what to fix.
public enum Doctor {
    /// One check's outcome.
    public struct Finding: Sendable {
        public let ok: Bool
        public let check: String
        public let detail: String
    }

    /// Runs every check against `config` (read-only: it creates nothing, migrates nothing).
    public static func run(_ config: SluiceConfig) async -> [Finding] {
        var findings: [Finding] = []
        func add(_ ok: Bool, _ check: String, _ detail: String) { findings.append(Finding(ok: ok, check: check, detail: detail)) }

        add((0...65535).contains(config.port), "port", "listening on \(config.host):\(config.port)")
        do {
            _ = try IPAllowList(parsing: config.trustedProxies)
            add(true, "trusted proxies", config.trustedProxies.isEmpty ? "none (X-Forwarded-For is ignored)" : config.trustedProxies)
        } catch {
            add(false, "trusted proxies", "SLUICE_TRUSTED_PROXIES: \(error.message)")
        }
        let publicDir = config.publicDirectory ?? "Public"
        add(FileManager.default.fileExists(atPath: publicDir + "/index.html"), "console files",
            FileManager.default.fileExists(atPath: publicDir + "/index.html") ? "\(publicDir)/index.html" : "\(publicDir)/index.html is missing: run from the repository root or set SLUICE_PUBLIC_DIR")

        let location: DatabaseLocation
        do {
            location = try DatabaseLocation(parsing: config.database)
            add(true, "database", "\(location)")
        } catch {
            add(false, "database", "\(error)")
            return findings
        }
        var secret = config.secret
        switch location {
        case .postgres:
            add(config.secret != nil, "secret", config.secret == nil ? "SLUICE_SECRET is required with PostgreSQL (the same value on every instance)" : "set")
        case .sqlite(let path):
            let file = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("sluice.secret").path
            if config.secret != nil {
                add(true, "secret", "from SLUICE_SECRET")
            } else if FileManager.default.fileExists(atPath: file) {
                let mode = (try? FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue ?? 0
                add(mode & 0o077 == 0, "secret", mode & 0o077 == 0 ? "\(file) (mode 0600)" : "\(file) is readable by others: chmod 600 it")
                secret = (try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            } else {
                add(true, "secret", "none yet: one is generated at \(file) on first start")
            }
        }
        if case .sqlite(let path) = location, !FileManager.default.fileExists(atPath: path) {
            add(true, "schema", "no database yet: it is created and migrated on first start")
            return findings
        }
        do {
            let database = try Database(location: location, logger: Logger(label: "sluice-doctor"), maxConnections: 1)
            defer { Task { await database.shutdown() } }
            let version = try await database.schemaVersion()
            let latest = Schema.latestVersion
            add(version <= latest, "schema", version == latest ? "version \(version), up to date" : version < latest
                ? "version \(version); \(latest - version) migration(s) run on next start" : "version \(version) is newer than this binary (\(latest)): upgrade Sluice")
            let users = UserStore(database: database)
            add(try await users.find(username: "root") != nil, "root user", "present")
            if let secret {
                let sample = try await TokenStore(database: database, secrets: SecretBox(masterSecret: secret)).sampleKeyOpens()
                switch sample {
                case nil: add(true, "stored keys", "no keys stored yet")
                case true?: add(true, "stored keys", "the secret opens them")
                case false?: add(false, "stored keys", "the secret does not open the stored keys: this is not the secret they were sealed with")
                }
            }
            await database.shutdown()
        } catch {
            add(false, "database connection", "\(error)")
        }
        return findings
    }
}
