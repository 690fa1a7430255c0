import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The HTTP/1.1 client for upstream calls. Each event loop has a pool of keep-alive connections of its own, and a call
/// made from a task running on a loop uses that loop's pool: the call's socket, its timer and the task that awaits it
/// share a thread. No redirects, no decompression; TLS by NIOSSL with the system's trust roots.
public final class UpstreamClient: Sendable {
    private let group: any EventLoopGroup
    private let pools: [ObjectIdentifier: UpstreamLoopPool]
    /// Parsed URLs: a gateway calls the same few over and over.
    private let targets = Mutex<[String: (UpstreamTarget, path: String)]>([:])

    /// - Parameter tlsConfiguration: for tests (a private trust root); the default trusts the system's roots.
    public init(group: MultiThreadedEventLoopGroup = .singleton, tlsConfiguration: TLSConfiguration? = nil) {
        var configuration = tlsConfiguration ?? .makeClientConfiguration()
        configuration.applicationProtocols = ["http/1.1"]
        let tls: Result<NIOSSLContext, UpstreamError>
        do { tls = .success(try NIOSSLContext(configuration: configuration)) } catch {
            tls = .failure(.connectFailed("TLS is unavailable: \(error)"))
        }
        self.group = group
        var pools: [ObjectIdentifier: UpstreamLoopPool] = [:]
        for loop in group.makeIterator() { pools[ObjectIdentifier(loop)] = UpstreamLoopPool(loop: loop, tls: tls) }
        self.pools = pools
    }

    /// Sends `request` and returns when the answer's head has come (within the first-byte timeout).
    nonisolated(nonsending) public func execute(_ request: UpstreamRequest, timeouts: UpstreamTimeouts) async throws -> UpstreamResponse {
        let (target, path) = try parsed(request.url)
        let bytes = try UpstreamRequestBytes.make(method: request.method, path: path, host: target.hostHeader,
                                                  headers: request.headers, body: request.body)
        let exchange = UpstreamExchange(pool: currentPool(), target: target, request: bytes, timeouts: timeouts)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                exchange.onLoop { exchange.begin(continuation) }
            }
        } onCancel: {
            exchange.onLoop { exchange.fail(.cancelled) }
        }
    }

    private func parsed(_ url: String) throws(UpstreamError) -> (UpstreamTarget, path: String) {
        if let known = targets.withLock({ $0[url] }) { return known }
        let parsed = try UpstreamTarget.parse(url)
        targets.withLock { targets in
            if targets.count >= 4096 { targets.removeAll(keepingCapacity: true) }
            targets[url] = parsed
        }
        return parsed
    }

    /// The pool of the loop this runs on, else the next loop's.
    private func currentPool() -> UpstreamLoopPool {
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop, let pool = pools[ObjectIdentifier(loop)] { return pool }
        return pools[ObjectIdentifier(group.next())]!
    }

    /// Connections kept idle, over every loop (for tests).
    public func idleConnections() async -> Int {
        var total = 0
        for pool in pools.values { total += (try? await pool.loop.submit { pool.idleCount }.get()) ?? 0 }
        return total
    }

    /// Closes the idle connections and refuses new calls; calls in flight finish.
    public func shutdown() async {
        for pool in pools.values { try? await pool.loop.submit { pool.shutdown() }.get() }
    }
}

/// One loop's connections: idle ones by target, newest last; opened on demand, closed after a minute unused.
final class UpstreamLoopPool: @unchecked Sendable {
    let loop: any EventLoop
    private let tls: Result<NIOSSLContext, UpstreamError>
    /// A class per target, so that taking and putting back a connection finds the list with one lookup and changes it
    /// in place: changing an array inside the dictionary goes through the dictionary's `_modify` accessor, whose
    /// frame is allocated, twice a call.
    private var idle: [UpstreamTarget: IdleConnections] = [:]
    private var sweep: Scheduled<Void>?
    private var closed = false
    /// Exchanges with a deadline (first byte, idle), checked every `deadlineTick` by one timer for the whole pool:
    /// a scheduled task per call, armed and cancelled, cost about 1% of the CPU under load.
    private var watched: [ObjectIdentifier: UpstreamExchange] = [:]
    private var deadlineCheck: Scheduled<Void>?
    /// How late a timeout may fire.
    static let deadlineTick = TimeAmount.milliseconds(25)

    static let idleTimeout = TimeAmount.seconds(60)
    static let maxIdlePerTarget = 1024

    init(loop: any EventLoop, tls: Result<NIOSSLContext, UpstreamError>) {
        self.loop = loop
        self.tls = tls
    }

    var idleCount: Int { idle.values.reduce(0) { $0 + $1.connections.count } }

    /// Sends the exchange on an idle connection to its target, else on a new one.
    func dispatch(_ exchange: UpstreamExchange) {
        if closed { exchange.fail(.shutDown); return }
        while let connection = idle[exchange.target]?.connections.popLast() {
            connection.idleSince = nil
            if connection.channel.isActive {
                exchange.send(on: connection, reused: true)
                return
            }
        }
        connect(exchange)
    }

    func connect(_ exchange: UpstreamExchange) {
        if closed { exchange.fail(.shutDown); return }
        let target = exchange.target
        let tls: NIOSSLContext?
        switch (target.tls, self.tls) {
        case (false, _): tls = nil
        case (true, .success(let context)): tls = context
        case (true, .failure(let error)): exchange.fail(error); return
        }
        ClientBootstrap(group: loop)
            .connectTimeout(exchange.timeouts.connect)
            .channelInitializer { channel in
                do {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls {
                        try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: target.hostIsAddress ? nil : target.host))
                    }
                    try pipeline.addHandler(UpstreamConnectionHandler())
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .connect(host: target.host, port: target.port)
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self) else {
                        channel.close(promise: nil)
                        exchange.fail(.connectFailed("the connection's pipeline is incomplete"))
                        return
                    }
                    let connection = UpstreamConnection(channel: channel, handler: handler, target: target)
                    handler.onClose = { [self, weak connection] in if let connection { forget(connection) } }
                    exchange.send(on: connection, reused: false)
                case .failure(let error):
                    exchange.fail(Self.connectError(error))
                }
            }
    }

    /// A connection whose exchange ended cleanly: kept for the next call to its target.
    func release(_ connection: UpstreamConnection) {
        guard !closed, connection.channel.isActive, (idle[connection.target]?.connections.count ?? 0) < Self.maxIdlePerTarget else {
            connection.close()
            return
        }
        connection.idleSince = .now()
        if let list = idle[connection.target] {
            list.connections.append(connection)
        } else {
            let list = IdleConnections()
            list.connections.append(connection)
            idle[connection.target] = list
        }
        if sweep == nil { scheduleSweep() }
    }

    /// Checks `exchange`'s deadline until `unwatch`.
    func watch(_ exchange: UpstreamExchange) {
        watched[ObjectIdentifier(exchange)] = exchange
        if deadlineCheck == nil { scheduleDeadlineCheck() }
    }

    func unwatch(_ exchange: UpstreamExchange) {
        watched[ObjectIdentifier(exchange)] = nil
    }

    private func scheduleDeadlineCheck() {
        deadlineCheck = loop.scheduleTask(in: Self.deadlineTick) { [self] in
            deadlineCheck = nil
            let now = NIODeadline.now()
            for exchange in watched.values.filter({ $0.deadline <= now }) { exchange.deadlinePassed(now: now) }
            if !watched.isEmpty { scheduleDeadlineCheck() }
        }
    }

    /// A connection closed: out of the idle list.
    private func forget(_ connection: UpstreamConnection) {
        guard connection.idleSince != nil else { return }
        connection.idleSince = nil
        idle[connection.target]?.connections.removeAll { $0 === connection }
    }

    private func scheduleSweep() {
        sweep = loop.scheduleTask(in: .seconds(10)) { [self] in
            sweep = nil
            let oldest = NIODeadline.now() - Self.idleTimeout
            var stale: [UpstreamConnection] = []
            for (target, list) in idle {
                let keep = list.connections.filter { ($0.idleSince ?? .distantFuture) > oldest }
                if keep.count != list.connections.count {
                    stale += list.connections.filter { ($0.idleSince ?? .distantFuture) <= oldest }
                    list.connections = keep
                }
                if keep.isEmpty { idle[target] = nil }
            }
            for connection in stale {
                connection.idleSince = nil
                connection.close()
            }
            if !idle.isEmpty { scheduleSweep() }
        }
    }

    func shutdown() {
        closed = true
        sweep?.cancel()
        sweep = nil
        let all = idle.values.flatMap(\.connections)
        idle.removeAll()
        for connection in all {
            connection.idleSince = nil
            connection.close()
        }
    }

    static func connectError(_ error: any Error) -> UpstreamError {
        if case ChannelError.connectTimeout = error { return .connectTimeout }
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first { return .connectFailed("\(first.error)") }
            if let dns = error.dnsAAAAError ?? error.dnsAError { return .connectFailed("cannot resolve \(error.host): \(dns)") }
        }
        return .connectFailed("\(error)")
    }
}

/// The idle connections of one target, newest last.
final class IdleConnections {
    var connections: [UpstreamConnection] = []
}
