import NIOCore
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

/// The end of an upstream connection's pipeline: writes the exchange's request as bytes, reads the answer from the
/// bytes that come (`UpstreamAnswerParser`) and hands the exchange its parts, and holds reads back while the exchange's
/// caller has a lot unread.
final class UpstreamConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var current: UpstreamExchange?
    private var parser = UpstreamAnswerParser(expectsBody: true)
    private var context: ChannelHandlerContext?
    private var readPending = false
    /// Told when the channel closes (the pool drops the connection from its idle list).
    var onClose: (() -> Void)?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func send(_ exchange: UpstreamExchange) {
        guard let context, context.channel.isActive else { exchange.connectionClosed(); return }
        current = exchange
        parser = UpstreamAnswerParser(expectsBody: exchange.request.expectsBody)
        if let body = exchange.request.body {
            context.write(wrapOutboundOut(exchange.request.head), promise: nil)
            context.writeAndFlush(wrapOutboundOut(body), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(exchange.request.head), promise: nil)
        }
    }

    /// The exchange failed on its own (timeout, caller gone): it no longer hears from this connection.
    func detach(_ exchange: UpstreamExchange) {
        if current === exchange { current = nil }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange = current, !parser.ended else {
            // Bytes nobody asked for: the connection cannot be trusted with another request.
            context.close(promise: nil)
            return
        }
        do {
            try parser.feed(unwrapInboundIn(data)) { event in deliver(event, to: exchange) }
        } catch {
            current = nil
            exchange.fail(error)
            context.close(promise: nil)
        }
    }

    private func deliver(_ event: UpstreamAnswerParser.Event, to exchange: UpstreamExchange) {
        switch event {
        case .head(let status, let headers): exchange.receivedHead(status: status, headers: headers)
        case .body(let bytes): exchange.receivedBody(bytes)
        case .end(let reusable):
            current = nil
            exchange.receivedEnd(reusable: reusable)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        onClose?()
        onClose = nil
        // An answer whose body runs until the close has ended.
        if let exchange = current, parser.closed({ deliver($0, to: exchange) }) { current = nil }
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
        case let error as NIOSSLError: return .connectFailed("TLS: \(error)")
        case let error as BoringSSLError: return .connectFailed("TLS: \(error)")
        case let error as NIOSSLExtraError: return .connectFailed("TLS: \(error)")
        case is IOError, ChannelError.eof, ChannelError.ioOnClosedChannel, ChannelError.outputClosed: return .closed
        default: return .malformed("\(error)")
        }
    }
}
