import NIOCore

/// One request and its answer. Everything here runs on `pool.loop`, the loop of the connection that carries it, and
/// callers elsewhere hop there (`onLoop`): the caller's task, the connection and the timer then share one thread, and
/// a call costs no cross-thread wake-up when the caller already runs on that loop.
final class UpstreamExchange: @unchecked Sendable {
    enum State { case starting, waitingHead, body, ended, failed(UpstreamError) }

    let pool: UpstreamLoopPool
    let target: UpstreamTarget
    let request: UpstreamRequestBytes
    let timeouts: UpstreamTimeouts
    var loop: any EventLoop { pool.loop }

    private(set) var state = State.starting
    private var connection: UpstreamConnection?
    private var reused = false
    private var retried = false
    private var headWaiter: CheckedContinuation<UpstreamResponse, any Error>?
    private var bodyWaiter: CheckedContinuation<ByteBuffer?, any Error>?
    private var wholeWaiter: (limit: Int, continuation: CheckedContinuation<ByteBuffer, any Error>)?
    /// Body bytes received and not yet taken by the caller.
    private var unread: ByteBuffer?
    /// The next deadline: the first byte's while waiting for the head, the idle check's after. The pool's deadline
    /// check looks at it while the exchange is watched.
    private(set) var deadline = NIODeadline.distantFuture
    private var watched = false
    private var firstByteDeadline = NIODeadline.distantFuture
    private var lastActivity = NIODeadline.uptimeNanoseconds(0)

    /// A stream whose caller has this much unread stops reading from the upstream until the caller catches up.
    static let pauseBytes = 1 << 20

    init(pool: UpstreamLoopPool, target: UpstreamTarget, request: UpstreamRequestBytes, timeouts: UpstreamTimeouts) {
        self.pool = pool
        self.target = target
        self.request = request
        self.timeouts = timeouts
    }

    /// Runs `body` on the exchange's loop: at once when already there.
    @inline(__always)
    func onLoop(_ body: @escaping @Sendable () -> Void) {
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    // MARK: the request

    func begin(_ continuation: CheckedContinuation<UpstreamResponse, any Error>) {
        if case .failed(let error) = state { continuation.resume(throwing: error); return }
        headWaiter = continuation
        pool.dispatch(self)
    }

    /// A connection is ready: the request goes out on it. One given up in the meantime returns the connection unused.
    func send(on connection: UpstreamConnection, reused: Bool) {
        guard case .starting = state else { pool.release(connection); return }
        self.connection = connection
        self.reused = reused
        state = .waitingHead
        let now = NIODeadline.now()
        firstByteDeadline = now + timeouts.firstByte
        arm(at: min(firstByteDeadline, now + timeouts.idle))
        connection.handler.send(self)
    }

    // MARK: what the connection reports

    func receivedHead(status: Int, headers: HTTPHeaderLines) {
        guard case .waitingHead = state else { return }
        state = .body
        lastActivity = .now()
        let waiter = headWaiter
        headWaiter = nil
        waiter?.resume(returning: UpstreamResponse(status: status, headers: headers, body: UpstreamBody(self)))
    }

    func receivedBody(_ bytes: ByteBuffer) {
        guard case .body = state else { return }
        lastActivity = .now()
        if unread == nil { unread = bytes } else { unread!.writeImmutableBuffer(bytes) }
        if let whole = wholeWaiter, unread!.readableBytes > whole.limit { fail(.tooLarge(limit: whole.limit)); return }
        wakeWaiter()
    }

    /// The answer is complete: the connection goes back to the pool (or is closed when it cannot carry another
    /// request), then the caller gets the rest.
    func receivedEnd(reusable: Bool) {
        guard case .body = state else { return }
        state = .ended
        cancelTimer()
        if let connection {
            self.connection = nil
            if reusable { pool.release(connection) } else { connection.close() }
        }
        wakeWaiter()
    }

    /// Hands a waiting caller what is ready for it: the next piece or the end, or the whole body once it has ended.
    private func wakeWaiter() {
        if let whole = wholeWaiter {
            guard let ready = takeWhole(limit: whole.limit) else { return }
            wholeWaiter = nil
            whole.continuation.resume(with: ready)
        } else if let waiter = bodyWaiter, let ready = takeNext() {
            bodyWaiter = nil
            waiter.resume(with: ready)
        }
    }

    /// The connection closed under the exchange. A reused connection that closes before any answer was most likely
    /// closed by the upstream while it sat idle, before it read the request: the request goes once more on a new one.
    func connectionClosed() {
        connection = nil
        if case .waitingHead = state, reused, !retried {
            retried = true
            cancelTimer()
            state = .starting
            pool.connect(self)
            return
        }
        fail(.closed)
    }

    /// Ends the exchange with `error`: the connection is closed (its state is unknown) and any waiting caller hears it.
    func fail(_ error: UpstreamError) {
        switch state {
        case .ended, .failed: return
        case .starting, .waitingHead, .body: break
        }
        state = .failed(error)
        cancelTimer()
        // Bytes already received stay readable: a stream's caller gets them before the error.
        if let connection {
            self.connection = nil
            connection.handler.detach(self)
            connection.close()
        }
        if let waiter = headWaiter { headWaiter = nil; waiter.resume(throwing: error) }
        if let waiter = bodyWaiter { bodyWaiter = nil; waiter.resume(throwing: error) }
        if let whole = wholeWaiter { wholeWaiter = nil; whole.continuation.resume(throwing: error) }
    }

    // MARK: timer

    private func cancelTimer() {
        deadline = .distantFuture
        if watched {
            watched = false
            pool.unwatch(self)
        }
    }

    private func arm(at deadline: NIODeadline) {
        self.deadline = deadline
        if !watched {
            watched = true
            pool.watch(self)
        }
    }

    /// The pool's deadline check found `deadline` passed.
    func deadlinePassed(now: NIODeadline) {
        deadline = .distantFuture
        switch state {
        case .waitingHead:
            if now >= firstByteDeadline { fail(.firstByteTimeout) } else { arm(at: firstByteDeadline) }
        case .body:
            // Bytes the caller has not taken yet mean the silence is the caller's, not the upstream's.
            if unread != nil && wholeWaiter == nil { lastActivity = now }
            let due = lastActivity + timeouts.idle
            if now >= due { fail(.idleTimeout) } else { arm(at: due) }
        case .starting, .ended, .failed:
            cancelTimer()
        }
    }

    // MARK: the caller's side

    /// Whether the connection should stop reading: the caller has a lot unread.
    var shouldPauseReading: Bool { wholeWaiter == nil && (unread?.readableBytes ?? 0) >= Self.pauseBytes }

    /// The next piece of the body if there is one now (nil inside: the end), nil when the caller must wait.
    func takeNext() -> Result<ByteBuffer?, any Error>? {
        if let chunk = unread {
            unread = nil
            connection?.handler.resumeReading()
            return .success(chunk)
        }
        switch state {
        case .ended: return .success(nil)
        case .failed(let error): return .failure(error)
        case .starting, .waitingHead, .body: return nil
        }
    }

    func awaitNext(_ continuation: CheckedContinuation<ByteBuffer?, any Error>) {
        if let ready = takeNext() { continuation.resume(with: ready); return }
        bodyWaiter = continuation
    }

    /// The whole body if it has all come, nil when the caller must wait.
    func takeWhole(limit: Int) -> Result<ByteBuffer, any Error>? {
        switch state {
        case .ended:
            let whole = unread ?? ByteBuffer()
            unread = nil
            return whole.readableBytes > limit ? .failure(UpstreamError.tooLarge(limit: limit)) : .success(whole)
        case .failed(let error):
            return .failure(error)
        case .starting, .waitingHead, .body:
            return nil
        }
    }

    func awaitWhole(limit: Int, _ continuation: CheckedContinuation<ByteBuffer, any Error>) {
        if let ready = takeWhole(limit: limit) { continuation.resume(with: ready); return }
        if let unread, unread.readableBytes > limit {
            fail(.tooLarge(limit: limit))
            continuation.resume(throwing: UpstreamError.tooLarge(limit: limit))
            return
        }
        wholeWaiter = (limit, continuation)
        connection?.handler.resumeReading()
    }

    /// The caller dropped the answer: an unfinished one closes its connection.
    func abandon() { fail(.cancelled) }
}

/// The body of an upstream's answer, in the pieces it arrives in; or whole, with `collect(upTo:)`. Dropping it before
/// the end closes the connection.
public final class UpstreamBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let exchange: UpstreamExchange

    init(_ exchange: UpstreamExchange) { self.exchange = exchange }

    deinit {
        let exchange = exchange
        exchange.onLoop { exchange.abandon() }
    }

    /// The whole body, failing when it is larger than `limit` bytes.
    nonisolated(nonsending) public func collect(upTo limit: Int) async throws -> ByteBuffer {
        let exchange = exchange
        if exchange.loop.inEventLoop, let ready = exchange.takeWhole(limit: limit) { return try ready.get() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                exchange.onLoop { exchange.awaitWhole(limit: limit, continuation) }
            }
        } onCancel: {
            exchange.onLoop { exchange.fail(.cancelled) }
        }
    }

    /// Gives up the answer: the connection is closed unless the answer had ended.
    public func cancel() {
        let exchange = exchange
        exchange.onLoop { exchange.abandon() }
    }

    public func makeAsyncIterator() -> Iterator { Iterator(body: self) }

    public struct Iterator: AsyncIteratorProtocol {
        let body: UpstreamBody

        nonisolated(nonsending) public mutating func next() async throws -> ByteBuffer? {
            let exchange = body.exchange
            if exchange.loop.inEventLoop, let ready = exchange.takeNext() { return try ready.get() }
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    exchange.onLoop { exchange.awaitNext(continuation) }
                }
            } onCancel: {
                exchange.onLoop { exchange.fail(.cancelled) }
            }
        }
    }
}
