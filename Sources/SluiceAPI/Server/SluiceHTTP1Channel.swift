import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Sluice's HTTP/1.1 connection: Hummingbird's, with the relay's calls taken off below it.
///
/// The pipeline, from the socket up:
/// 1. `ReadAheadHandler`: keeps the socket's read interest while an answer is written (a bounded read-ahead);
/// 2. `HTTPFrontHandler`: reads the requests from the bytes, one at a time and in order. `POST` to the four relay
///    endpoints is answered there (the relay runs in a task of its own, on the connection's event loop) and written as
///    bytes; every other request goes on up as NIO's request parts;
/// 3. NIO's response encoder, for Hummingbird's answers, and `AnswerEndTap`, which tells the front handler when one
///    has ended (the next request is read then);
/// 4. Hummingbird's own handlers and its per-connection task: the router, middleware, the management API, the
///    console, `/v1/models` and the rest.
///
/// Hummingbird would cost a relayed call its request and response conversions, its async bridges and a router walk,
/// and NIO's HTTP codec and pipelining handler about a tenth of the CPU (docs/performance.md). Tests that drive the
/// router directly (`.router`) reach the same relay through `RelayController`.
struct SluiceHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let relay: RelayServer

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            let front = HTTPFrontHandler(server: relay)
            try pipeline.addHandler(ReadAheadHandler())
            try pipeline.addHandler(front)
            try pipeline.addHandler(HTTPResponseEncoder())
            try pipeline.addHandler(AnswerEndTap(front: front))
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel,
                                       configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// Sluice's HTTP/1.1 server: `SluiceHTTP1Channel`.
    static func sluice(relay: RelayServer) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in SluiceHTTP1Channel(responder: responder, relay: relay) }
    }
}
