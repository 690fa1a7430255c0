import NIOCore

/// Keeps a connection reading while its caller waits for an answer, as long as the caller has sent little since the
/// last answer bytes went out.
///
/// NIO's pipelining handler holds back reads from the end of a request to the end of its answer. Holding back a read
/// is done by dropping the socket's read interest, and resuming by adding it again: two `epoll_ctl` system calls on
/// every call, although a caller that waits for its answer sends nothing in between. This handler, first in the
/// pipeline, asks for the next read itself at the end of each read, so the interest stays. Whatever a caller sends in
/// the meantime (a pipelined request) is still held by the pipelining handler until its turn.
///
/// The pipelining handler buffers what it holds, so the read-ahead is bounded: once `limit` bytes have come since the
/// last bytes written, it stops, and reads wait for the pipelining handler again until the next answer goes out. It
/// also stops for good when the server asks the connection to wind down, so that nothing new is read then.
final class ReadAheadHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Bytes read ahead at most since the last write.
    static let limit = 64 * 1024

    private var sinceWrite = 0
    private var quiescing = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        sinceWrite += unwrapInboundIn(data).readableBytes
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        if !quiescing, sinceWrite < Self.limit, context.channel.isActive { context.read() }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        sinceWrite = 0
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { quiescing = true }
        context.fireUserInboundEventTriggered(event)
    }
}
