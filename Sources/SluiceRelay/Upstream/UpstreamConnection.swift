import NIOCore
import NIOHTTP1
import NIOSSL

/// A connection to one upstream host, on one loop; it carries one exchange at a time (HTTP/1.1 keep-alive).
final class UpstreamConnection: @unchecked Sendable {
    let channel: any NIOCore.Channel
    let handler: UpstreamConnectionHandler
    let target: UpstreamTarget
    /// In the pool's idle list, since when.
    var idleSince: NIODeadline?

    init(channel: any NIOCore.Channel, handler: UpstreamConnectionHandler, target: UpstreamTarget) {
        self.channel = channel
        self.handler = handler
        self.target = target
    }

    func close() { channel.close(promise: nil) }
}

/// The end of an upstream connection's pipeline: writes the exchange's request, hands it the answer's parts, and
/// holds reads back while the exchange's caller has a lot unread.
final class UpstreamConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private var current: UpstreamExchange?
    private var context: ChannelHandlerContext?
    private var readPending = false
    /// Told when the channel closes (the pool drops the connection from its idle list).
    var onClose: (() -> Void)?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func send(_ exchange: UpstreamExchange) {
        guard let context, context.channel.isActive else { exchange.connectionClosed(); return }
        current = exchange
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        if exchange.body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(exchange.body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// The exchange failed on its own (timeout, caller gone): it no longer hears from this connection.
    func detach(_ exchange: UpstreamExchange) {
        if current === exchange { current = nil }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange = current else {
            // Bytes nobody asked for: the connection cannot be trusted with another request.
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head): exchange.receivedHead(head)
        case .body(let bytes): exchange.receivedBody(bytes)
        case .end:
            current = nil
            exchange.receivedEnd()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        onClose?()
        onClose = nil
        if let exchange = current {
            current = nil
            exchange.connectionClosed()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let exchange = current {
            current = nil
            // A reset is a close: a kept connection reset before any answer is retried like one closed.
            let failure = Self.describe(error)
            if failure == .closed { exchange.connectionClosed() } else { exchange.fail(failure) }
        }
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if let current, current.shouldPauseReading { readPending = true } else { context.read() }
    }

    /// The caller took what was unread: reading goes on if it was held back.
    func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    static func describe(_ error: any Error) -> UpstreamError {
        switch error {
        case let error as UpstreamError: return error
        case HTTPParserError.invalidEOFState: return .closed
        case is HTTPParserError: return .malformed("\(error)")
        case let error as NIOSSLError: return .connectFailed("TLS: \(error)")
        case let error as BoringSSLError: return .connectFailed("TLS: \(error)")
        case let error as NIOSSLExtraError: return .connectFailed("TLS: \(error)")
        case is IOError, ChannelError.eof, ChannelError.ioOnClosedChannel, ChannelError.outputClosed: return .closed
        default: return .malformed("\(error)")
        }
    }
}
