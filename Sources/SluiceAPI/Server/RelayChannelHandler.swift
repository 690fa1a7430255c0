import NIOCore
import NIOHTTP1
import ServiceLifecycle
import SluiceCore
import SluiceRelay
import Synchronization

/// What the connection-level relay path needs of the services.
struct RelayServer: Sendable {
    let engine: RelayEngine
    let metrics: SluiceMetrics
    let maxBodyBytes: Int
    let trustedProxies: IPAllowList
    let serverName: String
    /// The calls in progress, which a shutdown waits for.
    let calls = RelayCalls()

    init(services: Services, serverName: String) {
        engine = services.relay
        metrics = services.relay.metrics
        maxBodyBytes = services.config.maxBodyBytes
        trustedProxies = services.trustedProxies
        self.serverName = serverName
    }

    /// The relay endpoint a request target names: the path alone, as the router matches it (a query is ignored).
    static func endpoint(_ uri: String) -> RelayEndpoint? {
        guard let query = uri.utf8.firstIndex(of: UInt8(ascii: "?")) else { return RelayEndpoint(rawValue: uri) }
        return RelayEndpoint(rawValue: String(uri[..<query]))
    }
}

/// Counts the relay's tasks, so that a shutdown lets them settle before the ledger writes its last batch: a call whose
/// caller has gone still charges what it cost, and its connection no longer holds the server open.
final class RelayCalls: Sendable {
    private let state = Mutex<(running: Int, waiters: [CheckedContinuation<Void, Never>])>((0, []))

    func begin() {
        state.withLock { $0.running += 1 }
    }

    func end() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.running -= 1
            guard state.running == 0 else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once no call is running.
    func drained() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.running == 0 { return true }
                state.waiters.append(waiter)
                return false
            }
            if now { waiter.resume() }
        }
    }
}

/// On shutdown, after the server has stopped taking calls, waits for the relay's calls in progress to end.
struct RelayDrainService: Service {
    let calls: RelayCalls

    func run() async throws {
        try? await gracefulShutdown()
        await calls.drained()
    }
}

/// Answers `POST` to the relay endpoints on the connection itself; passes every other request on to Hummingbird.
///
/// It sits above NIO's pipelining handler, so it sees one request at a time and the next only once the answer to this
/// one has ended. A relay call's body is collected here (up to `SLUICE_MAX_BODY_BYTES`), the relay runs in a task,
/// and its answer is written back on the connection's loop: a whole answer in one flush, a stream event by event,
/// waiting while the connection cannot take more. Everything the relay decides (status, headers, body, billing) is
/// the same as through `RelayController`.
final class RelayChannelHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// A request for Hummingbird: its parts go on.
        case passing
        /// A relay call whose body is arriving.
        case collecting(endpoint: RelayEndpoint, head: HTTPRequestHead, body: ByteBuffer)
        /// Nothing more is answered on this connection: it closes after the answer written (a body over the limit, or
        /// `Connection: close`).
        case refused
        /// The relay has the call, or its answer is being written.
        case answering
    }

    private let server: RelayServer
    private var state = State.idle
    private var active = true
    /// The end of the caller's input, held while a call is answered (Hummingbird would close the connection on it).
    private var heldInputClosed = false
    /// A stream waiting for the connection to become writable.
    private var writableWaiter: CheckedContinuation<Void, any Error>?
    /// The isolation of this connection's relay tasks: its loop (made at the first call).
    private var isolation: LoopIsolation?
    /// The peer's address, and as the call log writes it.
    private var peer: (IPAddress?, String)?

    init(server: RelayServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .idle:
            guard case .head(let head) = part else {
                context.fireChannelRead(data)
                return
            }
            guard head.method == .POST, let endpoint = RelayServer.endpoint(head.uri) else {
                state = .passing
                context.fireChannelRead(data)
                return
            }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > server.maxBodyBytes {
                refuse(endpoint: endpoint, head: head, context: context)
                return
            }
            // curl asks before sending a body over 1 MiB (an image, a long context) and would wait a second for this.
            if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
            state = .collecting(endpoint: endpoint, head: head, body: context.channel.allocator.buffer(capacity: 0))
        case .passing:
            if case .end = part { state = .idle }
            context.fireChannelRead(data)
        case .collecting(let endpoint, let head, var body):
            switch part {
            case .head:
                // Cannot happen under the pipelining handler; a second head before an end is a broken peer.
                context.close(promise: nil)
            case .body(var chunk):
                state = .answering  // drops the state's reference, so the body grows in place
                guard body.readableBytes + chunk.readableBytes <= server.maxBodyBytes else {
                    refuse(endpoint: endpoint, head: head, context: context)
                    return
                }
                if body.readableBytes == 0 { body = chunk } else { body.writeBuffer(&chunk) }
                state = .collecting(endpoint: endpoint, head: head, body: body)
            case .end:
                state = .answering
                start(endpoint: endpoint, head: head, body: body, context: context)
            }
        case .refused, .answering:
            break
        }
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
        if case .answering = state, let event = event as? ChannelEvent, event == .inputClosed {
            heldInputClosed = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: - A call

    private func start(endpoint: RelayEndpoint, head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        let headers = head.headers
        let (peer, peerText) = peerAddress(context)
        let anthropic = RelayRequest.anthropicHeaderNames.compactMap { name in headers.first(name: name).map { (name, $0) } }
        let client = ClientAddress.resolve(peer: peer, forwardedFor: Self.joined(headers["x-forwarded-for"]), trustedProxies: server.trustedProxies)
        let request = RelayRequest(
            endpoint: endpoint,
            key: RelayController.key(authorization: headers.first(name: "authorization"), xApiKey: headers.first(name: "x-api-key")),
            clientIP: client, clientAddress: client == peer ? peerText : nil,
            body: body, requestId: RequestID.next(), anthropicHeaders: anthropic)
        let reply = Reply(handler: NIOLoopBound(self, eventLoop: context.eventLoop), context: context.loopBound,
                          endpoint: endpoint, version: head.version, keepAlive: head.isKeepAlive, requestId: request.requestId)
        let engine = server.engine
        let calls = server.calls
        let isolation = loopIsolation(context)
        calls.begin()
        // The explicit captures: Swift 6.3's region checker cannot follow the implicit ones of this closure.
        Task { [request, reply] in await RelayChannelHandler.relay(request, engine: engine, calls: calls, reply: reply, on: isolation) }
    }

    /// The connection's peer, read and written out at its first call.
    private func peerAddress(_ context: ChannelHandlerContext) -> (IPAddress?, String) {
        if let peer { return peer }
        let address = context.channel.remoteAddress?.ipAddress.flatMap(IPAddress.init)
        let made = (address, address?.description ?? "")
        peer = made
        return made
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

    /// A header's values as one, as HTTP joins repeated fields (nil when there are none).
    private static func joined(_ values: [String]) -> String? {
        values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// Where a call's answer goes, from any thread.
    struct Reply: Sendable {
        let handler: NIOLoopBound<RelayChannelHandler>
        let context: NIOLoopBound<ChannelHandlerContext>
        let endpoint: RelayEndpoint
        let version: HTTPVersion
        let keepAlive: Bool
        let requestId: String

        var eventLoop: any EventLoop { context.eventLoop }

        func onLoop(_ body: @escaping @Sendable (RelayChannelHandler, ChannelHandlerContext) -> Void) {
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
        switch response {
        case .complete(let status, let headers, let body):
            var fields = responseHeaders(headers, requestId: reply.requestId, keepAlive: reply.keepAlive)
            fields.add(name: "Content-Length", value: String(body.readableBytes))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: reply.version, status: .init(statusCode: status), headers: fields))),
                          promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            end(reply: reply, context: context)
        case .stream(let status, let headers, let stream):
            let fields = responseHeaders(headers, requestId: reply.requestId, keepAlive: reply.keepAlive)
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: reply.version, status: .init(statusCode: status),
                                                                          headers: fields))), promise: nil)
            // The pump runs in a task of its own: the relay's task has ended, and with it the memory its deepest call
            // needed; an open stream keeps only the pump's.
            let calls = server.calls
            let isolation = loopIsolation(context)
            Task { [reply] in await RelayChannelHandler.pump(stream, calls: calls, reply: reply, on: isolation) }
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
            if clientGone { context.close(promise: nil) } else { handler.end(reply: reply, context: context) }
        }
    }

    /// The relay's headers and those every answer here carries.
    private func responseHeaders(_ headers: [(String, String)], requestId: String, keepAlive: Bool) -> HTTPHeaders {
        var fields = HTTPHeaders()
        fields.reserveCapacity(headers.count + 5)
        for (name, value) in headers { fields.add(name: name, value: value) }
        fields.add(name: "X-Request-Id", value: requestId)
        fields.add(name: "Date", value: HTTPDate.now)
        fields.add(name: "Server", value: server.serverName)
        if !keepAlive { fields.add(name: "Connection", value: "close") }
        return fields
    }

    /// Ends the answer: the next request may come (the pipelining handler delivers it as the end is written), unless
    /// the connection closes after this answer, in which case nothing sent after it is answered.
    private func end(reply: Reply, context: ChannelHandlerContext) {
        state = reply.keepAlive ? .idle : .refused
        let held = heldInputClosed
        heldInputClosed = false
        guard reply.keepAlive, !held else {
            let bound = context.loopBound
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                let context = bound.value
                if reply.keepAlive { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) } else { context.close(promise: nil) }
            }
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func refuse(endpoint: RelayEndpoint, head: HTTPRequestHead, context: ChannelHandlerContext) {
        state = .refused
        let body = RelayErrorBody.render(.tooLarge(server.maxBodyBytes), format: endpoint.format)
        var fields = responseHeaders([("Content-Type", "application/json")], requestId: RequestID.next(), keepAlive: false)
        fields.add(name: "Content-Length", value: String(body.readableBytes))
        server.metrics.request(route: endpoint.rawValue, method: "POST", status: 413, duration: .zero)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .payloadTooLarge, headers: fields))),
                      promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let bound = context.loopBound
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }

    // MARK: - Streams

    /// Writes one piece of a stream; answers whether the connection can take more at once.
    private func write(_ buffer: ByteBuffer, context: ChannelHandlerContext) throws -> Bool {
        guard active else { throw ChannelError.ioOnClosedChannel }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
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
            let writable: Bool
            if reply.eventLoop.inEventLoop {
                writable = try reply.handler.value.write(buffer, context: reply.context.value)
            } else {
                writable = try await reply.eventLoop.submit { try reply.handler.value.write(buffer, context: reply.context.value) }.get()
            }
            if writable { return }
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
                reply.onLoop { handler, context in handler.waitUntilWritable(waiter, context: context) }
            }
        }
    }
}
