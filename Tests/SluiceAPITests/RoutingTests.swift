import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SluiceCore
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 5: groups, fallback groups, rate limits and channel routing.
@Suite struct RoutingTests {
    static let groupHeader = HTTPField.Name("X-Sluice-Group")!
    static let channelHeader = HTTPField.Name("X-Sluice-Channel")!

    // MARK: groups

    @Test(arguments: Backend.all)
    func groupsAreManagedByIdOrName(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            let created = try await client.call(.post, "/api/group/", """
                {"name": "vip", "description": "Faster lane", "ratio": 1.5, "models": ["gpt-test"], "rpm": 60, "tpm": 100000, "selectable": false}
                """, as: root)
            #expect(created.code == 200, "\(created.text)")
            let id = try #require(created.data["id"].int)
            #expect(created.data["name"].string == "vip")
            #expect(created.data["description"].string == "Faster lane")
            #expect(created.data["ratio"].double == 1.5)
            #expect(created.data["models"].array == [.string("gpt-test")])
            #expect(created.data["rpm"].int == 60)
            #expect(created.data["tpm"].int == 100000)
            #expect(created.data["selectable"].bool == false)

            let byName = try await client.call(.get, "/api/group/vip", as: root)
            #expect(byName.code == 200)
            #expect(byName.data["id"].int == id)
            let byId = try await client.call(.get, "/api/group/\(id)", as: root)
            #expect(byId.data["name"].string == "vip")
            #expect(try await client.call(.get, "/api/group/nope", as: root).code == 404)
            #expect(try await client.call(.get, "/api/group/99999", as: root).code == 404)

            let duplicate = try await client.call(.post, "/api/group/", #"{"name": "vip"}"#, as: root)
            #expect(duplicate.code == 409)
            #expect(duplicate.success == false)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "bad name!"}"#, as: root).code == 400)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "x", "rpm": -1}"#, as: root).code == 400)

            // A PUT addressed by name, then by id; each keeps the fields it does not mention.
            let renamedRatio = try await client.call(.put, "/api/group/", #"{"name": "vip", "ratio": 2}"#, as: root)
            #expect(renamedRatio.code == 200, "\(renamedRatio.text)")
            #expect(renamedRatio.data["ratio"].double == 2)
            #expect(renamedRatio.data["description"].string == "Faster lane")
            #expect(renamedRatio.data["rpm"].int == 60)
            let madeSelectable = try await client.call(.put, "/api/group/", #"{"id": \#(id), "selectable": true}"#, as: root)
            #expect(madeSelectable.data["selectable"].bool == true)
            #expect(madeSelectable.data["ratio"].double == 2)
            #expect(madeSelectable.data["models"].array == [.string("gpt-test")])

            let list = try await client.call(.get, "/api/group/?p=1&size=10", as: root)
            #expect(list.data["total"].int == 2)
            #expect(Set(list.data["items"].array.compactMap { $0["name"].string }) == ["default", "vip"])
            let defaultId = try #require(list.data["items"].array.first { $0["name"].string == "default" }?["id"].int)

            // The default group cannot be deleted, by name or by id.
            #expect(try await client.call(.delete, "/api/group/default", as: root).code == 409)
            #expect(try await client.call(.delete, "/api/group/\(defaultId)", as: root).code == 409)

            // Nor a group that is some user's group.
            let (alice, aliceId) = try await client.newUser("alice")
            #expect(try await client.call(.put, "/api/user/", #"{"id": \#(aliceId), "group": "vip"}"#, as: root).code == 200)
            let inUse = try await client.call(.delete, "/api/group/vip", as: root)
            #expect(inUse.code == 409)
            #expect(inUse.message.isEmpty == false)
            #expect(try await client.call(.get, "/api/group/vip", as: root).code == 200)
            #expect(try await client.call(.put, "/api/user/", #"{"id": \#(aliceId), "group": "default"}"#, as: root).code == 200)
            #expect(try await client.call(.delete, "/api/group/\(id)", as: root).code == 200)
            #expect(try await client.call(.get, "/api/group/vip", as: root).code == 404)

            // Users do not manage groups.
            #expect(try await client.call(.get, "/api/group/", as: alice).code == 403)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "mine"}"#, as: alice).code == 403)
        }
    }

    @Test(arguments: Backend.all)
    func usersPutSelectableGroupsAndTheirOwnOnTokens(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            #expect(try await client.call(.post, "/api/group/", """
                {"name": "public", "description": "Open to all", "ratio": 0.8, "models": ["gpt-test", "gpt-mini"], "rpm": 10, "tpm": 1000}
                """, as: root).code == 200)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "private", "description": "By invitation", "selectable": false}"#, as: root).code == 200)
            let (alice, aliceId) = try await client.newUser("alice")
            let (bob, _) = try await client.newUser("bobby")

            let choices = try await client.call(.get, "/api/user/self/groups", as: alice)
            #expect(choices.code == 200)
            #expect(Set(choices.data.array.compactMap { $0["name"].string }) == ["default", "public"])
            let open = try #require(choices.data.array.first { $0["name"].string == "public" })
            #expect(open["description"].string == "Open to all")
            #expect(open["ratio"].double == 0.8)
            #expect(open["models"].array == [.string("gpt-test"), .string("gpt-mini")])
            #expect(open["rpm"].int == 10)
            #expect(open["tpm"].int == 1000)

            #expect(try await client.call(.post, "/api/token/", #"{"name": "p", "group": "public"}"#, as: alice).code == 200)
            #expect(try await client.call(.post, "/api/token/", #"{"name": "f", "fallback_groups": ["public"]}"#, as: alice).code == 200)
            let refused = try await client.call(.post, "/api/token/", #"{"name": "x", "group": "private"}"#, as: alice)
            #expect(refused.code == 400)
            #expect(refused.message.contains("group"))
            let refusedFallback = try await client.call(.post, "/api/token/", #"{"name": "y", "fallback_groups": ["private"]}"#, as: alice)
            #expect(refusedFallback.code == 400)
            #expect(refusedFallback.message.contains("fallback_groups"))
            #expect(try await client.call(.post, "/api/token/", #"{"name": "z", "group": "ghost"}"#, as: alice).code == 400)

            // Once it is her own group, alice may use it and sees it; bob still may not.
            #expect(try await client.call(.put, "/api/user/", #"{"id": \#(aliceId), "group": "private"}"#, as: root).code == 200)
            let mine = try await client.call(.get, "/api/user/self/groups", as: alice)
            #expect(Set(mine.data.array.compactMap { $0["name"].string }) == ["default", "public", "private"])
            let own = try #require(mine.data.array.first { $0["name"].string == "private" })
            #expect(own["description"].string == "By invitation")
            #expect(own["ratio"].double == 1)
            #expect(own["rpm"].int == 0)
            #expect(own["tpm"].int == 0)
            #expect(own["models"].array.isEmpty)
            let ownToken = try await client.call(.post, "/api/token/", #"{"name": "own", "group": "private", "fallback_groups": ["public"]}"#, as: alice)
            #expect(ownToken.code == 200, "\(ownToken.text)")
            #expect(ownToken.data[0]["group"].string == "private")
            #expect(try await client.call(.post, "/api/token/", #"{"name": "x", "group": "private"}"#, as: bob).code == 400)
            let bobs = try await client.call(.get, "/api/user/self/groups", as: bob)
            #expect(!bobs.data.array.contains { $0["name"].string == "private" })
            // An administrator may use any group.
            #expect(try await client.call(.post, "/api/token/", #"{"name": "r", "group": "private"}"#, as: root).code == 200)
        }
    }

    // MARK: routing

    @Test(arguments: Backend.all)
    func theHighestPriorityChannelOfTheGroupServingTheModelTakesEveryCall(_ backend: Backend) async throws {
        let high = try await FakeUpstream.start()
        let low = try await FakeUpstream.start()
        let untouched = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (root, alice, _) = try await client.relaySetup(low) // a priority-0 channel "fake" in default
            try await client.price("gpt-other", perCall: 0.01, as: root)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "elsewhere"}"#, as: root).code == 200)
            let highId = try await client.channel(high, priority: 10, name: "high", as: root)
            // Never a candidate: disabled, in another group, or serving another model, whatever their priority.
            let disabled = try await client.channel(untouched, priority: 50, name: "disabled", as: root)
            #expect(try await client.call(.put, "/api/channel/", #"{"id": \#(disabled), "status": 2}"#, as: root).code == 200)
            try await client.channel(untouched, groups: ["elsewhere"], priority: 50, name: "other-group", as: root)
            try await client.channel(untouched, models: ["gpt-other"], priority: 50, name: "other-model", as: root)
            let (key, _) = try await client.key(#"{"name": "k", "unlimited_quota": true, "billing_mode": "per_call"}"#, as: alice)
            for _ in 0..<20 {
                let answer = try await client.relay("/v1/chat/completions", key: key, chatBody())
                #expect(answer.code == 200, "\(answer.text)")
                #expect(answer.headers[Self.channelHeader] == String(highId))
                #expect(answer.headers[Self.groupHeader] == "default")
            }
            #expect(high.calls == 20)
            #expect(low.calls == 0)
            #expect(untouched.calls == 0)
            // The priority-0 channel takes a call only when the first fails.
            high.set(.status(500))
            let failedOver = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(failedOver.code == 200)
            #expect(failedOver.headers[Self.channelHeader] != String(highId))
            #expect(high.calls == 21)
            #expect(low.calls == 1)
            #expect(untouched.calls == 0)
        }
        await high.stop()
        await low.stop()
        await untouched.stop()
    }

    /// The ways an upstream can fail that send the call on to the next channel.
    enum UpstreamFailure: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case connectionRefused, firstByteTimeout, status500, status502, status503, status429
        var testDescription: String { rawValue }
    }

    @Test(arguments: Backend.all, UpstreamFailure.allCases)
    func anUpstreamFailureSendsTheCallToTheNextChannel(_ backend: Backend, failure: UpstreamFailure) async throws {
        let primary = try await FakeUpstream.start()
        let secondary = try await FakeUpstream.start(.answer(prompt: 10, completion: 5))
        let refusing = try RefusingPort()
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", perCall: 0.01, as: root)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "pro", "ratio": 2}"#, as: root).code == 200)
            let primaryId: Int
            switch failure {
            case .connectionRefused:
                primaryId = try await client.channel(baseURL: "http://127.0.0.1:\(refusing.port)", groups: ["pro"], priority: 10, name: "primary", as: root)
            case .firstByteTimeout:
                primary.set(.hang)
                primaryId = try await client.channel(primary, groups: ["pro"], priority: 10, name: "primary", extra: #", "first_byte_timeout_ms": 200"#, as: root)
            case .status500, .status502, .status503, .status429:
                primary.set(.status(Int(failure.rawValue.dropFirst("status".count))!))
                primaryId = try await client.channel(primary, groups: ["pro"], priority: 10, name: "primary", as: root)
            }
            let secondaryId = try await client.channel(secondary, groups: ["pro"], priority: 0, name: "secondary", as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 1_000_000, as: root)
            #expect(try await client.call(.put, "/api/user/", #"{"id": \#(aliceId), "group": "pro"}"#, as: root).code == 200)
            let (key, tokenId) = try await client.key(#"{"name": "k", "unlimited_quota": true, "billing_mode": "per_call"}"#, as: alice)

            let answer = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(answer.code == 200, "\(answer.text)")
            #expect(answer.json["choices"][0]["message"]["content"].string == "Hello from the fake")
            #expect(answer.headers[Self.groupHeader] == "pro")
            #expect(answer.headers[Self.channelHeader] == String(secondaryId))
            #expect(secondary.calls == 1)
            #expect(primary.calls == (failure == .connectionRefused ? 0 : 1))

            // Logged and charged once, in the serving group at its ratio: 0.01 USD * 500000 * 2.
            let logs = try await client.call(.get, "/api/log/self?type=2", as: alice)
            #expect(logs.data["total"].int == 1)
            #expect(logs.data["items"][0]["group"].string == "pro")
            #expect(logs.data["items"][0]["quota"].int == 10000)
            let token = try await client.call(.get, "/api/token/\(tokenId)", as: alice)
            #expect(token.data["used_quota"].int == 10000)
            let adminLogs = try await client.call(.get, "/api/log/?type=2", as: root)
            #expect(adminLogs.data["items"][0]["channel"].int == secondaryId)
            let health = try await client.call(.get, "/api/channel/\(primaryId)", as: root)
            #expect(health.data["health"]["consecutive_failures"].int == 1)
            #expect(health.data["health"]["last_error"].string?.isEmpty == false)
        }
        refusing.close()
        await primary.stop()
        await secondary.stop()
    }

    @Test(arguments: Backend.all, [400, 413, 422])
    func aRequestTheUpstreamRefusesIsNotRetried(_ backend: Backend, status: Int) async throws {
        let primary = try await FakeUpstream.start(.status(status))
        let secondary = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (root, alice, _) = try await client.relaySetup(secondary) // priority 0
            let primaryId = try await client.channel(primary, priority: 10, name: "primary", as: root)
            let (key, tokenId) = try await client.key(#"{"name": "k", "unlimited_quota": true, "billing_mode": "per_call"}"#, as: alice)
            let answer = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(answer.code == status, "\(answer.text)")
            #expect(answer.json["error"]["message"].string?.isEmpty == false, "\(answer.text)")
            #expect(primary.calls == 1)
            #expect(secondary.calls == 0, "a request the upstream refused is not sent to another channel")
            let token = try await client.call(.get, "/api/token/\(tokenId)", as: alice)
            #expect(token.data["used_quota"].int == 0)
            let health = try await client.call(.get, "/api/channel/\(primaryId)", as: root)
            #expect(health.data["health"]["consecutive_failures"].int == 0, "the client's mistake is not the channel's failure")
            #expect(health.data["health"]["status"].string == "healthy")
        }
        await primary.stop()
        await secondary.stop()
    }

    @Test(arguments: Backend.all)
    func whenEveryChannelFailsTheCallIs503NamingTheLastError(_ backend: Backend) async throws {
        let first = try await FakeUpstream.start(.status(502))
        let second = try await FakeUpstream.start(.status(500))
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (root, alice, _) = try await client.relaySetup(second) // priority 0
            try await client.channel(first, priority: 10, name: "first", as: root)
            let (key, tokenId) = try await client.key(#"{"name": "k", "unlimited_quota": true, "billing_mode": "per_call"}"#, as: alice)
            let answer = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(answer.code == 503)
            #expect(answer.json["error"]["code"].string == "no_available_channel")
            #expect(answer.json["error"]["message"].string?.contains("500") == true, "\(answer.text)")
            #expect(first.calls == 1)
            #expect(second.calls == 1, "each channel is tried once")
            let token = try await client.call(.get, "/api/token/\(tokenId)", as: alice)
            #expect(token.data["used_quota"].int == 0)
        }
        await first.stop()
        await second.stop()
    }

    // MARK: fallback groups

    @Test(arguments: Backend.all)
    func fallbackGroupsServeWhatThePrimaryCannot(_ backend: Backend) async throws {
        let primaryUp = try await FakeUpstream.start()
        let backupUp = try await FakeUpstream.start()
        let thirdUp = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            for model in ["gpt-test", "gpt-extra", "gpt-third", "gpt-nowhere"] { try await client.price(model, perCall: 0.01, as: root) }
            #expect(try await client.call(.post, "/api/group/", #"{"name": "primary", "ratio": 1, "models": ["gpt-test"]}"#, as: root).code == 200)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "backup", "ratio": 2, "models": ["gpt-test", "gpt-extra"]}"#, as: root).code == 200)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "third", "ratio": 3, "models": ["gpt-extra", "gpt-third"]}"#, as: root).code == 200)
            // Each channel would serve more models than its group's whitelist allows.
            let all = ["gpt-test", "gpt-extra", "gpt-third", "gpt-nowhere"]
            let primaryId = try await client.channel(primaryUp, models: all, groups: ["primary"], name: "p", as: root)
            let backupId = try await client.channel(backupUp, models: all, groups: ["backup"], name: "b", as: root)
            let thirdId = try await client.channel(thirdUp, models: all, groups: ["third"], name: "t", as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 10_000_000, as: root)
            let (key, tokenId) = try await client.key("""
                {"name": "k", "unlimited_quota": true, "billing_mode": "per_call", "group": "primary", "fallback_groups": ["backup", "third"]}
                """, as: alice)

            func served(_ model: String, by group: String, channel: Int, _ label: String) async throws {
                let answer = try await client.relay("/v1/chat/completions", key: key, chatBody(model))
                #expect(answer.code == 200, "\(label): \(answer.text)")
                #expect(answer.headers[Self.groupHeader] == group, "\(label)")
                #expect(answer.headers[Self.channelHeader] == String(channel), "\(label)")
            }
            try await served("gpt-test", by: "primary", channel: primaryId, "in the primary's whitelist")
            try await served("gpt-extra", by: "backup", channel: backupId, "the first fallback whose whitelist has it")
            try await served("gpt-third", by: "third", channel: thirdId, "only the second fallback has it")
            #expect(primaryUp.calls == 1)
            #expect(backupUp.calls == 1)
            #expect(thirdUp.calls == 1)

            let nowhere = try await client.relay("/v1/chat/completions", key: key, chatBody("gpt-nowhere"))
            #expect(nowhere.code == 403)
            #expect(nowhere.json["error"]["code"].string == "model_not_allowed")
            #expect(primaryUp.calls + backupUp.calls + thirdUp.calls == 3)

            // The primary's only channel fails: the first fallback serves; when it fails too, the second.
            primaryUp.set(.status(500))
            try await served("gpt-test", by: "backup", channel: backupId, "the primary's channel failed")
            #expect(primaryUp.calls == 2)
            backupUp.set(.status(503))
            try await served("gpt-extra", by: "third", channel: thirdId, "the first fallback's channel failed")
            #expect(backupUp.calls == 3)
            #expect(thirdUp.calls == 2)

            // Logged and charged in the group that served, at its ratio (5000 units per call at ratio 1).
            let logs = try await client.call(.get, "/api/log/self?type=2", as: alice)
            let rows = logs.data["items"].array
            #expect(rows.compactMap { $0["group"].string } == ["third", "backup", "third", "backup", "primary"])
            #expect(rows.compactMap { $0["model_name"].string } == ["gpt-extra", "gpt-test", "gpt-third", "gpt-extra", "gpt-test"])
            #expect(rows.compactMap { $0["quota"].int } == [15000, 10000, 15000, 10000, 5000])
            let token = try await client.call(.get, "/api/token/\(tokenId)", as: alice)
            #expect(token.data["used_quota"].int == 55000)
            let me = try await client.call(.get, "/api/user/self", as: alice)
            #expect(me.data["quota"].int == 10_000_000 - 55000)

            // Both groups that may serve gpt-test fail; the third group's channel serves it, but its whitelist does not allow it.
            let exhausted = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(exhausted.code == 503)
            #expect(exhausted.json["error"]["code"].string == "no_available_channel")
            #expect(thirdUp.calls == 2)
            // A stream falls back the same way.
            backupUp.set(.answer(prompt: 10, completion: 5))
            let stream = try await client.relay("/v1/chat/completions", key: key, chatBody(stream: true))
            #expect(stream.code == 200)
            #expect(stream.headers[Self.groupHeader] == "backup")
            #expect(stream.text.contains("[DONE]"))
        }
        await primaryUp.stop()
        await backupUp.stop()
        await thirdUp.stop()
    }

    // MARK: rate limits

    /// Expects a 429 rate_limit_exceeded with a Retry-After of at most a minute.
    func expectRateLimited(_ answer: Answer, _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(answer.code == 429, "\(label): \(answer.text)", sourceLocation: sourceLocation)
        #expect(answer.json["error"]["code"].string == "rate_limit_exceeded", "\(label): \(answer.text)", sourceLocation: sourceLocation)
        let retryAfter = answer.headers[HTTPField.Name("Retry-After")!].flatMap(Int.init)
        #expect(retryAfter.map { (1...60).contains($0) } == true, "\(label): Retry-After \(String(describing: retryAfter))", sourceLocation: sourceLocation)
    }

    @Test(arguments: Backend.all)
    func requestsPerMinuteOfAGroupApplyToEachUserAndOfATokenToThatToken(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", perCall: 0.01, as: root)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "limited", "rpm": 5, "selectable": false}"#, as: root).code == 200)
            try await client.channel(upstream, groups: ["default", "limited"], as: root)
            var users: [(Credential, Int64)] = []
            for name in ["alice", "bobby"] {
                let (user, id) = try await client.newUser(name)
                try await client.topUp(id, quota: 10_000_000, as: root)
                users.append((user, id))
            }
            let perCall = #"{"name": "k", "unlimited_quota": true, "billing_mode": "per_call"}"#
            let (aliceKey, _) = try await client.key(perCall, as: users[0].0)
            // A call in her first group, then alice and bob are moved to the limited group; her key follows her group.
            let before = try await client.relay("/v1/chat/completions", key: aliceKey, chatBody())
            #expect(before.headers[Self.groupHeader] == "default")
            for (_, id) in users {
                #expect(try await client.call(.put, "/api/user/", #"{"id": \#(id), "group": "limited"}"#, as: root).code == 200)
            }
            let (aliceSecondKey, _) = try await client.key(perCall, as: users[0].0)
            let (aliceDefaultKey, _) = try await client.key(#"{"name": "d", "unlimited_quota": true, "billing_mode": "per_call", "group": "default"}"#, as: users[0].0)
            let (bobKey, _) = try await client.key(perCall, as: users[1].0)

            for index in 1...5 {
                let answer = try await client.relay("/v1/chat/completions", key: aliceKey, chatBody())
                #expect(answer.code == 200, "call \(index): \(answer.text)")
                #expect(answer.headers[Self.groupHeader] == "limited")
            }
            expectRateLimited(try await client.relay("/v1/chat/completions", key: aliceKey, chatBody()), "alice's sixth call")
            expectRateLimited(try await client.relay("/v1/chat/completions", key: aliceSecondKey, chatBody()), "alice's other key in the same group")
            #expect(upstream.calls == 1 + 5)
            // Another user of the group has a window of his own; alice in another group is not limited by this one.
            for index in 1...5 {
                #expect(try await client.relay("/v1/chat/completions", key: bobKey, chatBody()).code == 200, "bob's call \(index)")
            }
            expectRateLimited(try await client.relay("/v1/chat/completions", key: bobKey, chatBody()), "bob's sixth call")
            for index in 1...7 {
                #expect(try await client.relay("/v1/chat/completions", key: aliceDefaultKey, chatBody()).code == 200, "alice in default, call \(index)")
            }
            #expect(upstream.calls == 1 + 17)

            // A token's own RPM: its third call is refused, the owner's other tokens are not.
            let (limitedKey, limitedId) = try await client.key(#"{"name": "r", "unlimited_quota": true, "billing_mode": "per_call", "group": "default", "rpm": 2}"#, as: users[0].0)
            #expect(try await client.call(.get, "/api/token/\(limitedId)", as: users[0].0).data["rpm"].int == 2)
            #expect(try await client.relay("/v1/chat/completions", key: limitedKey, chatBody()).code == 200)
            #expect(try await client.relay("/v1/chat/completions", key: limitedKey, chatBody()).code == 200)
            expectRateLimited(try await client.relay("/v1/chat/completions", key: limitedKey, chatBody()), "the token's third call")
            #expect(try await client.relay("/v1/chat/completions", key: aliceDefaultKey, chatBody()).code == 200)
            #expect(upstream.calls == 1 + 20)
            // A refused call costs nothing.
            let logs = try await client.call(.get, "/api/log/self?type=2&size=100", as: users[0].0)
            #expect(logs.data["total"].int == 1 + 5 + 7 + 2 + 1)

            // Lifting the limits takes effect at once: the token's, then the group's.
            #expect(try await client.call(.put, "/api/token/", #"{"id": \#(limitedId), "rpm": 0}"#, as: users[0].0).code == 200)
            #expect(try await client.relay("/v1/chat/completions", key: limitedKey, chatBody()).code == 200, "the token's RPM lifted")
            #expect(try await client.call(.put, "/api/group/", #"{"name": "limited", "rpm": 0}"#, as: root).code == 200)
            #expect(try await client.relay("/v1/chat/completions", key: aliceKey, chatBody()).code == 200, "the group's RPM lifted")
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func tokensPerMinuteCountTheTokensActuallyUsed(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 30, completion: 30))
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", as: root)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "metered", "tpm": 100, "selectable": false}"#, as: root).code == 200)
            try await client.channel(upstream, groups: ["default", "metered"], as: root)
            var users: [(Credential, Int64)] = []
            for name in ["alice", "bobby"] {
                let (user, id) = try await client.newUser(name)
                try await client.topUp(id, quota: 10_000_000, as: root)
                #expect(try await client.call(.put, "/api/user/", #"{"id": \#(id), "group": "metered"}"#, as: root).code == 200)
                users.append((user, id))
            }
            let (aliceKey, _) = try await client.key(as: users[0].0)
            let (bobKey, _) = try await client.key(as: users[1].0)
            // 60 tokens a call against 100 a minute: two calls pass, the third is refused.
            #expect(try await client.relay("/v1/chat/completions", key: aliceKey, chatBody()).code == 200)
            #expect(try await client.relay("/v1/chat/completions", key: aliceKey, chatBody()).code == 200)
            expectRateLimited(try await client.relay("/v1/chat/completions", key: aliceKey, chatBody()), "alice's third call in the group")
            #expect(upstream.calls == 2)
            #expect(try await client.relay("/v1/chat/completions", key: bobKey, chatBody()).code == 200, "bob's window is his own")
            #expect(try await client.relay("/v1/chat/completions", key: bobKey, chatBody()).code == 200)
            expectRateLimited(try await client.relay("/v1/chat/completions", key: bobKey, chatBody()), "bob's third call in the group")

            // A token's own TPM, in a group without limits; other tokens of the owner are not affected.
            let (meteredKey, _) = try await client.key(#"{"name": "t", "unlimited_quota": true, "group": "default", "tpm": 100}"#, as: users[0].0)
            let (freeKey, _) = try await client.key(#"{"name": "f", "unlimited_quota": true, "group": "default"}"#, as: users[0].0)
            #expect(try await client.relay("/v1/chat/completions", key: meteredKey, chatBody()).code == 200)
            #expect(try await client.relay("/v1/chat/completions", key: meteredKey, chatBody()).code == 200)
            expectRateLimited(try await client.relay("/v1/chat/completions", key: meteredKey, chatBody()), "the token's third call")
            for _ in 0..<3 { #expect(try await client.relay("/v1/chat/completions", key: freeKey, chatBody()).code == 200) }
            #expect(upstream.calls == 4 + 2 + 3)
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func rateLimitsHoldExactlyUnderConcurrentCalls(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", perCall: 0.01, as: root)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "limited", "rpm": 5}"#, as: root).code == 200)
            try await client.channel(upstream, groups: ["default", "limited"], as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 100_000_000, as: root)
            let (groupKey, _) = try await client.key(#"{"name": "g", "unlimited_quota": true, "billing_mode": "per_call", "group": "limited"}"#, as: alice)
            let (tokenKey, _) = try await client.key(#"{"name": "t", "unlimited_quota": true, "billing_mode": "per_call", "rpm": 3}"#, as: alice)
            for (key, limit) in [(groupKey, 5), (tokenKey, 3)] {
                let codes = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<40 { group.addTask { try await client.relay("/v1/chat/completions", key: key, chatBody()).code } }
                    var codes: [Int] = []
                    for try await code in group { codes.append(code) }
                    return codes
                }
                #expect(codes.filter { $0 == 200 }.count == limit, "\(codes)")
                #expect(codes.filter { $0 == 429 }.count == 40 - limit, "\(codes)")
            }
            #expect(upstream.calls == 5 + 3)
        }
        await upstream.stop()
    }

    /// Contract 9: "A group's RPM/TPM apply to each user's calls in that group". A call the fallback group serves
    /// (answered with its X-Sluice-Group, logged and charged in it) is a call in that group.
    @Test(arguments: Backend.all)
    func aFallbackGroupsRateLimitAppliesToTheCallsItServes(_ backend: Backend) async throws {
        let primaryUp = try await FakeUpstream.start(.status(500))
        let backupUp = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", perCall: 0.01, as: root)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "primary"}"#, as: root).code == 200)
            #expect(try await client.call(.post, "/api/group/", #"{"name": "backup", "rpm": 2}"#, as: root).code == 200)
            try await client.channel(primaryUp, groups: ["primary"], name: "p", as: root)
            try await client.channel(backupUp, groups: ["backup"], name: "b", as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 100_000_000, as: root)
            let (key, _) = try await client.key(#"{"name": "k", "unlimited_quota": true, "billing_mode": "per_call", "group": "primary", "fallback_groups": ["backup"]}"#, as: alice)
            for index in 1...2 {
                let answer = try await client.relay("/v1/chat/completions", key: key, chatBody())
                #expect(answer.code == 200, "call \(index): \(answer.text)")
                #expect(answer.headers[Self.groupHeader] == "backup")
            }
            // The primary's channel still fails (it rests after three failures); backup's 2 calls a minute are used up.
            for index in 3...4 {
                let answer = try await client.relay("/v1/chat/completions", key: key, chatBody())
                #expect(answer.code != 200, "call \(index) was served by '\(answer.headers[Self.groupHeader] ?? "")' beyond its RPM of 2")
            }
            #expect(backupUp.calls == 2, "group 'backup' (rpm 2) served \(backupUp.calls) calls of one user within a minute")
        }
        await primaryUp.stop()
        await backupUp.stop()
    }

    // MARK: channel health

    @Test(arguments: Backend.all)
    func aChannelThatKeepsFailingRestsUntilEdited(_ backend: Backend) async throws {
        let bad = try await FakeUpstream.start(.status(500))
        let good = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (root, alice, _) = try await client.relaySetup(good) // priority 0, id 1
            let badId = try await client.channel(bad, priority: 10, name: "bad", as: root)
            let (key, _) = try await client.key(#"{"name": "k", "unlimited_quota": true, "billing_mode": "per_call"}"#, as: alice)
            for index in 1...3 {
                let answer = try await client.relay("/v1/chat/completions", key: key, chatBody())
                #expect(answer.code == 200, "call \(index): \(answer.text)")
                #expect(answer.headers[Self.channelHeader] != String(badId))
            }
            #expect(bad.calls == 3)
            #expect(good.calls == 3)
            let resting = try await client.call(.get, "/api/channel/\(badId)", as: root)
            #expect(resting.data["health"]["status"].string == "resting", "\(resting.text)")
            #expect(resting.data["health"]["consecutive_failures"].int == 3)
            #expect(resting.data["health"]["last_error"].string?.contains("500") == true)
            let listed = try await client.call(.get, "/api/channel/", as: root)
            #expect(listed.data["items"].array.first { $0["id"].int == badId }?["health"]["status"].string == "resting")

            // Out of rotation: calls go to the other channel without touching it.
            for _ in 0..<5 { #expect(try await client.relay("/v1/chat/completions", key: key, chatBody()).code == 200) }
            #expect(bad.calls == 3)
            #expect(good.calls == 8)

            // The test call: ok for a healthy upstream, the failure for a failing one.
            let goodTest = try await client.call(.post, "/api/channel/1/test", as: root)
            #expect(goodTest.code == 200)
            #expect(goodTest.data["ok"].bool == true, "\(goodTest.text)")
            let badTest = try await client.call(.post, "/api/channel/\(badId)/test", as: root)
            #expect(badTest.data["ok"].bool == false)
            #expect(badTest.data["message"].string?.contains("500") == true, "\(badTest.text)")
            #expect(badTest.data["message"].string?.contains("upstream says 500") == true, "\(badTest.text)")
            #expect(bad.calls == 4)
            #expect(good.calls == 9)
            #expect(try await client.call(.get, "/api/channel/\(badId)", as: root).data["health"]["status"].string == "resting")

            // Fixed and edited: back in rotation, it takes the calls again.
            bad.set(.answer(prompt: 10, completion: 5))
            let edited = try await client.call(.put, "/api/channel/", #"{"id": \#(badId), "name": "mended"}"#, as: root)
            #expect(edited.code == 200)
            #expect(edited.data["health"]["status"].string == "healthy")
            let answer = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(answer.code == 200)
            #expect(answer.headers[Self.channelHeader] == String(badId))
            #expect(bad.calls == 5)
            #expect(good.calls == 9, "8 relayed calls and the test call")
        }
        await bad.stop()
        await good.stop()
    }

    @Test(arguments: Backend.all)
    func aSuccessfulTestPutsARestingChannelBackAndAFailedOneCounts(_ backend: Backend) async throws {
        let flaky = try await FakeUpstream.start(.status(502))
        let good = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (root, alice, _) = try await client.relaySetup(good)
            let flakyId = try await client.channel(flaky, priority: 10, name: "flaky", as: root)
            let (key, _) = try await client.key(#"{"name": "k", "unlimited_quota": true, "billing_mode": "per_call"}"#, as: alice)
            for _ in 0..<3 { #expect(try await client.relay("/v1/chat/completions", key: key, chatBody()).code == 200) }
            #expect(try await client.call(.get, "/api/channel/\(flakyId)", as: root).data["health"]["status"].string == "resting")
            flaky.set(.answer(prompt: 1, completion: 1))
            let test = try await client.call(.post, "/api/channel/\(flakyId)/test", as: root)
            #expect(test.data["ok"].bool == true, "\(test.text)")
            #expect(try await client.call(.get, "/api/channel/\(flakyId)", as: root).data["health"]["status"].string == "healthy")
            let answer = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(answer.headers[Self.channelHeader] == String(flakyId))
        }
        await flaky.stop()
        await good.stop()
    }

    // MARK: distribution

    /// Makes `total` calls, `batch` at a time, and counts the answers per serving channel.
    func spread(_ client: some TestClientProtocol, key: String, total: Int, batch: Int = 50) async throws -> (byChannel: [String: Int], failures: [String]) {
        var byChannel: [String: Int] = [:]
        var failures: [String] = []
        for _ in 0..<(total / batch) {
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for _ in 0..<batch { group.addTask { try await client.relay("/v1/chat/completions", key: key, chatBody()) } }
                var answers: [Answer] = []
                for try await answer in group { answers.append(answer) }
                return answers
            }
            for answer in answers {
                if answer.code == 200, let channel = answer.headers[Self.channelHeader] {
                    byChannel[channel, default: 0] += 1
                } else {
                    failures.append("\(answer.code) \(answer.text)")
                }
            }
        }
        return (byChannel, failures)
    }

    @Test(arguments: Backend.all)
    func weightsShareCallsWithinAPriority(_ backend: Backend) async throws {
        let heavy = try await FakeUpstream.start()
        let light = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", perCall: 0.001, as: root)
            let heavyId = try await client.channel(heavy, priority: 5, weight: 3, name: "heavy", as: root)
            let lightId = try await client.channel(light, priority: 5, weight: 1, name: "light", as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 100_000_000, as: root)
            let (key, _) = try await client.key(#"{"name": "k", "unlimited_quota": true, "billing_mode": "per_call"}"#, as: alice)
            let (counts, failures) = try await spread(client, key: key, total: 1000)
            #expect(failures.isEmpty, "\(failures.prefix(3))")
            let onHeavy = counts[String(heavyId)] ?? 0
            let onLight = counts[String(lightId)] ?? 0
            #expect(onHeavy + onLight == 1000)
            // Binomial(1000, 0.75): P(outside 670...830) < 1e-8.
            #expect((670...830).contains(onHeavy), "weights 3:1 gave \(onHeavy) of 1000 on the heavy channel")
            #expect(heavy.calls == onHeavy)
            #expect(light.calls == onLight)
        }
        await heavy.stop()
        await light.stop()
    }

    @Test(arguments: Backend.all)
    func aHigherPriorityTakesEveryCallWhateverTheWeights(_ backend: Backend) async throws {
        let high = try await FakeUpstream.start()
        let low = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", perCall: 0.001, as: root)
            let highId = try await client.channel(high, priority: 1, weight: 1, name: "high", as: root)
            try await client.channel(low, priority: 0, weight: 100, name: "low", as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 100_000_000, as: root)
            let (key, _) = try await client.key(#"{"name": "k", "unlimited_quota": true, "billing_mode": "per_call"}"#, as: alice)
            let (counts, failures) = try await spread(client, key: key, total: 1000)
            #expect(failures.isEmpty, "\(failures.prefix(3))")
            #expect(counts == [String(highId): 1000])
            #expect(high.calls == 1000)
            #expect(low.calls == 0)
        }
        await high.stop()
        await low.stop()
    }
}

extension TestClientProtocol {
    /// Adds a channel at any base URL and answers its id.
    func channel(baseURL: String, models: [String] = ["gpt-test"], groups: [String] = ["default"], priority: Int = 0, weight: Int = 1,
                 name: String, as root: Credential) async throws -> Int {
        let modelList = models.map { "\"\($0)\"" }.joined(separator: ",")
        let groupList = groups.map { "\"\($0)\"" }.joined(separator: ",")
        let answer = try await call(.post, "/api/channel/", """
            {"name": "\(name)", "type": "openai", "base_url": "\(baseURL)", "key": "sk-upstream-secret", "models": [\(modelList)],
             "groups": [\(groupList)], "priority": \(priority), "weight": \(weight)}
            """, as: root)
        guard answer.code == 200, let id = answer.data["id"].int else { throw TestSetupError("channel: \(answer.text)") }
        return id
    }
}

/// A loopback port that refuses connections: bound but never listening, and held (so no one else takes it) until closed.
final class RefusingPort: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw TestSetupError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard bound else {
            _ = RefusingPort.closeDescriptor(descriptor)
            throw TestSetupError("bind() failed")
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = RefusingPort.closeDescriptor(descriptor) }

    private static func closeDescriptor(_ descriptor: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.close(descriptor)
        #else
        Darwin.close(descriptor)
        #endif
    }
}
