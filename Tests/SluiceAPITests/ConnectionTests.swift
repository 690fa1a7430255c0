import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOEmbedded
import NIOPosix
@testable import SluiceAPI
import SluiceCore
import SluiceStore
import SQLKit
import Testing

/// The server's connections as a client sees them on the wire. Relay calls are answered below Hummingbird
/// (`HTTPFrontHandler`) and every other request by Hummingbird, on the same connections, so these tests mix both.
@Suite struct ConnectionTests {
    static func post(_ path: String, key: String, _ body: String, extraHeaders: String = "") -> String {
        "POST \(path) HTTP/1.1\r\nHost: sluice\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\(extraHeaders)\r\n\(body)"
    }

    static func chunked(_ path: String, key: String, _ parts: [String]) -> String {
        var text = "POST \(path) HTTP/1.1\r\nHost: sluice\r\nx-api-key: \(key)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        for part in parts { text += String(part.utf8.count, radix: 16) + "\r\n" + part + "\r\n" }
        return text + "0\r\n\r\n"
    }

    /// Runs `body` against a live server with a channel on `upstream` and an unlimited key of a user with a balance.
    static func live(_ env: TestEnvironment, _ upstream: FakeUpstream,
                     _ body: @Sendable (_ key: String, _ port: Int) async throws -> Void) async throws {
        try await env.test(.live) { client in
            let (_, alice, _) = try await client.relaySetup(upstream)
            let (key, _) = try await client.key(as: alice)
            try await body(key, try #require(client.port))
        }
    }

    /// A relay task isolated to its connection's `LoopIsolation` runs on that loop, and so do the `nonisolated(nonsending)`
    /// functions it calls, across their suspensions: the relay's steps never leave the connection's thread.
    @Test func aTaskIsolatedToALoopRunsOnItAcrossSuspensions() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let seen = await Self.steps(on: LoopIsolation(loop: loop))
        #expect(seen == [true, true, true, true])
    }

    static func steps(on isolation: isolated LoopIsolation) async -> [Bool] {
        var seen = [isolation.loop.inEventLoop]
        await Task.yield()
        seen.append(isolation.loop.inEventLoop)
        seen.append(await inherited(isolation.loop))
        seen.append(isolation.loop.inEventLoop)
        return seen
    }

    nonisolated(nonsending) static func inherited(_ loop: any EventLoop) async -> Bool {
        try? await Task.sleep(for: .milliseconds(2))
        return loop.inEventLoop
    }

    /// The read-ahead asks for the next read at the end of each read, until 64 KiB have come since the last write,
    /// and never again once the connection is asked to wind down.
    @Test func theReadAheadKeepsReadingUpToItsLimitSinceTheLastWrite() throws {
        let reads = ReadCounter()
        let channel = EmbeddedChannel(handlers: [reads, ReadAheadHandler()])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        // `writeInbound` delivers the bytes and the end of the read.
        func arrive(_ count: Int) throws { try channel.writeInbound(ByteBuffer(repeating: 0x61, count: count)) }
        let before = reads.count
        try arrive(100)
        #expect(reads.count == before + 1, "a read follows a small request at once")
        try arrive(ReadAheadHandler.limit)
        #expect(reads.count == before + 1, "over the limit since the last write, the pipelining handler decides")
        try channel.writeOutbound(IOData.byteBuffer(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n")))
        try arrive(100)
        #expect(reads.count == before + 2, "an answer written opens the read-ahead again")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try arrive(1)
        #expect(reads.count == before + 2, "a connection winding down reads nothing more of itself")
        _ = try channel.finish()
    }

    @Test(arguments: Backend.all)
    func relayCallsAndOtherRequestsShareAConnectionInOrder(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 12, completion: 7))
        try await Self.live(try await TestEnvironment.make(backend), upstream) { key, port in
            let connection = try await RawHTTPConnection.open(port: port)
            let body = chatBody()
            let middle = body.index(body.startIndex, offsetBy: 20)
            // Six requests in one write: the answers must come back in the order asked.
            try await connection.send(
                Self.post("/v1/chat/completions", key: key, body)
                    + "GET /healthz HTTP/1.1\r\nHost: sluice\r\n\r\n"
                    + Self.chunked("/v1/chat/completions?api-version=1", key: key, [String(body[..<middle]), String(body[middle...])])
                    + "GET /api/status HTTP/1.1\r\nHost: sluice\r\n\r\n"
                    + Self.post("/v1/chat/completions", key: key, chatBody(stream: true))
                    + "GET /v1/models HTTP/1.1\r\nHost: sluice\r\nAuthorization: Bearer \(key)\r\n\r\n")
            let answers = try await connection.answers(6)
            #expect(answers.map(\.status) == [200, 200, 200, 200, 200, 200])
            #expect(answers[0].body.contains("Hello from the fake"))
            #expect(answers[1].body.contains(#""status""#))
            #expect(answers[2].body.contains("Hello from the fake"), "a chunked body and a query string reach the relay")
            #expect(answers[3].body.contains("Sluice"))
            #expect(answers[4].chunked)
            #expect(answers[4].header("content-type")?.hasPrefix("text/event-stream") == true)
            #expect(answers[4].body.hasSuffix("data: [DONE]\n\n"))
            #expect(answers[5].body.contains("gpt-test"))
            for answer in [answers[0], answers[2], answers[4]] {
                #expect(answer.header("server") == "Sluice")
                #expect(answer.header("date")?.hasSuffix(" GMT") == true)
                #expect(answer.header("x-request-id")?.count == 16)
                #expect(answer.header("connection") == nil)
            }
            #expect(Set(answers.compactMap { $0.header("x-request-id") }).count == 6, "every answer has its own request id")
            #expect(upstream.calls == 3)
            #expect(try await !connection.closedByServer(within: .milliseconds(200)))
            await connection.close()
        }
        await upstream.stop()
    }

    /// More pipelined requests than the read-ahead takes (about 160 KiB behind a relay call) are all answered, in order:
    /// past its limit, reading waits for the pipelining handler again.
    @Test(arguments: Backend.all)
    func pipelinedRequestsPastTheReadAheadAreAllAnsweredInOrder(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 3, completion: 2))
        try await Self.live(try await TestEnvironment.make(backend), upstream) { key, port in
            let connection = try await RawHTTPConnection.open(port: port)
            let pad = String(repeating: "p", count: 4000)
            let status = "GET /api/status HTTP/1.1\r\nHost: sluice\r\nX-Pad: \(pad)\r\n\r\n"
            let relay = Self.post("/v1/chat/completions", key: key, chatBody())
            try await connection.send(relay + String(repeating: status, count: 20) + relay + String(repeating: status, count: 20) + relay)
            let answers = try await connection.answers(43)
            #expect(answers.map(\.status) == Array(repeating: 200, count: 43))
            let relayed = answers.indices.filter { answers[$0].body.contains("Hello from the fake") }
            #expect(relayed == [0, 21, 42])
            #expect(upstream.calls == 3)
            await connection.close()
        }
        await upstream.stop()
    }

    /// The connection's peer is read once; a call forwarded by a trusted proxy still logs the address it names, and the
    /// next call on the same connection without one logs the peer.
    @Test(arguments: Backend.all)
    func eachCallOnAConnectionLogsItsOwnClientAddress(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start()
        let env = try await TestEnvironment.make(backend) { $0.trustedProxies = "127.0.0.1" }
        try await env.test(.live) { client in
            let (_, alice, _) = try await client.relaySetup(upstream)
            let (key, _) = try await client.key(as: alice)
            let connection = try await RawHTTPConnection.open(port: try #require(client.port))
            try await connection.send(
                Self.post("/v1/chat/completions", key: key, chatBody(), extraHeaders: "X-Forwarded-For: 10.1.1.1\r\n")
                    + Self.post("/v1/chat/completions", key: key, chatBody())
                    + Self.post("/v1/chat/completions", key: key, chatBody(), extraHeaders: "X-Forwarded-For: 10.2.2.2\r\n"))
            #expect(try await connection.answers(3).map(\.status) == [200, 200, 200])
            await connection.close()
            var addresses: [String] = []
            #expect(try await eventually {
                let items = try await client.call(.get, "/api/log/self?p=1&size=10", as: alice).data["items"].array
                addresses = items.reversed().compactMap { $0["ip"].string }
                return addresses.count == 3
            })
            #expect(addresses == ["10.1.1.1", "127.0.0.1", "10.2.2.2"])
        }
        await upstream.stop()
    }

    /// A connection keeps its last key's lookup digest, and nothing else of it: each call is found by its own key,
    /// and a key disabled between two calls of the same connection is refused at the second.
    @Test(arguments: Backend.all)
    func eachCallOnAConnectionIsFoundByItsOwnKey(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start()
        try await TestEnvironment.make(backend).test(.live) { client in
            let (_, alice, _) = try await client.relaySetup(upstream)
            let (first, firstId) = try await client.key(as: alice)
            let (second, secondId) = try await client.key(as: alice)
            let unknown = "sk-" + String(repeating: "x", count: 48)
            let connection = try await RawHTTPConnection.open(port: try #require(client.port))
            let chat = { (key: String) in Self.post("/v1/chat/completions", key: key, chatBody()) }
            try await connection.send(chat(first) + chat(first) + chat(unknown) + chat(second) + chat(first))
            #expect(try await connection.answers(5).map(\.status) == [200, 200, 401, 200, 200])
            var tokens: [Int] = []
            #expect(try await eventually {
                let items = try await client.call(.get, "/api/log/self?p=1&size=10", as: alice).data["items"].array
                tokens = items.reversed().compactMap { $0["token_id"].int }
                return tokens.count == 4
            })
            #expect(tokens == [firstId, firstId, secondId, firstId])
            _ = try await client.call(.put, "/api/token/?status_only=true", #"{"id": \#(firstId), "status": 2}"#, as: alice)
            try await connection.send(chat(first) + chat(second))
            #expect(try await connection.answers(7).suffix(2).map(\.status) == [401, 200])
            await connection.close()
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func oversizedBodiesAreRefusedAndAskingCallersAnswered(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start()
        try await Self.live(try await TestEnvironment.make(backend) { $0.maxBodyBytes = 2048 }, upstream) { key, port in

            // A declared length over the limit is refused before the body is read.
            let declared = try await RawHTTPConnection.open(port: port)
            try await declared.send("POST /v1/chat/completions HTTP/1.1\r\nHost: sluice\r\nAuthorization: Bearer \(key)\r\nContent-Length: 4096\r\n\r\n")
            let refused = try #require(try await declared.answers(1).first)
            #expect(refused.status == 413)
            #expect(refused.header("connection") == "close")
            #expect(refused.body.contains(#""code":"request_too_large""#))
            #expect(try await declared.closedByServer())

            // A chunked body is refused once it grows past the limit, in the endpoint's format.
            let growing = try await RawHTTPConnection.open(port: port)
            try await growing.send(Self.chunked("/v1/messages", key: key, Array(repeating: String(repeating: "x", count: 1000), count: 3)))
            let anthropic = try #require(try await growing.answers(1).first)
            #expect(anthropic.status == 413)
            #expect(anthropic.body.contains(#""type":"request_too_large""#))
            #expect(try await growing.closedByServer())

            // A caller that asks before sending its body (curl does over 1 MiB) is told to go on, or refused at once.
            let asking = try await RawHTTPConnection.open(port: port)
            let body = chatBody()
            try await asking.send("POST /v1/chat/completions HTTP/1.1\r\nHost: sluice\r\nAuthorization: Bearer \(key)\r\n"
                                  + "Expect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
            let goOn = try #require(try await asking.answers(1).first)
            #expect(goOn.status == 100)
            try await asking.send(body)
            #expect(try await asking.answers(2).last?.status == 200)
            await asking.close()
            let askingTooMuch = try await RawHTTPConnection.open(port: port)
            try await askingTooMuch.send("POST /v1/chat/completions HTTP/1.1\r\nHost: sluice\r\nAuthorization: Bearer \(key)\r\n"
                                         + "Expect: 100-continue\r\nContent-Length: 4096\r\n\r\n")
            #expect(try await askingTooMuch.answers(1).first?.status == 413)
            #expect(try await askingTooMuch.closedByServer())

            // Just under the limit goes through.
            let fits = try await RawHTTPConnection.open(port: port)
            let padded = chatBody(extra: #", "user": "\#(String(repeating: "p", count: 1800))""#)
            try await fits.send(Self.post("/v1/chat/completions", key: key, padded))
            #expect(try await fits.answers(1).first?.status == 200)
            await fits.close()
        }
        #expect(upstream.calls == 2)
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func connectionCloseHTTP10AndHalfClosedCallersAreAnswered(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start()
        try await Self.live(try await TestEnvironment.make(backend), upstream) { key, port in

            let closing = try await RawHTTPConnection.open(port: port)
            // What is sent after a `Connection: close` call is not answered (nor relayed, nor charged).
            try await closing.send(Self.post("/v1/chat/completions", key: key, chatBody(), extraHeaders: "Connection: close\r\n")
                                   + Self.post("/v1/chat/completions", key: key, chatBody()))
            let closed = try #require(try await closing.answers(1).first)
            #expect(closed.status == 200)
            #expect(closed.header("connection") == "close")
            #expect(try await closing.closedByServer())
            #expect(closing.answered == 1)

            let old = try await RawHTTPConnection.open(port: port)
            let body = chatBody()
            try await old.send("POST /v1/chat/completions HTTP/1.0\r\nAuthorization: Bearer \(key)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            let answer = try #require(try await old.answers(1).first)
            #expect(answer.statusLine.hasPrefix("HTTP/1.0 200"))
            #expect(try await old.closedByServer())

            // A caller that sends its call and closes its side still gets the whole answer, stream or not.
            for stream in [false, true] {
                let halfClosed = try await RawHTTPConnection.open(port: port)
                try await halfClosed.send(Self.post("/v1/chat/completions", key: key, chatBody(stream: stream)))
                try await halfClosed.shutdownOutput()
                let whole = try #require(try await halfClosed.answers(1).first)
                #expect(whole.status == 200)
                #expect(whole.body.contains(stream ? "[DONE]" : "Hello from the fake"))
                #expect(try await halfClosed.closedByServer())
            }
        }
        #expect(upstream.calls == 4)
        await upstream.stop()
    }

    /// A request that cannot be read gets its status in the relay's error format, and its connection closes; nothing
    /// of it reaches an upstream. A request for Hummingbird that asks before sending its body is told to go on, and a
    /// stream to an HTTP/1.0 caller is sent without chunks, ending with the connection.
    @Test(arguments: Backend.all)
    func unreadableRequestsAreRefusedAndOldCallersStreamUntilTheClose(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start()
        try await Self.live(try await TestEnvironment.make(backend), upstream) { key, port in
            for (text, status) in [
                ("POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer \(key)\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
                ("GET /api/status HTTP/2.0\r\n\r\n", 505),
                ("GET /api/status HTTP/1.1\r\nX-Big: \(String(repeating: "b", count: 70_000))\r\n\r\n", 431),
            ] {
                let connection = try await RawHTTPConnection.open(port: port)
                try await connection.send(text)
                let answer = try #require(try await connection.answers(1).first)
                #expect(answer.status == status)
                #expect(answer.header("connection") == "close")
                #expect(answer.body.contains(#""code":"invalid_request_error""#))
                #expect(try await connection.closedByServer())
            }

            let asking = try await RawHTTPConnection.open(port: port)
            let login = #"{"username":"nobody","password":"wrong-password"}"#
            try await asking.send("POST /api/user/login HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\n"
                                  + "Expect: 100-continue\r\nContent-Length: \(login.utf8.count)\r\n\r\n")
            #expect(try await asking.answers(1).first?.status == 100)
            try await asking.send(login)
            let refused = try #require(try await asking.answers(2).last)
            #expect(refused.status != 100)
            #expect(refused.body.contains("\"success\""))
            await asking.close()

            let old = try await RawHTTPConnection.open(port: port)
            let body = chatBody(stream: true)
            try await old.send("POST /v1/chat/completions HTTP/1.0\r\nConnection: keep-alive\r\nAuthorization: Bearer \(key)\r\n"
                               + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
            #expect(try await old.closedByServer(within: .seconds(10)))
            let streamed = try #require(try await old.answers(1).first)
            #expect(streamed.statusLine.hasPrefix("HTTP/1.0 200"))
            #expect(!streamed.chunked)
            #expect(streamed.header("connection") == "close")
            #expect(streamed.body.hasSuffix("data: [DONE]\n\n"))
        }
        #expect(upstream.calls == 1)
        await upstream.stop()
    }

    /// A stream larger than the connection can hold waits for the caller to read, and then arrives whole.
    @Test(arguments: Backend.all)
    func aStreamWaitsForASlowReaderAndArrivesWhole(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.largeStream(chunks: 500, bytes: 10_000))
        try await Self.live(try await TestEnvironment.make(backend), upstream) { key, port in
            let connection = try await RawHTTPConnection.open(port: port, paused: true)
            try await connection.send(Self.post("/v1/chat/completions", key: key, chatBody(stream: true)))
            // The upstream sends about 5 MB as fast as it can; with nothing read by the caller, the answer fills the
            // socket's buffers and the connection's, and the stream waits until the connection can take more (the
            // kernel's buffers grow to megabytes on loopback, hence the size).
            try await Task.sleep(for: .milliseconds(500))
            try await connection.resumeReading()
            try await connection.waitUntilEnds(with: "\r\n0\r\n\r\n")
            let answer = try #require(try await connection.answers(1).first)
            #expect(answer.status == 200)
            #expect(answer.chunked)
            #expect(answer.body.contains("word0 ") && answer.body.contains("word499 "))
            #expect(answer.body.hasSuffix("data: [DONE]\n\n"))
            await connection.close()
        }
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func aShutdownWaitsForCallsWhoseCallerLeft(_ backend: Backend) async throws {
        // Long enough that the caller's leaving is noticed before the stream would have ended, however loaded the machine.
        let upstream = try await FakeUpstream.start(.slowStream(chunks: 100, delayMs: 200, usage: false))
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await Self.live(env, upstream) { key, port in
            let connection = try await RawHTTPConnection.open(port: port)
            try await connection.send(Self.post("/v1/chat/completions", key: key, chatBody(stream: true)))
            try await connection.waitFor("word0")
            await connection.close()
            // The server now shuts down while the stream waits for the upstream's next event: the call must still
            // settle (charge what was delivered, log it) before the ledger writes its last batch.
        }
        let contents = try await database.withSQL { sql in
            try await sql.raw("SELECT content FROM logs WHERE type = \(unsafeRaw: String(LogEntry.Kind.consume))").all()
                .map { try $0.decode(column: "content", as: String.self) }
        }
        #expect(contents.count == 1)
        #expect(contents.first?.contains("disconnected") == true)
        await database.shutdown()
        await upstream.stop()
    }
}

/// Counts the reads asked of the channel by the handlers above it.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    private(set) var count = 0

    func read(context: ChannelHandlerContext) {
        count += 1
        context.read()
    }
}
