import AsyncHTTPClient
import NIOCore
import NIOPosix
import Synchronization

/// HTTP clients for upstream calls: no redirects, no decompression, a large connection pool per host, and the
/// channel's connect and idle (read) timeouts. Channels with the same timeouts share a client.
public final class UpstreamClients: Sendable {
    struct Key: Hashable { let connectMs: Int; let idleMs: Int }
    private let clients = Mutex<[Key: HTTPClient]>([:])

    public init() {}

    /// The client for these timeouts.
    func client(connectMs: Int, idleMs: Int) -> HTTPClient {
        let key = Key(connectMs: connectMs, idleMs: idleMs)
        return clients.withLock { clients in
            if let client = clients[key] { return client }
            var configuration = HTTPClient.Configuration(
                redirectConfiguration: .disallow,
                timeout: .init(connect: .milliseconds(Int64(connectMs)), read: .milliseconds(Int64(idleMs))),
                connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 16_384),
                decompression: .disabled
            )
            configuration.httpVersion = .automatic
            // A refused connection fails at once, so that the next channel is tried without waiting out the connect timeout.
            configuration.connectionPool.retryConnectionEstablishment = false
            let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
            clients[key] = client
            return client
        }
    }

    /// Closes every client.
    public func shutdown() async {
        let all = clients.withLock { clients -> [HTTPClient] in
            let all = Array(clients.values)
            clients.removeAll()
            return all
        }
        for client in all { try? await client.shutdown() }
    }
}
