import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
@testable import SluiceAPI
import SluiceCore
import SluiceStore
import SQLKit
import Testing

@Suite struct RelayTests {
    @Test(arguments: Backend.all)
    func channelsAreManagedAndTheirKeysNeverShown(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await env.test { client in
            let root = try await client.loginRoot()
            let id = try await client.channel(upstream, mapping: ["gpt-test": "real-model"], key: "sk-upstream-very-secret-key-123", as: root)
            let fetched = try await client.call(.get, "/api/channel/\(id)", as: root)
            #expect(fetched.data["type"].string == "openai")
            #expect(fetched.data["base_url"].string == upstream.baseURL)
            #expect(fetched.data["key"].string?.contains("very-secret") == false)
            #expect(fetched.data["model_mapping"]["gpt-test"].string == "real-model")
            #expect(fetched.data["health"]["status"].string == "healthy")
            let list = try await client.call(.get, "/api/channel/", as: root)
            #expect(list.data["total"].int == 1)
            #expect(!list.text.contains("very-secret"))
            let updated = try await client.call(.put, "/api/channel/", #"{"id": \#(id), "priority": 5, "status": 2}"#, as: root)
            #expect(updated.data["priority"].int == 5)
            #expect(updated.data["status"].int == 2)
            let bad = try await client.call(.post, "/api/channel/", #"{"name": "x", "type": "gemini", "base_url": "http://a", "key": "k"}"#, as: root)
            #expect(bad.code == 400)
            #expect(bad.message.contains("type"))
            let badURL = try await client.call(.post, "/api/channel/", #"{"name": "x", "type": "openai", "base_url": "ftp://a", "key": "k"}"#, as: root)
            #expect(badURL.code == 400)
            let (alice, _) = try await client.newUser("alice")
            let forbidden = try await client.call(.get, "/api/channel/", as: alice)
            #expect(forbidden.code == 403)
            let deleted = try await client.call(.delete, "/api/channel/\(id)", as: root)
            #expect(deleted.code == 200)
        }
        let stored = try await database.withSQL { sql in try await sql.raw("SELECT key_enc FROM channels").all().map { try $0.decode(column: "key_enc", as: String.self) } }
        #expect(!stored.joined().contains("very-secret"))
        await database.shutdown()
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func chatCompletionReachesTheUpstreamWithTheChannelKey(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 12, completion: 7))
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", as: root)
            try await client.channel(upstream, mapping: ["gpt-test": "upstream-model"], as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 1_000_000, as: root)
            let (key, _) = try await client.key(as: alice)
            let answer = try await client.relay("/v1/chat/completions", key: key, chatBody(),
                                                headers: [HTTPField.Name("Connection")!: "keep-alive", HTTPField.Name("X-Custom")!: "client-only"])
            #expect(answer.code == 200)
            #expect(answer.json["choices"][0]["message"]["content"].string == "Hello from the fake")
            #expect(answer.json["usage"]["prompt_tokens"].int == 12, "the client gets the upstream's usage unchanged")
            #expect(answer.headers[HTTPField.Name("X-Sluice-Group")!] == "default")
            let seen = try #require(upstream.seen.last)
            #expect(seen.path == "/v1/chat/completions")
            #expect(seen.headers[.authorization] == "Bearer sk-upstream-secret")
            #expect(seen.headers[.authorization]?.contains(key) == false)
            #expect(seen.headers[HTTPField.Name("X-Custom")!] == nil)
            #expect(seen.body["model"].string == "upstream-model", "model mapping applies upstream")
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func streamsArePassedThroughWithUsageRequested(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 9, completion: 3))
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (_, alice, _) = try await client.relaySetup(upstream)
            let (key, _) = try await client.key(as: alice)
            let answer = try await client.relay("/v1/chat/completions", key: key, chatBody(stream: true))
            #expect(answer.code == 200)
            #expect(answer.headers[.contentType]?.contains("text/event-stream") == true)
            #expect(answer.text.contains("word0"))
            #expect(answer.text.contains("word2"))
            #expect(answer.text.hasSuffix("data: [DONE]\n\n"))
            #expect(!answer.text.contains("prompt_tokens"), "a usage chunk the caller did not ask for is not forwarded")
            let seen = try #require(upstream.seen.last)
            #expect(seen.body["stream_options"]["include_usage"].bool == true, "but Sluice asks for it, to charge the call")
            let asked = try await client.relay("/v1/chat/completions", key: key, chatBody(stream: true, extra: #", "stream_options": {"include_usage": true}"#))
            #expect(asked.text.contains(#""prompt_tokens":9"#), "the usage chunk reaches a caller who asked, unchanged")
            let logs = try await client.call(.get, "/api/log/self", as: alice)
            #expect(logs.data["total"].int == 2)
            #expect(logs.data["items"].array.allSatisfy { $0["prompt_tokens"].int == 9 && $0["completion_tokens"].int == 3 && $0["is_stream"].bool == true })
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func completionsEmbeddingsAndModels(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 4, completion: 2))
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            for model in ["gpt-test", "text-embed", "hidden-model", "other"] { try await client.price(model, as: root) }
            try await client.channel(upstream, models: ["gpt-test", "text-embed", "hidden-model"], as: root)
            _ = try await client.call(.post, "/api/group/", #"{"name": "vip", "models": ["other"]}"#, as: root)
            try await client.channel(upstream, models: ["other"], groups: ["vip"], name: "vip-channel", as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 10_000_000, as: root)
            let (key, _) = try await client.key(as: alice)
            let completion = try await client.relay("/v1/completions", key: key, #"{"model": "gpt-test", "prompt": "Once"}"#)
            #expect(completion.code == 200)
            #expect(completion.json["choices"][0]["text"].string == "Hello from the fake")
            #expect(upstream.seen.last?.path == "/v1/completions")
            let embedding = try await client.relay("/v1/embeddings", key: key, #"{"model": "text-embed", "input": "hello"}"#)
            #expect(embedding.code == 200)
            #expect(embedding.json["data"][0]["embedding"][0].double == 0.5)
            #expect(upstream.seen.last?.path == "/v1/embeddings")

            let models = try await client.call(.get, "/v1/models", headers: [.authorization: "Bearer \(key)"])
            let ids = Set(models.json["data"].array.compactMap { $0["id"].string })
            #expect(ids == ["gpt-test", "text-embed", "hidden-model"])
            let (limited, _) = try await client.key(#"{"name": "l", "unlimited_quota": true, "model_limits_enabled": true, "model_limits": "gpt-test,other", "fallback_groups": ["vip"]}"#, as: root)
            try await client.topUp(1, quota: 10_000_000, as: root)
            let limitedModels = try await client.call(.get, "/v1/models", headers: [.authorization: "Bearer \(limited)"])
            #expect(Set(limitedModels.json["data"].array.compactMap { $0["id"].string }) == ["gpt-test", "other"])
            let anonymous = try await client.call(.get, "/v1/models")
            #expect(anonymous.code == 401)

            // One model: those the key may use, else 404 model_not_found (as the OpenAI API answers).
            let one = try await client.call(.get, "/v1/models/gpt-test", headers: [.authorization: "Bearer \(limited)"])
            #expect(one.code == 200)
            #expect(one.json["id"].string == "gpt-test")
            #expect(one.json["object"].string == "model")
            for hidden in ["hidden-model", "no-such-model"] {
                let refused = try await client.call(.get, "/v1/models/\(hidden)", headers: [.authorization: "Bearer \(limited)"])
                #expect(refused.code == 404)
                #expect(refused.json["error"]["code"].string == "model_not_found")
            }
            #expect(try await client.call(.get, "/v1/models/gpt-test").code == 401)
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func anthropicMessagesWithEitherKeyHeader(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 20, completion: 10))
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("claude-test", as: root)
            try await client.channel(upstream, type: "anthropic", models: ["claude-test"], key: "sk-ant-upstream", as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 10_000_000, as: root)
            let (key, _) = try await client.key(as: alice)
            let body = #"{"model": "claude-test", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}"#
            for style in [true, false] {
                let answer = try await client.relay("/v1/messages", key: key, body, headers: [HTTPField.Name("anthropic-version")!: "2023-06-01"], anthropicStyle: style)
                #expect(answer.code == 200)
                #expect(answer.json["type"].string == "message")
                #expect(answer.json["usage"]["input_tokens"].int == 20)
                let seen = try #require(upstream.seen.last)
                #expect(seen.path == "/v1/messages")
                #expect(seen.headers[HTTPField.Name("x-api-key")!] == "sk-ant-upstream")
                #expect(seen.headers[HTTPField.Name("anthropic-version")!] == "2023-06-01")
                #expect(seen.headers[.authorization] == nil)
            }
            let stream = try await client.relay("/v1/messages", key: key,
                                                #"{"model": "claude-test", "max_tokens": 100, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}"#)
            #expect(stream.text.contains("event: message_start"))
            #expect(stream.text.contains("event: message_stop"))
            // Errors come in the Anthropic format on /v1/messages.
            let bad = try await client.relay("/v1/messages", key: "sk-nope", body, anthropicStyle: true)
            #expect(bad.code == 401)
            #expect(bad.json["type"].string == "error")
            #expect(bad.json["error"]["type"].string == "authentication_error")
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func admissionFollowsTheContractTable(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", as: root)
            try await client.price("gpt-other", as: root)
            try await client.channel(upstream, models: ["gpt-test"], as: root)
            _ = try await client.call(.put, "/api/group/", #"{"name": "default", "models": ["gpt-test", "unpriced"]}"#, as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 10_000_000, as: root)
            let (key, _) = try await client.key(as: alice)

            func expectError(_ answer: Answer, _ status: Int, _ code: String, _ label: String) {
                #expect(answer.code == status, "\(label): \(answer.text)")
                #expect(answer.json["error"]["code"].string == code, "\(label): \(answer.text)")
                #expect(answer.json["error"]["message"].string?.isEmpty == false, "\(label)")
            }
            expectError(try await client.relay("/v1/chat/completions", key: nil, chatBody()), 401, "invalid_api_key", "no key")
            expectError(try await client.relay("/v1/chat/completions", key: "sk-" + String(repeating: "a", count: 48), chatBody()), 401, "invalid_api_key", "unknown key")

            let (disabledKey, disabledId) = try await client.key(as: alice)
            _ = try await client.call(.put, "/api/token/?status_only=true", #"{"id": \#(disabledId), "status": 2}"#, as: alice)
            expectError(try await client.relay("/v1/chat/completions", key: disabledKey, chatBody()), 401, "token_disabled", "disabled")

            let (expiredKey, expiredId) = try await client.key(as: alice)
            try await database.withSQL { sql in try await sql.raw("UPDATE tokens SET expired_time = 1000 WHERE id = \(bind: expiredId)").run() }
            expectError(try await client.relay("/v1/chat/completions", key: expiredKey, chatBody()), 401, "token_expired", "expired")

            let (emptyKey, _) = try await client.key(#"{"name": "empty", "remain_quota": 0}"#, as: alice)
            expectError(try await client.relay("/v1/chat/completions", key: emptyKey, chatBody()), 401, "token_quota_exhausted", "exhausted")

            let (ipKey, _) = try await client.key(#"{"name": "ip", "unlimited_quota": true, "allow_ips": "10.9.9.9"}"#, as: alice)
            expectError(try await client.relay("/v1/chat/completions", key: ipKey, chatBody()), 403, "ip_not_allowed", "ip")

            let (limitedKey, _) = try await client.key(#"{"name": "m", "unlimited_quota": true, "model_limits_enabled": true, "model_limits": "gpt-other"}"#, as: alice)
            expectError(try await client.relay("/v1/chat/completions", key: limitedKey, chatBody()), 403, "model_not_allowed", "token whitelist")
            expectError(try await client.relay("/v1/chat/completions", key: key, chatBody("gpt-other")), 403, "model_not_allowed", "group whitelist")

            let (poorKey, _) = try await client.key(#"{"name": "poor", "remain_quota": 1}"#, as: alice)
            expectError(try await client.relay("/v1/chat/completions", key: poorKey, chatBody()), 429, "insufficient_quota", "token cannot cover")

            let (bob, _) = try await client.newUser("bobby")
            let (bobKey, _) = try await client.key(as: bob)
            expectError(try await client.relay("/v1/chat/completions", key: bobKey, chatBody()), 429, "insufficient_quota", "balance cannot cover")

            _ = try await client.call(.put, "/api/channel/", #"{"id": 1, "status": 2}"#, as: root)
            expectError(try await client.relay("/v1/chat/completions", key: key, chatBody()), 503, "no_available_channel", "no channel")
            _ = try await client.call(.put, "/api/channel/", #"{"id": 1, "status": 1}"#, as: root)

            expectError(try await client.relay("/v1/chat/completions", key: key, "{not json"), 400, "invalid_request_error", "malformed")
            expectError(try await client.relay("/v1/chat/completions", key: key, #"{"messages": []}"#), 400, "invalid_request_error", "no model")
            // Upstreams read the last of a repeated key; Sluice would bill by the first, so such bodies are refused.
            let repeated = try await client.relay("/v1/chat/completions", key: key, #"{"model": "gpt-test", "messages": [], "model": "gpt-other"}"#)
            expectError(repeated, 400, "invalid_request_error", "repeated model")
            #expect(repeated.json["error"]["message"].string?.contains("'model' more than once") == true, "\(repeated.text)")
            expectError(try await client.relay("/v1/chat/completions", key: key, #"[{"model": "gpt-test"}]"#), 400, "invalid_request_error", "not an object")
            expectError(try await client.relay("/v1/chat/completions", key: key, chatBody("unpriced")), 400, "model_price_unset", "no price")

            let ok = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(ok.code == 200)
        }
        await database.shutdown()
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func bodiesOverTheLimitGet413(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend) { $0.maxBodyBytes = 1024 }
        try await env.test { client in
            let (_, alice, _) = try await client.relaySetup(upstream)
            let (key, _) = try await client.key(as: alice)
            let big = chatBody(extra: #", "padding": "\#(String(repeating: "x", count: 2000))""#)
            let answer = try await client.relay("/v1/chat/completions", key: key, big)
            #expect(answer.code == 413)
            #expect(answer.json["error"]["message"].string?.isEmpty == false)
            // In the Anthropic format, the type Anthropic gives a body too large.
            let anthropic = try await client.relay("/v1/messages", key: key, big)
            #expect(anthropic.code == 413)
            #expect(anthropic.json["type"].string == "error")
            #expect(anthropic.json["error"]["type"].string == "request_too_large")
            #expect(upstream.calls == 0)
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func ipWhitelistAndCIDRAgainstTheSocketPeer(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend)
        try await env.test(.live) { client in
            let (_, alice, _) = try await client.relaySetup(upstream)
            let (v4, _) = try await client.key(#"{"name": "a", "unlimited_quota": true, "allow_ips": "127.0.0.0/8"}"#, as: alice)
            let (exact, _) = try await client.key(#"{"name": "b", "unlimited_quota": true, "allow_ips": "127.0.0.1"}"#, as: alice)
            let (other, _) = try await client.key(#"{"name": "c", "unlimited_quota": true, "allow_ips": "10.0.0.0/8, 2001:db8::/32"}"#, as: alice)
            #expect(try await client.relay("/v1/chat/completions", key: v4, chatBody()).code == 200)
            #expect(try await client.relay("/v1/chat/completions", key: exact, chatBody()).code == 200)
            let refused = try await client.relay("/v1/chat/completions", key: other, chatBody())
            #expect(refused.code == 403)
            #expect(refused.json["error"]["code"].string == "ip_not_allowed")
            // X-Forwarded-For is not believed from an untrusted peer.
            let spoofed = try await client.relay("/v1/chat/completions", key: other, chatBody(), headers: [HTTPField.Name("X-Forwarded-For")!: "10.1.1.1"])
            #expect(spoofed.code == 403)
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func forwardedForIsBelievedFromTrustedProxies(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend) { $0.trustedProxies = "127.0.0.1" }
        try await env.test(.live) { client in
            let (_, alice, _) = try await client.relaySetup(upstream)
            let (key, _) = try await client.key(#"{"name": "c", "unlimited_quota": true, "allow_ips": "10.0.0.0/8"}"#, as: alice)
            let proxied = try await client.relay("/v1/chat/completions", key: key, chatBody(), headers: [HTTPField.Name("X-Forwarded-For")!: "10.1.1.1"])
            #expect(proxied.code == 200)
            let direct = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(direct.code == 403)
        }
        await upstream.stop()
    }
}
