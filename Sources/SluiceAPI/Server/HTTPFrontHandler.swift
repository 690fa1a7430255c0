import NIOCore
import NIOHTTP1
import SluiceCore
import SluiceRelay

/// A connection's HTTP/1.1, read and written by hand: answers `POST` to the relay endpoints itself, and hands every
/// other request to Hummingbird as NIO's request parts.
///
/// - **Requests** are read from the socket's bytes by `HTTPRequestReader`, one at a time and in order: the next is
///   read only once the answer to the one before has ended. What a caller pipelines waits as bytes (reading pauses
///   beyond 64 KiB of them).
/// - **A relay call** has its body collected here (up to `SLUICE_MAX_BODY_BYTES`); the relay runs in a task on the
///   connection's loop, and its answer is written here as bytes: a whole answer in one flush, a stream as chunks,
///   waiting while the connection cannot take more. Everything the relay decides (status, headers, body, billing) is
///   the same as through `RelayController`.
/// - **Any other request** goes up as `HTTPServerRequestPart`s; Hummingbird's answer comes down through NIO's response
///   encoder above this handler, and `AnswerEndTap` reports its end.
/// - **Closing**: a request with `Connection: close` (or HTTP/1.0 without keep-alive) is the last one read. A caller's
///   half-close is passed on once every request before it is answered. When the server winds down, the connection
///   closes after the answer in progress.
/// - **A request that cannot be read** (not HTTP/1.x, a head over 64 KiB, both `Content-Length` and
///   `Transfer-Encoding`) gets a 400 (431, 501 or 505) and the connection closes.
final class HTTPFrontHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private enum State {
        /// Between requests.
        case idle
        /// A request handed to Hummingbird: its parts go up until its end; the next request waits for its answer's
        /// end too.
        case passing(requestEnded: Bool, answerEnded: Bool, keepAlive: Bool)
        /// A relay call whose body is arriving.
        case collecting(endpoint: RelayEndpoint, head: RequestHead, body: ByteBuffer)
        /// The relay has the call, or its answer is being written.
        case answering
        /// Nothing more is read or answered: the connection closes after what is being written.
        case closing
    }

    /// Unread bytes held at most before reading pauses.
    static let heldLimit = 64 * 1024

    private let server: RelayServer
    private var state = State.idle
    private var reader = HTTPRequestReader()
    /// Bytes received and not read as requests yet.
    private var pending: ByteBuffer?
    /// A read asked from above and held back while too many bytes wait.
    private var readHeld = false
    /// The caller closed its side; passed on once every request before it is answered.
    private var inputClosed = false
    private var inputClosedPassed = false
    private var quiescing = false
    private var active = true
    private var context: ChannelHandlerContext?
    /// A stream waiting for the connection to become writable.
    private var writableWaiter: CheckedContinuation<Void, any Error>?
    /// The isolation of this connection's relay tasks: its loop (made at the first call).
    private var isolation: LoopIsolation?
    /// The peer's address, and as the call log writes it.
    private var peer: (IPAddress?, String)?
    /// The key of the connection's last call and its lookup digest: a client sends the same key on every call of a
    /// connection, and its HMAC is then computed once.
    private var lastKey: (key: String, digest: KeyDigest)?

    init(server: RelayServer) {
        self.server = server
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    // MARK: - Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if case .closing = state { return }
        if pending == nil || pending!.readableBytes == 0 { pending = bytes } else { pending!.writeImmutableBuffer(bytes) }
        process(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {}

    /// Reads what the state allows: the next request when idle, the body of the current one.
    private func process(context: ChannelHandlerContext) {
        var fired = false
        defer {
            if fired { context.fireChannelReadComplete() }
            if readHeld, (pending?.readableBytes ?? 0) < Self.heldLimit, !isClosing {
                readHeld = false
                context.read()
            }
        }
        while true {
            do {
                switch state {
                case .idle:
                    if quiescing { closeNow(context: context); return }
                    guard var bytes = pending, bytes.readableBytes > 0 else {
                        if inputClosed, !inputClosedPassed {
                            inputClosedPassed = true
                            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
                        }
                        return
                    }
                    let part = try reader.next(&bytes)
                    pending = bytes
                    guard case .head(let head) = part else {
                        // Half a request, and the caller will send no more.
                        if inputClosed { closeNow(context: context) }
                        return
                    }
                    begin(head, context: context, fired: &fired)
                case .collecting(let endpoint, let head, var body):
                    guard var bytes = pending, let part = try reader.next(&bytes) else {
                        if inputClosed { closeNow(context: context) }
                        return
                    }
                    pending = bytes
                    switch part {
                    case .head: return
                    case .body(let chunk):
                        state = .answering  // drops the state's reference, so the body grows in place
                        guard body.readableBytes + chunk.readableBytes <= server.maxBodyBytes else {
                            refuse(endpoint: endpoint, head: head, context: context)
                            return
                        }
                        if body.readableBytes == 0 { body = chunk } else { body.writeImmutableBuffer(chunk) }
                        state = .collecting(endpoint: endpoint, head: head, body: body)
                    case .end:
                        state = .answering
                        start(endpoint: endpoint, head: head, body: body, context: context)
                    }
                case .passing(false, let answerEnded, let keepAlive):
                    guard var bytes = pending, let part = try reader.next(&bytes) else { return }
                    pending = bytes
                    switch part {
                    case .head: return
                    case .body(let chunk):
                        context.fireChannelRead(wrapInboundOut(.body(chunk)))
                    case .end:
                        context.fireChannelRead(wrapInboundOut(.end(nil)))
                        state = answerEnded ? (keepAlive ? .idle : .closing) : .passing(requestEnded: true, answerEnded: false, keepAlive: keepAlive)
                    }
                    fired = true
                case .passing(true, _, _), .answering, .closing:
                    return
                }
            } catch {
                unreadable(error, context: context)
                return
            }
        }
    }

    private var isClosing: Bool { if case .closing = state { return true } else { return false } }

    /// A request's head: a relay call stays here, anything else goes up.
    private func begin(_ head: RequestHead, context: ChannelHandlerContext, fired: inout Bool) {
        if head.method == .POST, let endpoint = RelayServer.endpoint(head.uri) {
            if let length = head.length, length > server.maxBodyBytes {
                refuse(endpoint: endpoint, head: head, context: context)
                return
            }
            // curl asks before sending a body over 1 MiB (an image, a long context) and would wait a second for this.
            if head.expectContinue { writeContinue(context: context) }
            state = .collecting(endpoint: endpoint, head: head, body: context.channel.allocator.buffer(capacity: 0))
            return
        }
        if head.expectContinue { writeContinue(context: context) }
        state = .passing(requestEnded: false, answerEnded: false, keepAlive: head.keepAlive)
        context.fireChannelRead(wrapInboundOut(.head(head.nio)))
        fired = true
    }

    /// Hummingbird's answer to the request passed up has ended (`AnswerEndTap`).
    func answerEnded() {
        guard let context, case .passing(let requestEnded, _, let keepAlive) = state else { return }
        if requestEnded {
            state = keepAlive ? .idle : .closing
            process(context: context)
        } else {
            state = .passing(requestEnded: false, answerEnded: true, keepAlive: keepAlive)
        }
    }

    /// A request that cannot be read: its status and reason, then the connection closes. Mid-way through a request
    /// handed to Hummingbird, the connection just closes.
    private func unreadable(_ error: HTTPRequestReader.Failure, context: ChannelHandlerContext) {
        pending = nil
        switch state {
        case .idle, .collecting:
            state = .closing
            let body = RelayErrorBody.render(RelayError(status: Int(error.status.code), code: "invalid_request_error", type: "invalid_request_error",
                                                        message: error.why), format: .openai)
            var bytes = answerHead(status: Int(error.status.code), headers: [("Content-Type", "application/json")], requestId: RequestID.next(),
                                   version: .http1_1, keepAlive: false, framing: .length(body.readableBytes), capacity: body.readableBytes)
            bytes.writeImmutableBuffer(body)
            let bound = context.loopBound
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(bytes))).whenComplete { _ in bound.value.close(promise: nil) }
        case .passing, .answering, .closing:
            closeNow(context: context)
        }
    }

    private func closeNow(context: ChannelHandlerContext) {
        state = .closing
        pending = nil
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if isClosing { return }
        if (pending?.readableBytes ?? 0) >= Self.heldLimit { readHeld = true } else { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        writableWaiter?.resume(throwing: ChannelError.ioOnClosedChannel)
        writableWaiter = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let waiter = writableWaiter {
            writableWaiter = nil
            waiter.resume()
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // Passed on in turn: after the requests before it are answered (Hummingbird closes the connection on it).
            inputClosed = true
            if case .passing = state { inputClosedPassed = true; context.fireUserInboundEventTriggered(event); return }
            process(context: context)
            return
        }
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            switch state {
            case .idle: closeNow(context: context)
            case .passing: context.fireUserInboundEventTriggered(event)  // Hummingbird closes after its answer
            case .collecting, .answering, .closing: break  // a relay answer in progress closes the connection at its end
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: - A call

    private func start(endpoint: RelayEndpoint, head: RequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        let fields = RelayFields(head.headers, lastKey: lastKey?.key)
        let (peer, peerText) = peerAddress(context)
        let client = ClientAddress.resolve(peer: peer, forwardedFor: fields.forwardedFor, trustedProxies: server.trustedProxies)
        let key = fields.key
        let request = RelayRequest(
            endpoint: endpoint, key: key,
            clientIP: client, clientAddress: client == peer ? peerText : nil,
            body: body, requestId: RequestID.next(), anthropicHeaders: fields.anthropic, keyDigest: key.map(keyDigest))
        let reply = Reply(handler: NIOLoopBound(self, eventLoop: context.eventLoop), context: context.loopBound,
                          endpoint: endpoint, version: head.version, keepAlive: head.keepAlive, requestId: request.requestId)
        let engine = server.engine
        let calls = server.calls
        let isolation = loopIsolation(context)
        calls.begin()
        // The explicit captures: Swift 6.3's region checker cannot follow the implicit ones of this closure.
        Task { [request, reply] in await HTTPFrontHandler.relay(request, engine: engine, calls: calls, reply: reply, on: isolation) }
    }

    /// The connection's peer, read and written out at its first call.
    private func peerAddress(_ context: ChannelHandlerContext) -> (IPAddress?, String) {
        if let peer { return peer }
        let address = context.channel.remoteAddress?.ipAddress.flatMap(IPAddress.init)
        let made = (address, address?.description ?? "")
        peer = made
        return made
    }

    private func keyDigest(_ key: String) -> KeyDigest {
        if let lastKey, lastKey.key == key { return lastKey.digest }
        let digest = server.engine.keyDigest(key)
        lastKey = (key, digest)
        return digest
    }

    private func loopIsolation(_ context: ChannelHandlerContext) -> LoopIsolation {
        if let isolation { return isolation }
        let made = LoopIsolation(loop: context.eventLoop)
        isolation = made
        return made
    }

    /// A call's task, on the loop of its connection: relays, then answers.
    private static func relay(_ request: RelayRequest, engine: RelayEngine, calls: RelayCalls, reply: Reply,
                              on isolation: isolated LoopIsolation) async {
        defer { calls.end() }
        let started = ContinuousClock.now
        let response = await engine.handle(request)
        // A stream's pump is counted from here, before this task's count ends.
        if case .stream = response { calls.begin() }
        reply.onLoop { handler, context in handler.answer(response, reply: reply, started: started, context: context) }
    }

    /// Where a call's answer goes, from any thread.
    struct Reply: Sendable {
        let handler: NIOLoopBound<HTTPFrontHandler>
        let context: NIOLoopBound<ChannelHandlerContext>
        let endpoint: RelayEndpoint
        let version: HTTPVersion
        /// Whether the connection carries another request after this answer.
        var keepAlive: Bool
        let requestId: String

        var eventLoop: any EventLoop { context.eventLoop }

        func onLoop(_ body: @escaping @Sendable (HTTPFrontHandler, ChannelHandlerContext) -> Void) {
            if eventLoop.inEventLoop {
                body(handler.value, context.value)
            } else {
                eventLoop.execute { body(handler.value, context.value) }
            }
        }
    }

    private func answer(_ response: RelayResponse, reply: Reply, started: ContinuousClock.Instant, context: ChannelHandlerContext) {
        switch response {
        case .complete(let status, _, _), .stream(let status, _, _):
            server.metrics.request(route: reply.endpoint.rawValue, method: "POST", status: status, duration: .now - started)
        }
        var reply = reply
        // A connection winding down says so in the answer, and closes after it.
        reply.keepAlive = reply.keepAlive && !quiescing
        let keepAlive = reply.keepAlive
        switch response {
        case .complete(let status, let headers, let body):
            let copied = body.readableBytes <= HTTPBytes.copiedBody
            var bytes = answerHead(status: status, headers: headers, requestId: reply.requestId, version: reply.version,
                                   keepAlive: keepAlive, framing: .length(body.readableBytes), capacity: copied ? body.readableBytes : 0)
            if copied {
                bytes.writeImmutableBuffer(body)
                end(reply: reply, keepAlive: keepAlive, last: bytes, context: context)
            } else {
                context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: nil)
                end(reply: reply, keepAlive: keepAlive, last: body, context: context)
            }
        case .stream(let status, let headers, let stream):
            // HTTP/1.0 has no chunks: the stream's end is the connection's.
            let chunked = reply.version == .http1_1
            reply.keepAlive = keepAlive && chunked
            let bytes = answerHead(status: status, headers: headers, requestId: reply.requestId, version: reply.version,
                                   keepAlive: reply.keepAlive, framing: chunked ? .chunked : .untilClose, capacity: 0)
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(bytes)), promise: nil)
            // The pump runs in a task of its own: the relay's task has ended, and with it the memory its deepest call
            // needed; an open stream keeps only the pump's.
            let calls = server.calls
            let isolation = loopIsolation(context)
            Task { [reply] in await HTTPFrontHandler.pump(stream, calls: calls, reply: reply, on: isolation) }
        }
    }

    /// A stream's task, on the loop of its connection: copies the stream, then ends the answer (or closes the
    /// connection of a caller who left).
    private static func pump(_ stream: StreamRelay, calls: RelayCalls, reply: Reply, on isolation: isolated LoopIsolation) async {
        defer { calls.end() }
        var writer = Writer(reply: reply)
        let clientGone: Bool
        do {
            try await stream.pump(&writer)
            clientGone = false
        } catch {
            clientGone = true
        }
        reply.onLoop { handler, context in
            if clientGone {
                handler.closeNow(context: context)
            } else {
                let last = reply.version == .http1_1 ? ByteBuffer(staticString: "0\r\n\r\n") : ByteBuffer()
                handler.end(reply: reply, keepAlive: reply.keepAlive, last: last, context: context)
            }
        }
    }

    private enum Framing {
        case length(Int)
        case chunked
        case untilClose
    }

    /// The status line and headers of an answer written here: the relay's headers and those every answer carries.
    private func answerHead(status: Int, headers: [(String, String)], requestId: String, version: HTTPVersion, keepAlive: Bool,
                            framing: Framing, capacity: Int) -> ByteBuffer {
        var bytes = context?.channel.allocator.buffer(capacity: 256 + capacity) ?? ByteBuffer()
        bytes.writeStaticString(version == .http1_0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        bytes.writeString(String(status))
        bytes.writeInteger(UInt8(ascii: " "))
        bytes.writeString(HTTPResponseStatus(statusCode: status).reasonPhrase)
        for (name, value) in headers { HTTPBytes.writeField(&bytes, name, value) }
        HTTPBytes.writeField(&bytes, "X-Request-Id", requestId)
        HTTPBytes.writeField(&bytes, "Date", HTTPDate.now)
        HTTPBytes.writeField(&bytes, "Server", server.serverName)
        if !keepAlive { HTTPBytes.writeField(&bytes, "Connection", "close") }
        switch framing {
        case .length(let length): HTTPBytes.writeField(&bytes, "Content-Length", String(length))
        case .chunked: HTTPBytes.writeField(&bytes, "Transfer-Encoding", "chunked")
        case .untilClose: break
        }
        bytes.writeStaticString("\r\n\r\n")
        return bytes
    }

    private func writeContinue(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n"))), promise: nil)
    }

    /// Ends the answer with `last`: the next request is read, unless the connection closes after this answer, in
    /// which case nothing sent after it is answered.
    private func end(reply: Reply, keepAlive: Bool, last: ByteBuffer, context: ChannelHandlerContext) {
        guard keepAlive else {
            state = .closing
            pending = nil
            let bound = context.loopBound
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(last))).whenComplete { _ in bound.value.close(promise: nil) }
            return
        }
        state = .idle
        if inputClosed, (pending?.readableBytes ?? 0) == 0 {
            // The caller has gone quiet for good: its answer is out before the connection is let go.
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(last))).whenComplete { _ in
                let (handler, context) = bound.value
                handler.process(context: context)
            }
            return
        }
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(last)), promise: nil)
        process(context: context)
    }

    private func refuse(endpoint: RelayEndpoint, head: RequestHead, context: ChannelHandlerContext) {
        state = .closing
        pending = nil
        let body = RelayErrorBody.render(.tooLarge(server.maxBodyBytes), format: endpoint.format)
        var bytes = answerHead(status: 413, headers: [("Content-Type", "application/json")], requestId: RequestID.next(), version: head.version,
                               keepAlive: false, framing: .length(body.readableBytes), capacity: body.readableBytes)
        bytes.writeImmutableBuffer(body)
        server.metrics.request(route: endpoint.rawValue, method: "POST", status: 413, duration: .zero)
        let bound = context.loopBound
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(bytes))).whenComplete { _ in bound.value.close(promise: nil) }
    }

    // MARK: - Streams

    /// Writes one piece of a stream (a chunk, on HTTP/1.1); answers whether the connection can take more at once.
    private func write(_ buffer: ByteBuffer, chunked: Bool, context: ChannelHandlerContext) throws -> Bool {
        guard active else { throw ChannelError.ioOnClosedChannel }
        guard buffer.readableBytes > 0 else { return context.channel.isWritable }
        if chunked {
            var chunk = context.channel.allocator.buffer(capacity: buffer.readableBytes + 12)
            chunk.writeString(String(buffer.readableBytes, radix: 16))
            chunk.writeStaticString("\r\n")
            chunk.writeImmutableBuffer(buffer)
            chunk.writeStaticString("\r\n")
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(chunk)), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
        }
        return context.channel.isWritable
    }

    private func waitUntilWritable(_ waiter: CheckedContinuation<Void, any Error>, context: ChannelHandlerContext) {
        if !active {
            waiter.resume(throwing: ChannelError.ioOnClosedChannel)
        } else if context.channel.isWritable {
            waiter.resume()
        } else {
            writableWaiter = waiter
        }
    }

    /// A stream's way to the caller.
    struct Writer: StreamWriter {
        let reply: Reply

        nonisolated(nonsending) mutating func write(_ buffer: ByteBuffer) async throws {
            let reply = reply
            let chunked = reply.version == .http1_1
            let writable: Bool
            if reply.eventLoop.inEventLoop {
                writable = try reply.handler.value.write(buffer, chunked: chunked, context: reply.context.value)
            } else {
                writable = try await reply.eventLoop.submit { try reply.handler.value.write(buffer, chunked: chunked, context: reply.context.value) }.get()
            }
            if writable { return }
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
                reply.onLoop { handler, context in handler.waitUntilWritable(waiter, context: context) }
            }
        }
    }
}

/// The headers a relay call reads, found in one pass over the request's header lines.
struct RelayFields {
    /// The key of `Authorization: Bearer`, else of `x-api-key`, read as `RelayController.key` reads them.
    var key: String?
    /// Every `X-Forwarded-For`, joined as HTTP joins repeated fields.
    var forwardedFor: String?
    /// The first value of each of `RelayRequest.anthropicHeaderNames` given, in that order.
    var anthropic: [(String, String)] = []

    /// - Parameter lastKey: the key of the connection's last call: the same key read again is that string, not a copy.
    init(_ headers: HTTPHeaderLines, lastKey: String? = nil) {
        var sawAuthorization = false, sawAPIKey = false
        var bearer: String?, apiKey: String?
        var version: String?, beta: String?
        headers.each { name, value in
            func text() -> String { String(decoding: value, as: UTF8.self) }
            switch name.count {
            case 13 where !sawAuthorization && HTTPBytes.equalIgnoringCase(name, "authorization"):
                sawAuthorization = true
                bearer = RelayController.bearer(value).map { Self.key($0, last: lastKey) }
            case 9 where !sawAPIKey && HTTPBytes.equalIgnoringCase(name, "x-api-key"):
                sawAPIKey = true
                apiKey = Self.key(RelayController.trimmed(value), last: lastKey)
            case 15 where HTTPBytes.equalIgnoringCase(name, "x-forwarded-for"):
                forwardedFor = forwardedFor.map { $0 + ", " + text() } ?? text()
            case 17 where version == nil && HTTPBytes.equalIgnoringCase(name, "anthropic-version"): version = text()
            case 14 where beta == nil && HTTPBytes.equalIgnoringCase(name, "anthropic-beta"): beta = text()
            default: break
            }
        }
        key = bearer ?? apiKey
        if let version { anthropic.append(("anthropic-version", version)) }
        if let beta { anthropic.append(("anthropic-beta", beta)) }
    }

    /// The key in `bytes`: `last` itself when they spell it.
    private static func key(_ bytes: Slice<UnsafeRawBufferPointer>, last: String?) -> String {
        if let last, last.utf8.elementsEqual(bytes) { return last }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Sits above NIO's response encoder and tells the front handler when an answer of Hummingbird's has ended.
final class AnswerEndTap: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let front: HTTPFrontHandler

    init(front: HTTPFrontHandler) { self.front = front }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let ended: Bool
        if case .end = unwrapOutboundIn(data) { ended = true } else { ended = false }
        context.write(data, promise: promise)
        if ended { front.answerEnded() }
    }
}
