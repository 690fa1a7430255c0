import NIOCore

/// An actor whose executor is one event loop: the isolation of a relay call's task, on the loop of its connection.
///
/// NIO's loops run Swift's tasks (`main.swift`), each job as the loop's own serial executor. A task without isolation
/// then leaves that executor for the generic one at every `async` function it enters or returns to, and the runtime
/// sends it through the loop's queue each time: 26 times a relayed call. Isolated to this actor, the task is already
/// where it must be. The relay's hot functions are `nonisolated(nonsending)`, so they run in their caller's isolation,
/// and so do `withTaskCancellationHandler` and continuations, which follow the caller's `#isolation`
/// (docs/performance.md, "fifth pass").
actor LoopIsolation {
    let loop: any EventLoop

    init(loop: any EventLoop) {
        self.loop = loop
    }

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        loop.executor.asUnownedSerialExecutor()
    }
}
