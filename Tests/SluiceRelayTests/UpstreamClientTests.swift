import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import Testing
@testable import SluiceRelay

/// The upstream client against a scripted loopback server that answers raw bytes: keep-alive, chunked bodies,
/// closes, silences and TLS, each with bounded waits.
@Suite struct UpstreamClientTests {
    static let timeouts = UpstreamTimeouts(connectMs: 2_000, firstByteMs: 5_000, idleMs: 5_000)
    /// One loop, so that one pool serves every call of a test (each loop has a pool of its own).
    static let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    @Test func reusesAKeptAliveConnection() async throws {
        try await ScriptedUpstream.with { _, _ in .respond(ScriptedUpstream.answer("hello")) } run: { server in
            let client = UpstreamClient(group: Self.loop)
            for _ in 0..<3 {
                let response = try await client.execute(UpstreamRequest(url: server.url("/v1/x"), headers: [("X-Test", "1")],
                                                                        body: ByteBuffer(string: "{}")), timeouts: Self.timeouts)
                #expect(response.status == 200)
                #expect(String(buffer: try await response.body.collect(upTo: 1024)) == "hello")
            }
            #expect(server.connections == 1)
            #expect(await client.idleConnections() == 1)
            let seen = try #require(server.requests.first)
            #expect(seen.hasPrefix("POST /v1/x HTTP/1.1\r\n"))
            #expect(seen.contains("Host: 127.0.0.1:\(server.port)\r\n"))
            #expect(seen.contains("X-Test: 1\r\n"))
            #expect(seen.contains("Content-Length: 2\r\n"))
            #expect(seen.hasSuffix("\r\n\r\n{}"))
            await client.shutdown()
            #expect(await client.idleConnections() == 0)
        }
    }

    @Test func streamsAChunkedBodyInPieces() async throws {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        try await ScriptedUpstream.with { _, _ in
            .steps([.send(head + "6\r\ndata: \r\n"), .wait(50), .send("3\r\none\r\n"), .wait(50), .send("3\r\ntwo\r\n0\r\n\r\n")])
        } run: { server in
            let client = UpstreamClient(group: Self.loop)
            let response = try await client.execute(UpstreamRequest(url: server.url("/s")), timeouts: Self.timeouts)
            #expect(response.headers.first(name: "content-type") == "text/event-stream")
            var pieces: [String] = []
            for try await chunk in response.body { pieces.append(String(buffer: chunk)) }
            #expect(pieces.joined() == "data: onetwo")
            #expect(await client.idleConnections() == 1)
            await client.shutdown()
        }
    }

    @Test func connectionCloseIsNotKept() async throws {
        try await ScriptedUpstream.with { _, _ in
            .steps([.send("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"), .close])
        } run: { server in
            let client = UpstreamClient(group: Self.loop)
            for _ in 0..<2 {
                let response = try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: Self.timeouts)
                #expect(String(buffer: try await response.body.collect(upTo: 16)) == "ok")
            }
            #expect(server.connections == 2)
            #expect(await client.idleConnections() == 0)
            await client.shutdown()
        }
    }

    @Test func aBodyUntilCloseIsReadWhole() async throws {
        try await ScriptedUpstream.with { _, _ in
            .steps([.send("HTTP/1.1 200 OK\r\n\r\npart one, "), .wait(30), .send("part two"), .close])
        } run: { server in
            let client = UpstreamClient(group: Self.loop)
            let response = try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: Self.timeouts)
            #expect(String(buffer: try await response.body.collect(upTo: 1024)) == "part one, part two")
            #expect(await client.idleConnections() == 0)
            await client.shutdown()
        }
    }

    @Test(.timeLimit(.minutes(1))) func silenceBeforeTheHeadIsTheFirstByteTimeout() async throws {
        try await ScriptedUpstream.with { _, _ in .steps([.wait(3_000)]) } run: { server in
            let client = UpstreamClient(group: Self.loop)
            let timeouts = UpstreamTimeouts(connectMs: 2_000, firstByteMs: 150, idleMs: 5_000)
            await #expect(throws: UpstreamError.firstByteTimeout) {
                _ = try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: timeouts)
            }
            #expect(await client.idleConnections() == 0)
            await client.shutdown()
        }
    }

    @Test(.timeLimit(.minutes(1))) func silenceInTheBodyIsTheIdleTimeout() async throws {
        try await ScriptedUpstream.with { _, _ in
            .steps([.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"), .wait(3_000)])
        } run: { server in
            let client = UpstreamClient(group: Self.loop)
            let timeouts = UpstreamTimeouts(connectMs: 2_000, firstByteMs: 5_000, idleMs: 150)
            let response = try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: timeouts)
            var received = ""
            await #expect(throws: UpstreamError.idleTimeout) {
                for try await chunk in response.body { received += String(buffer: chunk) }
            }
            #expect(received == "first")
            await client.shutdown()
        }
    }

    @Test func aCloseMidBodyDeliversWhatCameThenFails() async throws {
        try await ScriptedUpstream.with { _, _ in
            .steps([.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"), .wait(30), .close])
        } run: { server in
            let client = UpstreamClient(group: Self.loop)
            let response = try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: Self.timeouts)
            var received = ""
            await #expect(throws: UpstreamError.closed) {
                for try await chunk in response.body { received += String(buffer: chunk) }
            }
            #expect(received == "partial")
            await client.shutdown()
        }
    }

    @Test func aRefusedConnectionFailsAtOnce() async throws {
        // A port that was just free: nothing listens there.
        let port = try await ScriptedUpstream.with { _, _ in .close } run: { $0.port }
        let client = UpstreamClient(group: Self.loop)
        await #expect {
            _ = try await client.execute(UpstreamRequest(url: "http://127.0.0.1:\(port)/"), timeouts: Self.timeouts)
        } throws: { error in
            guard case UpstreamError.connectFailed = error else { return false }
            return true
        }
        await client.shutdown()
    }

    @Test func aBodyOverTheLimitFailsAndClosesTheConnection() async throws {
        try await ScriptedUpstream.with { connection, _ in
            // The first answer is still arriving when it passes the limit; the second has ended before it is read.
            connection == 0 ? .steps([.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + String(repeating: "x", count: 50)), .wait(3_000)])
                : .respond(ScriptedUpstream.answer(String(repeating: "y", count: 100)))
        } run: { server in
            let client = UpstreamClient(group: Self.loop)
            let response = try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: Self.timeouts)
            await #expect(throws: UpstreamError.tooLarge(limit: 10)) { _ = try await response.body.collect(upTo: 10) }
            try await server.waitForClosedConnections(1)
            #expect(await client.idleConnections() == 0)

            let whole = try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: Self.timeouts)
            // Its end puts the connection back in the pool: wait for that (at most five seconds), then read.
            for _ in 0..<500 where await client.idleConnections() == 0 { try await Task.sleep(for: .milliseconds(10)) }
            await #expect(throws: UpstreamError.tooLarge(limit: 10)) { _ = try await whole.body.collect(upTo: 10) }
            #expect(await client.idleConnections() == 1, "an answer that ended is a clean connection")
            await client.shutdown()
        }
    }

    @Test(arguments: [false, true])
    func aKeptConnectionTheUpstreamDroppedIsRetriedOnceOnANewOne(reset: Bool) async throws {
        // The second request on the first connection is dropped unanswered (closed, or reset), as an upstream that
        // timed the idle connection out would; the client sends it again on a new connection.
        try await ScriptedUpstream.with { connection, request in
            connection == 0 && request == 1 ? (reset ? .reset : .close) : .respond(ScriptedUpstream.answer("fine"))
        } run: { server in
            let client = UpstreamClient(group: Self.loop)
            for _ in 0..<2 {
                let response = try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: Self.timeouts)
                #expect(String(buffer: try await response.body.collect(upTo: 16)) == "fine")
            }
            #expect(server.connections == 2)
            await client.shutdown()
        }
    }

    /// An answer followed by bytes of no request: the answer is read, and the connection is not used again.
    @Test func bytesAfterAnAnswerAreNotTrustedWithTheNextCall() async throws {
        try await ScriptedUpstream.with { _, _ in .respond(ScriptedUpstream.answer("one") + "HTTP/1.1 200 OK\r\n") } run: { server in
            let client = UpstreamClient(group: Self.loop)
            for _ in 0..<2 {
                let response = try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: Self.timeouts)
                #expect(String(buffer: try await response.body.collect(upTo: 16)) == "one")
            }
            #expect(server.connections == 2)
            await client.shutdown()
        }
    }

    /// A header that would break the request's framing (a channel key with a line break) fails the call before any
    /// connection is opened, instead of going out or waiting for a timeout.
    @Test func aHeaderWithALineBreakIsNeverSent() async throws {
        try await ScriptedUpstream.with { _, _ in .respond(ScriptedUpstream.answer("no")) } run: { server in
            let client = UpstreamClient(group: Self.loop)
            await #expect(throws: UpstreamError.self) {
                _ = try await client.execute(UpstreamRequest(url: server.url("/"), headers: [("Authorization", "Bearer a\r\nX-Evil: 1")]),
                                             timeouts: Self.timeouts)
            }
            #expect(server.connections == 0)
            await client.shutdown()
        }
    }

    /// An answer that is not HTTP fails the call with what was wrong, and the connection is closed.
    @Test func anAnswerThatIsNotHTTPFailsTheCall() async throws {
        try await ScriptedUpstream.with { _, _ in .respond("SSH-2.0-OpenSSH_9.2\r\n\r\n") } run: { server in
            let client = UpstreamClient(group: Self.loop)
            await #expect {
                _ = try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: Self.timeouts)
            } throws: { error in
                guard case UpstreamError.malformed(let why) = error else { return false }
                return why.contains("HTTP/1.x")
            }
            try await server.waitForClosedConnections(1)
            #expect(await client.idleConnections() == 0)
            await client.shutdown()
        }
    }

    @Test func aNewConnectionThatClosesIsNotRetried() async throws {
        try await ScriptedUpstream.with { _, _ in .close } run: { server in
            let client = UpstreamClient(group: Self.loop)
            await #expect(throws: UpstreamError.closed) {
                _ = try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: Self.timeouts)
            }
            #expect(server.connections == 1)
            await client.shutdown()
        }
    }

    @Test func aCallerWhoGivesUpClosesTheConnection() async throws {
        try await ScriptedUpstream.with { connection, _ in
            connection == 0 ? .steps([.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"), .wait(3_000)])
                : .steps([.wait(3_000)])
        } run: { server in
            let client = UpstreamClient(group: Self.loop)
            let response = try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: Self.timeouts)
            var iterator = response.body.makeAsyncIterator()
            #expect(try await iterator.next().map { String(buffer: $0) } == "first")
            response.body.cancel()
            await #expect(throws: UpstreamError.cancelled) { _ = try await iterator.next() }
            try await server.waitForClosedConnections(1)
            #expect(await client.idleConnections() == 0)

            // A caller cancelled while waiting for the head (once the request has arrived: a caller who gives up while
            // the connection is still opening leaves a fresh connection to the pool, unused).
            let waiting = Task { try await client.execute(UpstreamRequest(url: server.url("/")), timeouts: Self.timeouts) }
            try await server.waitUntil("the second request arrives") { $0.requests.count >= 2 }
            waiting.cancel()
            await #expect(throws: UpstreamError.cancelled) { _ = try await waiting.value }
            try await server.waitForClosedConnections(2)
            await client.shutdown()
        }
    }

    @Test func speaksTLSToAHostItTrusts() async throws {
        let certificate = try NIOSSLCertificate(bytes: Array(TestTLS.serverCertificate.utf8), format: .pem)
        let key = try NIOSSLPrivateKey(bytes: Array(TestTLS.serverKey.utf8), format: .pem)
        let serverTLS = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: [.certificate(certificate)],
                                                                                   privateKey: .privateKey(key)))
        try await ScriptedUpstream.with(tls: serverTLS) { _, _ in .respond(ScriptedUpstream.answer("secret")) } run: { server in
            var trusting = TLSConfiguration.makeClientConfiguration()
            trusting.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(TestTLS.authority.utf8), format: .pem)])
            let client = UpstreamClient(group: Self.loop, tlsConfiguration: trusting)
            for host in ["localhost", "127.0.0.1"] {
                let response = try await client.execute(UpstreamRequest(url: "https://\(host):\(server.port)/v1/chat"), timeouts: Self.timeouts)
                #expect(String(buffer: try await response.body.collect(upTo: 64)) == "secret")
            }
            await client.shutdown()

            // The system's roots do not know the test authority.
            let strict = UpstreamClient(group: Self.loop)
            await Self.expectTLSRefusal(strict, "https://localhost:\(server.port)/")
            await strict.shutdown()
        }

        // A certificate that does not name the address called is refused, though its authority is trusted.
        try await ScriptedUpstream.with(host: "127.0.0.2", tls: serverTLS) { _, _ in .respond(ScriptedUpstream.answer("secret")) } run: { server in
            var trusting = TLSConfiguration.makeClientConfiguration()
            trusting.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(TestTLS.authority.utf8), format: .pem)])
            let client = UpstreamClient(group: Self.loop, tlsConfiguration: trusting)
            await Self.expectTLSRefusal(client, "https://127.0.0.2:\(server.port)/")
            await client.shutdown()
        }
    }

    static func expectTLSRefusal(_ client: UpstreamClient, _ url: String) async {
        await #expect {
            _ = try await client.execute(UpstreamRequest(url: url), timeouts: timeouts)
        } throws: { error in
            guard case UpstreamError.connectFailed(let why) = error else { return false }
            return why.hasPrefix("TLS")
        }
    }

    @Test(arguments: [
        ("http://api.example.com/v1/chat", true, "api.example.com", 80, "/v1/chat", "api.example.com"),
        ("https://API.example.com", true, "api.example.com", 443, "/", "api.example.com"),
        ("https://h:8443/a?b=1#frag", true, "h", 8443, "/a?b=1", "h:8443"),
        ("http://user:pw@h:81?x", true, "h", 81, "/?x", "h:81"),
        ("http://[::1]:9000/p", true, "::1", 9000, "/p", "[::1]:9000"),
        ("ftp://h/", false, "", 0, "", ""),
        ("http://:80/", false, "", 0, "", ""),
        ("http://h:0/", false, "", 0, "", ""),
        ("http://h:x/", false, "", 0, "", ""),
    ])
    func parsesUpstreamURLs(url: String, valid: Bool, host: String, port: Int, path: String, hostHeader: String) throws {
        guard valid else {
            #expect(throws: UpstreamError.self) { _ = try UpstreamTarget.parse(url) }
            return
        }
        let (target, parsedPath) = try UpstreamTarget.parse(url)
        #expect(target.host == host)
        #expect(target.port == port)
        #expect(parsedPath == path)
        #expect(target.hostHeader == hostHeader)
    }
}

/// A loopback server that reads HTTP/1.1 requests with a Content-Length body and plays a script for each: raw bytes,
/// pauses and closes. Requests are numbered per connection.
final class ScriptedUpstream: Sendable {
    enum Step: Sendable { case send(String), wait(Int), close }
    enum Script: Sendable {
        case respond(String)
        case steps([Step])
        case close
        /// Closes with a TCP reset (SO_LINGER 0).
        case reset
    }
    typealias Plan = @Sendable (_ connection: Int, _ request: Int) -> Script

    let host: String
    let port: Int
    private let counters: Counters

    var connections: Int { counters.state.withLock { $0.connections } }
    var requests: [String] { counters.state.withLock { $0.requests } }
    func url(_ path: String) -> String { "http://\(host):\(port)\(path)" }

    static func answer(_ body: String) -> String { "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)" }

    private init(host: String, port: Int, counters: Counters) {
        self.host = host
        self.port = port
        self.counters = counters
    }

    /// Runs `body` with a server that follows `plan`, then stops it.
    static func with<T: Sendable>(host: String = "127.0.0.1", tls: NIOSSLContext? = nil, _ plan: @escaping Plan,
                                  run body: (ScriptedUpstream) async throws -> T) async throws -> T {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let counters = Counters()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                do {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(ScriptHandler(number: counters.opened(), plan: plan, counters: counters))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch { return channel.eventLoop.makeFailedFuture(error) }
            }
            .bind(host: host, port: 0).get()
        let server = ScriptedUpstream(host: host, port: channel.localAddress?.port ?? 0, counters: counters)
        do {
            let result = try await body(server)
            try? await channel.close()
            try? await group.shutdownGracefully()
            return result
        } catch {
            try? await channel.close()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Waits (at most five seconds) until `count` connections have closed on the server's side.
    func waitForClosedConnections(_ count: Int) async throws {
        try await waitUntil("\(count) connection(s) closed") { $0.closed >= count }
    }

    /// Waits (at most five seconds) until what the server saw meets `condition`.
    func waitUntil(_ what: String, _ condition: (_ seen: (connections: Int, closed: Int, requests: [String])) -> Bool) async throws {
        for _ in 0..<500 {
            if counters.state.withLock({ condition($0) }) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("waited in vain: \(what)")
    }

    final class Counters: Sendable {
        let state = Mutex<(connections: Int, closed: Int, requests: [String])>((0, 0, []))
        func opened() -> Int { state.withLock { state in defer { state.connections += 1 }; return state.connections } }
    }

    final class ScriptHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let number: Int
        let plan: Plan
        let counters: Counters
        var received = ByteBuffer()
        var requestNumber = 0

        init(number: Int, plan: @escaping Plan, counters: Counters) {
            self.number = number
            self.plan = plan
            self.counters = counters
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            received.writeBuffer(&bytes)
            while let request = takeRequest() {
                counters.state.withLock { $0.requests.append(request) }
                let script = plan(number, requestNumber)
                requestNumber += 1
                switch script {
                case .respond(let text): context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
                case .close: context.close(promise: nil)
                case .reset:
                    let channel = context.channel
                    guard let options = channel as? any SocketOptionProvider else {
                        Issue.record("no socket options to reset with")
                        channel.close(promise: nil)
                        break
                    }
                    options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
                case .steps(let steps): play(steps[...], context: context)
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            counters.state.withLock { $0.closed += 1 }
        }

        private func play(_ steps: ArraySlice<Step>, context: ChannelHandlerContext) {
            guard let step = steps.first else { return }
            switch step {
            case .send(let text):
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
                play(steps.dropFirst(), context: context)
            case .close:
                context.close(promise: nil)
            case .wait(let ms):
                let rest = steps.dropFirst()
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .milliseconds(Int64(ms))) {
                    let (handler, context) = bound.value
                    handler.play(rest, context: context)
                }
            }
        }

        /// One whole request (head and Content-Length body) off the front of what was received.
        private func takeRequest() -> String? {
            let text = String(buffer: received)
            guard let headEnd = text.range(of: "\r\n\r\n") else { return nil }
            let head = text[..<headEnd.upperBound]
            var length = 0
            for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
            let total = head.utf8.count + length
            guard received.readableBytes >= total else { return nil }
            let request = received.readString(length: total) ?? ""
            received.discardReadBytes()
            return request
        }
    }
}

/// A test certificate authority and a server certificate for localhost and 127.0.0.1 it signed (valid 2020-2120).
enum TestTLS {
    static let authority = """
-----BEGIN CERTIFICATE-----
MIIBZTCCAQugAwIBAgIBATAKBggqhkjOPQQDAjAZMRcwFQYDVQQDDA5TbHVpY2Ug
VGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFowGTEXMBUG
A1UEAwwOU2x1aWNlIFRlc3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT1
OwnI17K0BmayXrYNz2rx6UQgwlgb4im2teOsovz5NngzLmnkdmFvldALLlLOT4BV
P2Pj8GuuSeqd2e3SF6yco0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQE
AwIBBjAdBgNVHQ4EFgQUtz29qLTLDj5o2HxG5aaVIPWD+68wCgYIKoZIzj0EAwID
SAAwRQIhAJ5dhvyh8rJloP0gC8SnJxDn56g/K9bMoq96cozOt4EsAiA6dWLhdepZ
T5sCfoF03I+ekbt1UQBwKHSSey4qleuSAA==
-----END CERTIFICATE-----
"""
    static let serverCertificate = """
-----BEGIN CERTIFICATE-----
MIIBfzCCASagAwIBAgIBAjAKBggqhkjOPQQDAjAZMRcwFQYDVQQDDA5TbHVpY2Ug
VGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFowFDESMBAG
A1UEAwwJbG9jYWxob3N0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEj4G9e2q
UGKxSinKWkP3G7FvevZS5z9PfHePEl5M3lnse4R1M5BHJmSlRA40+AvGho3GOOUD
h+fmUMZf96b57aNiMGAwGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMAwGA1Ud
EwEB/wQCMAAwEwYDVR0lBAwwCgYIKwYBBQUHAwEwHwYDVR0jBBgwFoAUtz29qLTL
Dj5o2HxG5aaVIPWD+68wCgYIKoZIzj0EAwIDRwAwRAIgB7GJ5GHpzmVp+W353St4
ad2T1GgofB2AxSD6mJDEah4CIAmTB9M7K3SauKSeFXlhuqUQ/brxNbC2/fhmggzk
Nz3a
-----END CERTIFICATE-----
"""
    static let serverKey = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjwTdnwfYV7ZU1TmQ
EVuh7u8RiuL4dnDySt1m8aewBAqhRANCAAQSPgb17apQYrFKKcpaQ/cbsW969lLn
P098d48SXkzeWex7hHUzkEcmZKVEDjT4C8aGjcY45QOH5+ZQxl/3pvnt
-----END PRIVATE KEY-----
"""
}
