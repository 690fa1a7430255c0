import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SluiceAPI
import SluiceCore
import SluiceStore
import SQLKit
import Testing

@Suite struct BillingTests {
    @Test(arguments: Backend.all)
    func usageCostUsesTheFormulaAndTheServingGroupsRatio(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 1000, completion: 500))
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", input: 2, output: 8, as: root)
            _ = try await client.call(.post, "/api/group/", #"{"name": "vip", "ratio": 1.5}"#, as: root)
            try await client.channel(upstream, groups: ["default", "vip"], as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 1_000_000, as: root)
            // (1000 * 2 + 500 * 8) / 1e6 * 500000 = 3000 units at ratio 1.
            let (plain, plainId) = try await client.key(#"{"name": "plain", "remain_quota": 100000}"#, as: alice)
            let plainAnswer = try await client.relay("/v1/chat/completions", key: plain, chatBody())
            #expect(plainAnswer.code == 200, "\(plainAnswer.text)")
            let token = try await client.call(.get, "/api/token/\(plainId)", as: alice)
            #expect(token.data["used_quota"].int == 3000)
            #expect(token.data["remain_quota"].int == 97000)
            let me = try await client.call(.get, "/api/user/self", as: alice)
            #expect(me.data["quota"].int == 997_000)
            #expect(me.data["used_quota"].int == 3000)
            // The same call in a group with ratio 1.5 costs 4500 (the root user may pick any group).
            let (vip, vipId) = try await client.key(#"{"name": "vip", "remain_quota": 100000, "group": "vip"}"#, as: root)
            try await client.topUp(1, quota: 1_000_000, as: root)
            let vipAnswer = try await client.relay("/v1/chat/completions", key: vip, chatBody())
            #expect(vipAnswer.headers[HTTPField.Name("X-Sluice-Group")!] == "vip", "\(vipAnswer.text)")
            let vipToken = try await client.call(.get, "/api/token/\(vipId)", as: root)
            #expect(vipToken.data["used_quota"].int == 4500)
            let logs = try await client.call(.get, "/api/log/self", as: root)
            #expect(logs.data["items"][0]["quota"].int == 4500)
            #expect(logs.data["items"][0]["group"].string == "vip")
            #expect(logs.data["items"][0]["prompt_tokens"].int == 1000)
            #expect(logs.data["items"][0]["completion_tokens"].int == 500)
        }
        let report = try await LedgerCheck(database: database).run()
        #expect(report.ok, "\(report.problems)")
        await database.shutdown()
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func perCallBillingAndMissingCallPrice(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 1000, completion: 500))
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", perCall: 0.04, as: root)
            try await client.price("no-call-price", as: root)
            try await client.channel(upstream, models: ["gpt-test", "no-call-price"], as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 1_000_000, as: root)
            let (key, id) = try await client.key(#"{"name": "pc", "unlimited_quota": true, "billing_mode": "per_call"}"#, as: alice)
            #expect(try await client.relay("/v1/chat/completions", key: key, chatBody()).code == 200)
            let token = try await client.call(.get, "/api/token/\(id)", as: alice)
            #expect(token.data["used_quota"].int == 20000, "0.04 USD * 500000")
            let refused = try await client.relay("/v1/chat/completions", key: key, chatBody("no-call-price"))
            #expect(refused.code == 400)
            #expect(refused.json["error"]["message"].string?.contains("call price") == true)
            let pricing = try await client.call(.get, "/api/pricing")
            let entry = pricing.data.array.first { $0["model"].string == "gpt-test" }
            #expect(entry?["call_price"].double == 0.04)
            #expect(entry?["groups"][0]["group"].string == "default")
        }
        await upstream.stop()
    }

    /// Many simultaneous calls against a balance that covers exactly `allowed` of them.
    func race(_ client: some TestClientProtocol, keys: [String], calls: Int) async throws -> [Int] {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<calls {
                let key = keys[index % keys.count]
                group.addTask { try await client.relay("/v1/chat/completions", key: key, chatBody()).code }
            }
            var codes: [Int] = []
            for try await code in group { codes.append(code) }
            return codes
        }
    }

    @Test(arguments: Backend.all)
    func concurrentCallsNeverOverdrawAToken(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 10, completion: 5))
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await env.test { client in
            let (_, alice, aliceId) = try await client.relaySetup(upstream, balance: 1_000_000_000, callPrice: 0.01)
            _ = aliceId
            // 0.01 USD per call = 5000 units; the token covers exactly 50 calls.
            let (key, id) = try await client.key(#"{"name": "fifty", "remain_quota": 250000, "billing_mode": "per_call"}"#, as: alice)
            let codes = try await race(client, keys: [key], calls: 400)
            #expect(codes.filter { $0 == 200 }.count == 50)
            #expect(codes.allSatisfy { [200, 429, 401].contains($0) }, "\(Set(codes))")
            let token = try await client.call(.get, "/api/token/\(id)", as: alice)
            #expect(token.data["remain_quota"].int == 0)
            #expect(token.data["used_quota"].int == 250000)
            #expect(token.data["status"].int == 4)
            let logs = try await client.call(.get, "/api/log/self?size=100&type=2", as: alice)
            #expect(logs.data["total"].int == 50)
            let sum = logs.data["items"].array.compactMap { $0["quota"].int }.reduce(0, +)
            #expect(sum == 250000)
            let after = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(after.code == 401)
            #expect(after.json["error"]["code"].string == "token_quota_exhausted")
        }
        let report = try await LedgerCheck(database: database).run()
        #expect(report.ok, "\(report.problems)")
        await database.shutdown()
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func concurrentCallsNeverOverdrawAUserBalanceSharedByTokens(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 10, completion: 5))
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await env.test { client in
            let (_, alice, _) = try await client.relaySetup(upstream, balance: 250_000, callPrice: 0.01)
            var keys: [String] = []
            for index in 0..<3 {
                keys.append(try await client.key(#"{"name": "k\#(index)", "unlimited_quota": true, "billing_mode": "per_call"}"#, as: alice).key)
            }
            let codes = try await race(client, keys: keys, calls: 400)
            #expect(codes.filter { $0 == 200 }.count == 50)
            #expect(codes.filter { $0 != 200 }.allSatisfy { $0 == 429 })
            let me = try await client.call(.get, "/api/user/self", as: alice)
            #expect(me.data["quota"].int == 0)
            #expect(me.data["used_quota"].int == 250_000)
            #expect(me.data["request_count"].int == 50)
            let tokens = try await client.call(.get, "/api/token/", as: alice)
            let used = tokens.data["items"].array.compactMap { $0["used_quota"].int }.reduce(0, +)
            #expect(used == 250_000)
        }
        let report = try await LedgerCheck(database: database).run()
        #expect(report.ok, "\(report.problems)")
        await database.shutdown()
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func failedCallsChargeNothingAndLeaveNoReservation(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.status(500))
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await env.test { client in
            let (_, alice, _) = try await client.relaySetup(upstream, balance: 100_000, callPrice: nil)
            let (key, id) = try await client.key(#"{"name": "k", "remain_quota": 50000}"#, as: alice)
            for _ in 0..<5 {
                let answer = try await client.relay("/v1/chat/completions", key: key, chatBody(maxTokens: 100))
                #expect(answer.code == 503)
                #expect(answer.json["error"]["code"].string == "no_available_channel")
                #expect(answer.json["error"]["message"].string?.contains("500") == true, "names the last upstream error")
            }
            let token = try await client.call(.get, "/api/token/\(id)", as: alice)
            #expect(token.data["used_quota"].int == 0)
            #expect(token.data["remain_quota"].int == 50000)
            let me = try await client.call(.get, "/api/user/self", as: alice)
            #expect(me.data["quota"].int == 100_000)
            let logs = try await client.call(.get, "/api/log/self", as: alice)
            #expect(logs.data["items"].array.allSatisfy { $0["quota"].int == 0 })
            // A client error from the upstream (400) is not retried and not charged either.
            _ = try await client.call(.put, "/api/channel/", #"{"id": 1, "status": 1}"#, as: try await client.loginRoot())
            upstream.set(.status(400))
            let before = upstream.calls
            let refused = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(refused.code == 400, "\(refused.text)")
            #expect(upstream.calls == before + 1)
            // Malformed upstream JSON: a failure, no charge.
            upstream.set(.malformed)
            #expect(try await client.relay("/v1/chat/completions", key: key, chatBody()).code == 503)
            _ = try await client.call(.put, "/api/channel/", #"{"id": 1, "status": 1}"#, as: try await client.loginRoot())
            upstream.set(.answer(prompt: 10, completion: 5))
            #expect(try await client.relay("/v1/chat/completions", key: key, chatBody()).code == 200)
            // Nothing stays reserved after failed, refused and answered calls alike.
            let metrics = try await client.call(.get, "/metrics")
            #expect(metrics.text.contains("sluice_reservations_outstanding_units 0"), "no leaked reservation")
        }
        let report = try await LedgerCheck(database: database).run()
        #expect(report.ok, "\(report.problems)")
        await database.shutdown()
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func logsUsageAndKeyHolderViews(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 100, completion: 50))
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", input: 2, output: 8, as: root)
            try await client.price("gpt-two", input: 2, output: 8, as: root)
            try await client.channel(upstream, models: ["gpt-test", "gpt-two"], as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 10_000_000, as: root)
            let (bob, bobId) = try await client.newUser("bobby")
            try await client.topUp(bobId, quota: 10_000_000, as: root)
            let (first, firstId) = try await client.key(#"{"name": "first", "remain_quota": 1000000}"#, as: alice)
            let (second, _) = try await client.key(#"{"name": "second", "unlimited_quota": true}"#, as: alice)
            let (bobKey, _) = try await client.key(as: bob)
            for _ in 0..<3 { _ = try await client.relay("/v1/chat/completions", key: first, chatBody()) }
            for _ in 0..<2 { _ = try await client.relay("/v1/chat/completions", key: second, chatBody("gpt-two", stream: true)) }
            _ = try await client.relay("/v1/chat/completions", key: bobKey, chatBody())

            let mine = try await client.call(.get, "/api/log/self?p=1&size=2", as: alice)
            #expect(mine.data["total"].int == 5)
            #expect(mine.data["items"].array.count == 2)
            let row = mine.data["items"][0]
            for field in ["id", "created_at", "type", "token_id", "token_name", "model_name", "group", "channel", "prompt_tokens",
                          "completion_tokens", "quota", "use_time_ms", "is_stream", "ip"] {
                #expect(row[field].exists || field == "channel", "log row has \(field)")
            }
            let ids = mine.data["items"].array.compactMap { $0["id"].int }
            #expect(ids == ids.sorted(by: >), "newest first")
            #expect(try await client.call(.get, "/api/log/self?token_name=first", as: alice).data["total"].int == 3)
            #expect(try await client.call(.get, "/api/log/self?model_name=gpt-two", as: alice).data["total"].int == 2)
            #expect(try await client.call(.get, "/api/log/self?token_id=\(firstId)", as: alice).data["total"].int == 3)
            let streamed = try await client.call(.get, "/api/log/self?model_name=gpt-two", as: alice)
            #expect(streamed.data["items"][0]["is_stream"].bool == true)
            let future = Int(Date().timeIntervalSince1970) + 3600
            #expect(try await client.call(.get, "/api/log/self?start_timestamp=\(future)", as: alice).data["total"].int == 0)
            // Admin sees everyone; users may not.
            #expect(try await client.call(.get, "/api/log/?type=2", as: root).data["total"].int == 6)
            #expect(try await client.call(.get, "/api/log/?type=2&username=bobby", as: root).data["total"].int == 1)
            #expect(try await client.call(.get, "/api/log/", as: alice).code == 403)
            // Through the key alone.
            let tokenLogs = try await client.call(.get, "/api/log/token", headers: [.authorization: "Bearer \(first)"])
            #expect(tokenLogs.data["total"].int == 3)
            let usage = try await client.call(.get, "/api/usage/token", headers: [.authorization: "Bearer \(first)"])
            let perCall = (100 * 2 + 50 * 8) * 500_000 / 1_000_000
            #expect(usage.data["total_used"].int == 3 * perCall)
            #expect(usage.data["total_available"].int == 1_000_000 - 3 * perCall)
            #expect(usage.data["total_granted"].int == 1_000_000)
            let subscription = try await client.call(.get, "/v1/dashboard/billing/subscription", headers: [.authorization: "Bearer \(first)"])
            #expect(subscription.json["hard_limit_usd"].double == 2.0)
            let billingUsage = try await client.call(.get, "/v1/dashboard/billing/usage", headers: [.authorization: "Bearer \(first)"])
            #expect(billingUsage.json["total_usage"].double == Double(3 * perCall) * 100 / 500_000)
            #expect(try await client.call(.get, "/api/usage/token").code == 401)
            // Hourly usage.
            let hourly = try await client.call(.get, "/api/data/self", as: alice)
            let rows = hourly.data.array
            #expect(rows.reduce(0) { $0 + ($1["count"].int ?? 0) } == 5)
            #expect(rows.allSatisfy { ($0["hour"].int ?? 1) % 3600 == 0 })
            #expect(Set(rows.compactMap { $0["model_name"].string }) == ["gpt-test", "gpt-two"])
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func reservationRefusesWhatTheBalanceCannotCoverButSettlesExactly(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 10, completion: 10))
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            // 1 USD per 1M tokens either way: a token costs 0.5 units.
            try await client.price("gpt-test", input: 1, output: 1, maxOutput: 100_000, as: root)
            try await client.channel(upstream, as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 1_000_000, as: root)
            let (key, id) = try await client.key(#"{"name": "k", "remain_quota": 1000}"#, as: alice)
            // Without max_tokens the reservation is the model's max output (100000 tokens = 50000 units): refused.
            let refused = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(refused.code == 429)
            #expect(refused.json["error"]["code"].string == "insufficient_quota")
            // With max_tokens 100 it fits; the charge is the exact 20 tokens -> 10 units. (Leases idle meanwhile go back.)
            try await Task.sleep(for: .milliseconds(3500))
            let ok = try await client.relay("/v1/chat/completions", key: key, chatBody(maxTokens: 100))
            #expect(ok.code == 200, "\(ok.text)")
            let token = try await client.call(.get, "/api/token/\(id)", as: alice)
            #expect(token.data["used_quota"].int == 10)
            #expect(token.data["remain_quota"].int == 990)
        }
        await upstream.stop()
    }

    @Test func ledgerCheckFindsDisagreements() async throws {
        let env = try await TestEnvironment.make(.sqlite)
        _ = try await firstStart(env.config)
        let database = try env.openDatabase()
        #expect(try await LedgerCheck(database: database).run().ok)
        try await database.withSQL { sql in try await sql.raw("UPDATE users SET used_quota = 5 WHERE id = 1").run() }
        let report = try await LedgerCheck(database: database).run()
        #expect(!report.ok)
        #expect(report.problems.first?.subject == "user 1")
        await database.shutdown()
    }
}
