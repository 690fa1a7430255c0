import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import SluiceAPI
import SluiceCore
import SluiceStore
import SQLKit
import Testing

@Suite struct ObservabilityTests {
    @Test(arguments: Backend.all)
    func metricsRequestIdsAuditAndRevealThrottling(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 10, completion: 5))
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (root, alice, aliceId) = try await client.relaySetup(upstream)
            let (key, id) = try await client.key(as: alice)
            let ok = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(ok.headers[HTTPField.Name("X-Request-Id")!]?.count == 16, "every answer carries its request id")
            let refused = try await client.relay("/v1/chat/completions", key: "sk-nope", chatBody())
            #expect(refused.headers[HTTPField.Name("X-Request-Id")!] != nil)
            let metrics = try await client.call(.get, "/metrics")
            #expect(metrics.code == 200)
            #expect(metrics.text.contains(#"sluice_http_requests_total{route="/v1/chat/completions",method="POST",status="200"}"#))
            #expect(metrics.text.contains("sluice_http_request_duration_seconds_bucket"))
            #expect(metrics.text.contains(#"sluice_relay_calls_total{group="default",model="gpt-test",outcome="ok"} 1"#))
            #expect(metrics.text.contains("sluice_quota_spent_units"))
            #expect(metrics.text.contains("sluice_reservations_outstanding_units"))

            // The console's pages carry security headers.
            let page = try await client.call(.get, "/")
            #expect(page.code == 200)
            #expect(page.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("default-src 'self'") == true)
            #expect(page.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
            #expect(page.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")

            // Admin actions and key reveals are audited.
            _ = try await client.call(.put, "/api/user/", #"{"id": \#(aliceId), "quota": 777}"#, as: root)
            _ = try await client.call(.post, "/api/token/\(id)/key", as: alice)
            let audit = try await client.call(.get, "/api/log/?type=3", as: root)
            let lines = audit.data["items"].array.compactMap { $0["content"].string }
            #expect(lines.contains { $0.contains("updated user \(aliceId)") && $0.contains("-> 777") })
            #expect(lines.contains { $0.contains("revealed the key of token \(id)") })

            // Key reveals are throttled per user.
            var codes: [Int] = []
            for _ in 0..<32 { codes.append(try await client.call(.post, "/api/token/\(id)/key", as: alice).code) }
            #expect(codes.contains(429))
            let throttled = try await client.call(.post, "/api/token/\(id)/key", as: alice)
            #expect(throttled.code == 429)
            #expect(throttled.headers[.retryAfter] != nil)
        }
        await upstream.stop()
    }

    @Test func doctorFindsAWrongSecret() async throws {
        let env = try await TestEnvironment.make(.sqlite)
        try await env.test { client in
            let root = try await client.loginRoot()
            _ = try await client.key(as: root)
        }
        let good = await Doctor.run(env.config)
        let failures = good.filter { !$0.ok }.map(\.detail)
        #expect(failures.isEmpty, "\(failures)")
        var wrong = env.config
        wrong.secret = "not-the-secret"
        let bad = await Doctor.run(wrong)
        #expect(bad.contains { !$0.ok && $0.check == "stored keys" })
        var proxies = env.config
        proxies.trustedProxies = "10.0.0.0/99"
        let proxyFindings = await Doctor.run(proxies)
        #expect(proxyFindings.contains { !$0.ok && $0.check == "trusted proxies" })
    }
}

/// A process killed or stopped under load keeps its books.
@Suite(.serialized) struct CrashSafetyTests {
    func load(_ server: SluiceProcess, key: String, calls: Int, lanes: Int) async -> Int {
        await withTaskGroup(of: Int.self) { group in
            for _ in 0..<lanes {
                group.addTask {
                    var ok = 0
                    for _ in 0..<(calls / lanes) {
                        // A lane stops at its first failure: the server is going away.
                        guard let status = try? await server.request(.POST, "/v1/chat/completions", body: chatBody(),
                                                                     headers: [("Authorization", "Bearer \(key)")], timeout: .seconds(5)).status,
                              status == 200 else { break }
                        ok += 1
                    }
                    return ok
                }
            }
            var total = 0
            for await count in group { total += count }
            return total
        }
    }

    func seed(_ server: SluiceProcess, upstream: FakeUpstream) async throws -> String {
        let login = try await server.request(.POST, "/api/user/login", body: #"{"username": "root", "password": "root-password-1"}"#)
        let cookie = String(try #require(login.headers.first(name: "set-cookie")).split(separator: ";")[0])
        let headers = [("Cookie", cookie)]
        _ = try await server.request(.POST, "/api/model/", body: #"{"model": "gpt-test", "input_price": 1, "output_price": 1, "call_price": 0.01}"#, headers: headers)
        _ = try await server.request(.POST, "/api/channel/", body: #"{"name": "fake", "type": "openai", "base_url": "\#(upstream.baseURL)", "key": "k", "models": ["gpt-test"]}"#, headers: headers)
        _ = try await server.request(.PUT, "/api/user/", body: #"{"id": 1, "quota": 1000000000}"#, headers: headers)
        let token = try await server.request(.POST, "/api/token/", body: #"{"name": "load", "remain_quota": 100000000, "billing_mode": "per_call"}"#, headers: headers)
        return try #require((try JSON.parse(token.body))["data"][0]["key"].string)
    }

    func logCount(_ database: Database) async throws -> Int {
        try await database.withSQL { sql in
            try await sql.raw("SELECT COUNT(*) AS n FROM logs WHERE type = 2").first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    @Test func killUnderLoadKeepsTheLedgerConsistent() async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 10, completion: 5))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-crash-\(RandomSecret.string(count: 8))")
        let environment = ["SLUICE_DATABASE": "sqlite:\(dir.path)/db.sqlite", "SLUICE_ROOT_PASSWORD": "root-password-1"]
        let server = try await SluiceProcess(environment: environment)
        let key = try await seed(server, upstream: upstream)
        // Calls answered, then quiet for longer than a flush: every answered call must be in the log after a kill -9.
        let answered = await load(server, key: key, calls: 200, lanes: 10)
        try await Task.sleep(for: .milliseconds(300))
        // More load, killed in the middle.
        let inFlight = Task { await load(server, key: key, calls: 400, lanes: 20) }
        try await Task.sleep(for: .milliseconds(300))
        server.signal(SIGKILL)
        let answeredDuringKill = await inFlight.value
        _ = try await server.waitForExit(seconds: 5)
        // Restart on the same data: the ledger agrees and the quiet period's calls are all there.
        let again = try await SluiceProcess(environment: environment)
        let database = try Database(location: DatabaseLocation(parsing: "sqlite:\(dir.path)/db.sqlite"), logger: Logger(label: "test"), maxConnections: 1)
        let logged = try await logCount(database)
        #expect(logged >= answered, "every call answered before the last flush is logged (\(logged) logged, \(answered) answered before)")
        #expect(logged <= answered + answeredDuringKill)
        let report = try await LedgerCheck(database: database).run()
        #expect(report.ok, "\(report.problems)")
        await database.shutdown()
        again.signal(SIGTERM)
        #expect(try await again.waitForExit(seconds: 15) == 0)
        await upstream.stop()
    }

    @Test func sigtermUnderLoadLosesNothing() async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 10, completion: 5))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-term-\(RandomSecret.string(count: 8))")
        let environment = ["SLUICE_DATABASE": "sqlite:\(dir.path)/db.sqlite", "SLUICE_ROOT_PASSWORD": "root-password-1"]
        let server = try await SluiceProcess(environment: environment)
        let key = try await seed(server, upstream: upstream)
        let inFlight = Task { await load(server, key: key, calls: 400, lanes: 20) }
        try await Task.sleep(for: .milliseconds(300))
        server.signal(SIGTERM)
        let answered = await inFlight.value
        #expect(try await server.waitForExit(seconds: 20) == 0)
        let database = try Database(location: DatabaseLocation(parsing: "sqlite:\(dir.path)/db.sqlite"), logger: Logger(label: "test"), maxConnections: 1)
        let logged = try await logCount(database)
        #expect(logged == answered, "every answered call is logged and charged (\(logged) of \(answered))")
        let report = try await LedgerCheck(database: database).run(expectNoLeases: true)
        #expect(report.ok, "\(report.problems)")
        await database.shutdown()
        await upstream.stop()
    }
}
