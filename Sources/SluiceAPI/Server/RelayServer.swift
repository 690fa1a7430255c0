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
