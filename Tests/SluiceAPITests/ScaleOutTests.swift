import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SluiceAPI
import SluiceCore
import SluiceStore
import Testing

/// Several `sluice serve` processes on one PostgreSQL (needs `SLUICE_TEST_POSTGRES_URL`; the test command sets it).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"] != nil))
struct ScaleOutTests {
    struct Instance {
        let process: SluiceProcess
        let cookie: String

        func api(_ method: HTTPMethod, _ path: String, _ body: String? = nil) async throws -> JSON {
            let answer = try await process.request(method, path, body: body, headers: [("Cookie", cookie)])
            return (try? JSON.parse(answer.body)) ?? .null
        }

        func call(_ key: String, _ body: String = chatBody()) async throws -> Int {
            try await process.request(.POST, "/v1/chat/completions", body: body, headers: [("Authorization", "Bearer \(key)")]).status
        }
    }

    func start(_ environment: [String: String]) async throws -> Instance {
        let process = try await SluiceProcess(environment: environment)
        let login = try await process.request(.POST, "/api/user/login", body: #"{"username": "root", "password": "root-password-1"}"#)
        let cookie = try #require(login.headers.first(name: "set-cookie")).split(separator: ";")[0]
        return Instance(process: process, cookie: String(cookie))
    }

    @Test func instancesStayExactShareChangesAndRecoverFromACrash() async throws {
        let url = try await TestEnvironment.createPostgresDatabase()
        let upstream = try await FakeUpstream.start(.answer(prompt: 10, completion: 5))
        let environment = ["SLUICE_DATABASE": url, "SLUICE_SECRET": "shared-secret-of-the-cluster", "SLUICE_ROOT_PASSWORD": "root-password-1",
                           "SLUICE_INSTANCE_TIMEOUT": "3"]
        let a = try await start(environment)
        let b = try await start(environment)

        // Seed through A: a per-call price of 0.01 USD (5000 units), a channel, root's balance.
        _ = try await a.api(.POST, "/api/model/", #"{"model": "gpt-test", "input_price": 1, "output_price": 1, "call_price": 0.01}"#)
        _ = try await a.api(.POST, "/api/channel/", #"{"name": "fake", "type": "openai", "base_url": "\#(upstream.baseURL)", "key": "k", "models": ["gpt-test"]}"#)
        _ = try await a.api(.PUT, "/api/user/", #"{"id": 1, "quota": 1000000000}"#)

        // 1. Quota for exactly 200 calls, 1000 concurrent calls over both instances: exactly 200 pass.
        let created = try await a.api(.POST, "/api/token/", #"{"name": "two-hundred", "remain_quota": 1000000, "billing_mode": "per_call"}"#)
        let key = try #require(created["data"][0]["key"].string)
        let tokenId = try #require(created["data"][0]["id"].int)
        let codes = try await withThrowingTaskGroup(of: [Int].self) { group in
            for lane in 0..<50 {
                group.addTask {
                    var codes: [Int] = []
                    for index in 0..<20 { codes.append(try await ((lane + index) % 2 == 0 ? a : b).call(key)) }
                    return codes
                }
            }
            var all: [Int] = []
            for try await part in group { all += part }
            return all
        }
        #expect(codes.count == 1000)
        #expect(codes.filter { $0 == 200 }.count == 200, "\(Dictionary(grouping: codes, by: { $0 }).mapValues(\.count))")
        let token = try await a.api(.GET, "/api/token/\(tokenId)")
        let settled = try await eventually(5) {
            let token = try await a.api(.GET, "/api/token/\(tokenId)")
            return token["data"]["used_quota"].int == 1_000_000
        }
        #expect(settled, "\(token)")
        let final = try await a.api(.GET, "/api/token/\(tokenId)")
        #expect(final["data"]["remain_quota"].int == 0)

        // 2. A change made through A reaches B within a second: disable a key, then a channel.
        let second = try await a.api(.POST, "/api/token/", #"{"name": "second", "unlimited_quota": true, "billing_mode": "per_call"}"#)
        let secondKey = try #require(second["data"][0]["key"].string)
        let secondId = try #require(second["data"][0]["id"].int)
        #expect(try await b.call(secondKey) == 200)
        _ = try await a.api(.PUT, "/api/token/?status_only=true", #"{"id": \#(secondId), "status": 2}"#)
        #expect(try await eventually(1.5) { try await b.call(secondKey) == 401 }, "B refuses the disabled key within a second")
        _ = try await a.api(.PUT, "/api/token/?status_only=true", #"{"id": \#(secondId), "status": 1}"#)
        #expect(try await eventually(1.5) { try await b.call(secondKey) == 200 })
        _ = try await a.api(.PUT, "/api/channel/", #"{"id": 1, "status": 2}"#)
        #expect(try await eventually(1.5) { try await b.call(secondKey) == 503 }, "B stops using the disabled channel")
        _ = try await a.api(.PUT, "/api/channel/", #"{"id": 1, "status": 1}"#)
        #expect(try await eventually(1.5) { try await b.call(secondKey) == 200 })
        _ = try await a.api(.PUT, "/api/model/", #"{"model": "gpt-test", "call_price": 0.02}"#)
        #expect(try await eventually(1.5) {
            let before = try await b.api(.GET, "/api/user/self")["data"]["used_quota"].int ?? 0
            _ = try await b.call(secondKey)
            let after = try await b.api(.GET, "/api/user/self")["data"]["used_quota"].int ?? 0
            return after - before == 10000
        }, "B charges the new price")

        // 3. Rate limits hold across instances: RPM 20 on the group, 60 calls alternating -> exactly 20 pass.
        _ = try await a.api(.PUT, "/api/group/", #"{"name": "default", "rpm": 20}"#)
        try await Task.sleep(for: .milliseconds(300))
        var passed = 0
        for index in 0..<60 where try await (index % 2 == 0 ? a : b).call(secondKey) == 200 { passed += 1 }
        #expect(passed == 20, "RPM 20 over two instances")
        _ = try await a.api(.PUT, "/api/group/", #"{"name": "default", "rpm": 0}"#)

        // 4. An instance killed with -9 while it holds a lease: A gets the lease back and can spend it all.
        let third = try await a.api(.POST, "/api/token/", #"{"name": "third", "remain_quota": 2000000, "billing_mode": "per_call"}"#)
        let thirdKey = try #require(third["data"][0]["key"].string)
        let thirdId = try #require(third["data"][0]["id"].int)
        try await Task.sleep(for: .milliseconds(300))
        for _ in 0..<5 { #expect(try await b.call(thirdKey) == 200) }   // 5 calls at 0.02 USD = 50000 units; B leases more
        b.process.signal(SIGKILL)
        _ = try await b.process.waitForExit(seconds: 5)
        // B's calls answered in its last flush interval die with it (the documented crash window); A can spend the rest.
        var spent = 0
        let exhausted = try await eventually(90) {
            let code = try await a.call(thirdKey)
            if code == 200 { spent += 1 }
            return code == 401
        }
        #expect(exhausted, "A reaches the end of the quota once B's lease is back (\(spent) calls)")
        #expect(spent >= 195 && spent <= 200, "\(spent)")
        let thirdToken = try await a.api(.GET, "/api/token/\(thirdId)")
        #expect(thirdToken["data"]["remain_quota"].int == 0)

        // The ledger agrees everywhere.
        await a.process.stop()
        let database = try Database(location: DatabaseLocation(parsing: url), logger: Logger(label: "test"), maxConnections: 2)
        try await LedgerService.start(database: database, logger: Logger(label: "test")).recoverLeases(olderThan: nil)
        let report = try await LedgerCheck(database: database).run(expectNoLeases: true)
        #expect(report.ok, "\(report.problems)")
        await database.shutdown()
        await upstream.stop()
    }
}
