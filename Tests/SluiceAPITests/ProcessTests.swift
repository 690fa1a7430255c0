import Foundation
import NIOHTTP1
import SluiceCore
import Testing

/// `sluice serve` as users run it.
@Suite(.serialized) struct ProcessTests {
    @Test func serveStartsPrintsRootPasswordOnceAndStopsOnSIGTERM() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-serve-\(RandomSecret.string(count: 8))")
        let env = ["SLUICE_DATABASE": "sqlite:\(dir.path)/data/sluice.sqlite", "SLUICE_ROOT_PASSWORD": ""]
        let first = try await SluiceProcess(environment: env)
        let health = try await first.get("/healthz")
        #expect(health.status == 200)
        let printed = first.log
        let password = try #require(printed.firstMatch(of: /password: (\S+)/)?.1).description
        let login = try await first.request(.POST, "/api/user/login", body: #"{"username": "root", "password": "\#(password)"}"#)
        #expect(login.status == 200)
        first.signal(SIGTERM)
        #expect(try await first.waitForExit(seconds: 15) == 0)

        // Second start on the same database: no new password, same root.
        let second = try await SluiceProcess(environment: env)
        #expect(!second.log.contains("password:"))
        let again = try await second.request(.POST, "/api/user/login", body: #"{"username": "root", "password": "\#(password)"}"#)
        #expect(again.status == 200)
        second.signal(SIGTERM)
        #expect(try await second.waitForExit(seconds: 15) == 0)
    }

    @Test func flagsOverrideTheEnvironment() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-flags-\(RandomSecret.string(count: 8))")
        let port = SluiceProcess.freePort()
        // The environment names a port nobody listens on; the flag (given by SluiceProcess) wins.
        let server = try await SluiceProcess(environment: ["SLUICE_PORT": "1", "SLUICE_DATABASE": "sqlite:/nonexistent/x.sqlite",
                                                           "SLUICE_ROOT_PASSWORD": "root-password-1"],
                                             arguments: ["--database", "sqlite:\(dir.path)/db.sqlite"], port: port)
        #expect(try await server.get("/healthz").status == 200)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("db.sqlite").path))
        await server.stop()
    }
}
