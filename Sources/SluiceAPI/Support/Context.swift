import Hummingbird
import Logging
import NIOCore
import SluiceCore

/// The request context of every route: the peer address and a request id.
public struct SluiceRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The socket peer.
    public let remoteAddress: SocketAddress?
    /// Identifies the request in logs and in the `X-Request-Id` answer header.
    public var requestId: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        requestId = RequestID.next()
        // Every log line of the request carries the id its answer echoes in X-Request-Id.
        logger[metadataKey: "request_id"] = .string(requestId)
    }

    /// The peer as an IP address.
    public var peerIP: IPAddress? {
        guard let text = remoteAddress?.ipAddress else { return nil }
        return IPAddress(text)
    }
}
