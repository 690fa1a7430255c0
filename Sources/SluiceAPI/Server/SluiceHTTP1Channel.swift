import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Sluice's HTTP/1.1 connection: Hummingbird's, with the relay's calls taken off below it.
///
/// The pipeline, from the socket up:
/// 0. `ReadAheadHandler`: keeps the socket's read interest while an answer is written (a bounded read-ahead);
/// 1. NIO's HTTP/1 decoder and encoder, and its pipelining handler: one request at a time reaches the handlers above,
///    the next only after the answer to the one before has ended, and a graceful shutdown closes each connection
///    after the answer in progress (adding `Connection: close` to it);
/// 2. `RelayChannelHandler`: `POST` to the four relay endpoints is answered here (the relay runs in a task of its
///    own, on the connection's event loop); every other request goes on;
/// 3. Hummingbird's own handlers and its per-connection task: the router, middleware, the management API, the
///    console, `/v1/models` and the rest.
///
/// Hummingbird costs a relayed call its request and response conversions, its async bridges and a router walk: about
/// a quarter of the server's time on a relayed call (docs/performance.md). Tests that drive the router directly
/// (`.router`) reach the same relay through `RelayController`.
struct SluiceHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let relay: RelayServer

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(ReadAheadHandler())
            try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: false,
                                                     withOutboundHeaderValidation: false)
            try pipeline.addHandler(RelayChannelHandler(server: relay))
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
