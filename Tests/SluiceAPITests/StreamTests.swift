import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import SluiceAPI
import SluiceCore
import Testing

/// Streams over real sockets: chunk-by-chunk delivery, a client that leaves, an upstream that fails.
@Suite struct StreamTests {
    func streamRequest(port: Int, key: String, body: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        return request
    }

    @Test(arguments: Backend.all)
    func chunksArriveWhileTheUpstreamIsStillStreaming(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.slowStream(chunks: 20, delayMs: 100, usage: true))
        let env = try await TestEnvironment.make(backend)
        try await env.test(.live) { client in
            let (_, alice, _) = try await client.relaySetup(upstream)
            let (key, _) = try await client.key(as: alice)
            let port = try #require(client.port)
            let response = try await HTTPClient.shared.execute(streamRequest(port: port, key: key, body: chatBody(stream: true)), timeout: .seconds(30))
            #expect(response.status == .ok)
            var text = ""
            var completedWhenFirstArrived: Int?
            for try await chunk in response.body {
                if completedWhenFirstArrived == nil { completedWhenFirstArrived = upstream.completedStreams }
                text += String(buffer: chunk)
            }
            #expect(completedWhenFirstArrived == 0, "the first chunk reached the client before the upstream finished: not buffered")
            #expect(text.contains("word19"))
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func aClientThatLeavesCancelsTheUpstreamAndPaysForWhatItGot(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.slowStream(chunks: 200, delayMs: 50, usage: false))
        let env = try await TestEnvironment.make(backend)
        try await env.test(.live) { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", input: 1, output: 1000, as: root)
            try await client.channel(upstream, as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 100_000_000, as: root)
            let (key, tokenId) = try await client.key(as: alice)
            let port = try #require(client.port)
            let response = try await HTTPClient.shared.execute(streamRequest(port: port, key: key, body: chatBody(stream: true, maxTokens: 1000)), timeout: .seconds(30))
            var received = 0
            for try await chunk in response.body {
                received += chunk.readableBytes
                if String(buffer: chunk).contains("word3") { break }
            }
            // Leaving the loop drops the connection; the upstream stream must be cancelled at once, not run to its end.
            let cancelled = try await eventually { upstream.cancelledStreams == 1 }
            #expect(cancelled, "the upstream request was cancelled")
            #expect(upstream.completedStreams == 0)
            let charged = try await eventually {
                try await client.call(.get, "/api/log/self", as: alice).data["total"].int == 1
            }
            #expect(charged)
            let log = try await client.call(.get, "/api/log/self", as: alice).data["items"][0]
            let completion = try #require(log["completion_tokens"].int)
            #expect(completion > 0, "what was delivered is charged")
            #expect(completion < 200 * 2, "not the whole stream")
            #expect((log["prompt_tokens"].int ?? 0) > 0, "the prompt is charged")
            #expect((log["quota"].int ?? 0) > 0)
            #expect(log["content"].string?.contains("disconnected") == true)
            let token = try await client.call(.get, "/api/token/\(tokenId)", as: alice)
            #expect(token.data["used_quota"].int == log["quota"].int)
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func anUpstreamThatFailsMidStreamChargesNothing(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.resetMidStream)
        let env = try await TestEnvironment.make(backend)
        try await env.test(.live) { client in
            let (_, alice, _) = try await client.relaySetup(upstream, callPrice: nil)
            let (key, tokenId) = try await client.key(as: alice)
            let port = try #require(client.port)
            let response = try await HTTPClient.shared.execute(streamRequest(port: port, key: key, body: chatBody(stream: true, maxTokens: 100)), timeout: .seconds(30))
            var text = ""
            do {
                for try await chunk in response.body { text += String(buffer: chunk) }
            } catch {}
            #expect(text.contains("partial"))
            #expect(text.contains("upstream_error"), "the client is told, in its format")
            let token = try await client.call(.get, "/api/token/\(tokenId)", as: alice)
            #expect(token.data["used_quota"].int == 0)
            let logs = try await client.call(.get, "/api/log/self", as: alice)
            #expect(logs.data["items"].array.allSatisfy { $0["quota"].int == 0 })
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func anUpstreamSilentAfterTheFirstByteTimesOutWithoutCharge(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.slowStream(chunks: 3, delayMs: 8000, usage: true))
        let env = try await TestEnvironment.make(backend)
        try await env.test(.live) { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", as: root)
            try await client.channel(upstream, extra: #", "idle_timeout_ms": 2000"#, as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 10_000_000, as: root)
            let (key, tokenId) = try await client.key(as: alice)
            let port = try #require(client.port)
            let response = try await HTTPClient.shared.execute(streamRequest(port: port, key: key, body: chatBody(stream: true, maxTokens: 100)), timeout: .seconds(30))
            var text = ""
            do { for try await chunk in response.body { text += String(buffer: chunk) } } catch {}
            #expect(text.contains("word0"), "the first chunk came through")
            #expect(!text.contains("word1"))
            #expect(text.contains("upstream_error"), "then the client is told the upstream went silent")
            let token = try await client.call(.get, "/api/token/\(tokenId)", as: alice)
            #expect(token.data["used_quota"].int == 0, "a failed stream is not charged")
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func aSilentUpstreamTimesOutAndTheNextChannelServes(_ backend: Backend) async throws {
        let silent = try await FakeUpstream.start(.hang)
        let working = try await FakeUpstream.start(.answer(prompt: 5, completion: 5))
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            try await client.price("gpt-test", as: root)
            try await client.channel(silent, priority: 10, name: "silent", extra: #", "first_byte_timeout_ms": 300"#, as: root)
            try await client.channel(working, priority: 0, name: "working", as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 10_000_000, as: root)
            let (key, _) = try await client.key(as: alice)
            let answer = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(answer.code == 200)
            #expect(silent.calls == 1)
            #expect(working.calls == 1)
            let channels = try await client.call(.get, "/api/channel/", as: root)
            let silentHealth = channels.data["items"].array.first { $0["name"].string == "silent" }?["health"]
            #expect(silentHealth?["last_error"].string?.contains("first-byte") == true)
        }
        await silent.stop()
        await working.stop()
    }
}
