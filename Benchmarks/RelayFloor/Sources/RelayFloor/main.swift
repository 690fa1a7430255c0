// relay-floor PORT UPSTREAM_PORT
//
// The least an HTTP/1.1 relay on SwiftNIO does: read a request, send it to the upstream over a kept connection on the
// same event loop, read the whole answer and send it back. No key, admission, billing, log row or JSON, and no
// Hummingbird. scripts/bench measures it beside Sluice in the same run, as the ceiling of what any relay on this stack
// reaches on the machine (docs/performance.md).
import NIOCore
import NIOHTTP1
import NIOPosix

let arguments = CommandLine.arguments
guard arguments.count == 3, let port = Int(arguments[1]), let upstreamPort = Int(arguments[2]) else {
    print("usage: relay-floor PORT UPSTREAM_PORT")
    exit(2)
}

/// Reads the upstream's answers and hands each, whole, to the caller's connection.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private var status = HTTPResponseStatus.ok
    private var body: ByteBuffer?
    var onAnswer: ((HTTPResponseStatus, ByteBuffer) -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
            body = nil
        case .body(var chunk):
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
        case .end:
            let answer = onAnswer
            onAnswer = nil
            answer?(status, body ?? ByteBuffer())
        }
    }
}

/// One caller's connection: each request goes to the upstream on a connection of its own, opened on first use.
final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private let upstreamPort: Int
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var upstream: (channel: any Channel, handler: UpstreamHandler)?

    init(upstreamPort: Int) {
        self.upstreamPort = upstreamPort
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = nil
        case .body(var chunk):
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
        case .end:
            forward(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.channel.close(promise: nil)
        context.fireChannelInactive()
    }

    private func forward(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        if let upstream {
            send(on: upstream.channel, handler: upstream.handler, context: context)
            return
        }
        let handler = UpstreamHandler()
        let loopHandler = NIOLoopBound(handler, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(loopHandler.value)
                }
            }
            .connect(host: "127.0.0.1", port: upstreamPort)
            .whenComplete { result in
                let (relay, context) = bound.value
                switch result {
                case .success(let channel):
                    relay.upstream = (channel, loopHandler.value)
                    relay.send(on: channel, handler: loopHandler.value, context: context)
                case .failure:
                    relay.answer(status: .badGateway, body: ByteBuffer(), context: context)
                }
            }
    }

    private func send(on channel: any Channel, handler: UpstreamHandler, context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        handler.onAnswer = { status, body in
            let (relay, context) = bound.value
            relay.answer(status: status, body: body, context: context)
        }
        let body = self.body ?? ByteBuffer()
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "127.0.0.1")
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        let uri = head?.uri ?? "/"
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: uri, headers: headers)),
                      promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    private func answer(status: HTTPResponseStatus, body: ByteBuffer, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    .serverChannelOption(ChannelOptions.backlog, value: 256)
    .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(RelayHandler(upstreamPort: upstreamPort))
        }
    }
    .bind(host: "127.0.0.1", port: port).get()
print("relay-floor listening on 127.0.0.1:\(port), upstream 127.0.0.1:\(upstreamPort)")
try await server.closeFuture.get()
