import Foundation
import HTTPTypes
import HummingbirdTesting
import SluiceAPI
import SluiceCore
import SluiceStore
import Testing

@Suite struct ServerTests {
    @Test(arguments: Backend.all)
    func healthAndFirstStart(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let health = try await client.call(.get, "/healthz")
            #expect(health.code == 200)
            let root = try await client.loginRoot()
            let me = try await client.call(.get, "/api/user/self", as: root)
            #expect(me.data["username"].string == "root")
            #expect(me.data["role"].int == 100)
            let groups = try await client.call(.get, "/api/group/default", as: root)
            #expect(groups.data["ratio"].double == 1)
        }
    }

    @Test(arguments: Backend.all)
    func migrationsAreVersionedAndRunOnce(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        let first = try await database.migrate()
        #expect(first == Array(1...first.count), "every version once, in order")
        #expect(first.count >= 2)
        let second = try await database.migrate()
        #expect(second.isEmpty)
        #expect(try await database.schemaVersion() == first.count)
        await database.shutdown()
    }

    @Test func rootPasswordIsGeneratedWhenNotGiven() async throws {
        var env = try await TestEnvironment.make(.sqlite) { $0.rootPassword = nil }
        _ = env
        let database = try env.openDatabase()
        try await database.migrate()
        await database.shutdown()
        env = try await TestEnvironment.make(.sqlite) { $0.rootPassword = nil }
        // The generated password is printed once; the seed answers it so the print can be checked.
        let generated = try await SeedProbe.seed(env.config)
        #expect(generated != nil)
        #expect((generated ?? "").count >= 16)
        let again = try await SeedProbe.seed(env.config)
        #expect(again == nil, "printed only on the first start")
    }

    @Test func sqliteFolderIsCreated() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-nested-\(RandomSecret.string(count: 8))/a/b")
        var env = try await TestEnvironment.make(.sqlite)
        env = TestEnvironment(config: { var c = env.config; c.database = "sqlite:\(dir.path)/db.sqlite"; c.secret = nil; return c }(), backend: .sqlite)
        try await env.test { client in
            let health = try await client.call(.get, "/healthz")
            #expect(health.code == 200)
        }
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("db.sqlite").path))
        let secretFile = dir.appendingPathComponent("sluice.secret").path
        #expect(FileManager.default.fileExists(atPath: secretFile))
        let mode = (try FileManager.default.attributesOfItem(atPath: secretFile)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
    }

    @Test func configurationFlagsOverEnvironmentOverDefaults() {
        let defaults = SluiceConfig.resolve(environment: [:])
        #expect(defaults.host == "127.0.0.1")
        #expect(defaults.port == 3000)
        #expect(defaults.database == "sqlite:data/sluice.sqlite")
        #expect(defaults.rootPassword == nil)
        #expect(defaults.passwordCost == 10)
        #expect(SluiceConfig.resolve(environment: ["SLUICE_BCRYPT_COST": "3"]).passwordCost == 10, "below 4 is ignored")
        let env = ["SLUICE_HOST": "0.0.0.0", "SLUICE_PORT": "4000", "SLUICE_DATABASE": "sqlite:/tmp/x.sqlite",
                   "SLUICE_ROOT_PASSWORD": "pw-12345678", "SLUICE_SECRET": "s3", "SLUICE_BCRYPT_COST": "12"]
        let fromEnv = SluiceConfig.resolve(environment: env)
        #expect(fromEnv.host == "0.0.0.0")
        #expect(fromEnv.port == 4000)
        #expect(fromEnv.database == "sqlite:/tmp/x.sqlite")
        #expect(fromEnv.rootPassword == "pw-12345678")
        #expect(fromEnv.secret == "s3")
        #expect(fromEnv.passwordCost == 12)
        let flags = SluiceConfig.resolve(environment: env, host: "127.0.0.2", port: 5000, database: "sqlite:/tmp/y.sqlite")
        #expect(flags.host == "127.0.0.2")
        #expect(flags.port == 5000)
        #expect(flags.database == "sqlite:/tmp/y.sqlite")
    }

    @Test func postgresNeedsASecret() async throws {
        var config = SluiceConfig()
        config.database = "postgres://nobody@127.0.0.1:1/none"
        config.secret = nil
        await #expect(throws: (any Error).self) { _ = try await buildApplication(config) }
    }

    @Test(arguments: Backend.all)
    func unknownRoutesAndMalformedBodiesAnswerTheEnvelope(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            let missing = try await client.call(.get, "/api/nothing/here", as: root)
            #expect(missing.code == 404)
            #expect(missing.json["success"].bool == false)
            #expect(!missing.message.isEmpty)
            for body in ["{bad", "[]", "42", #"{"name": 5}"#, #"{"name": "x", "remain_quota": "lots"}"#, ""] {
                let answer = try await client.call(.post, "/api/token/", body, as: root)
                #expect(answer.code == 400, "body \(body)")
                #expect(answer.json["success"].bool == false)
                #expect(!answer.message.isEmpty)
            }
            let wrongType = try await client.call(.post, "/api/token/", #"{"name": "x", "remain_quota": "lots"}"#, as: root)
            #expect(wrongType.message.contains("remain_quota"))
            let badPage = try await client.call(.get, "/api/token/?p=abc", as: root)
            #expect(badPage.code == 400)
        }
    }
}

/// Runs the first-start seeding against a configuration, as `sluice serve` does.
enum SeedProbe {
    static func seed(_ config: SluiceConfig) async throws -> String? {
        try await SluiceAPI.firstStart(config)
    }
}
