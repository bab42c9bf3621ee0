import Logging
import Synchronization

/// Whether a deferred call has been answered: the first answer wins; a
/// second (a handler's bug) is logged and dropped, so the connection's
/// count of running handlers stays right.
final class GRPCAnswerOnce: Sendable {
    private let answered = Atomic<Bool>(false)

    func claim() -> Bool {
        !answered.exchange(true, ordering: .acquiringAndReleasing)
    }
}

/// How a deferred handler (`GRPCDeferredHandler`) answers its call: with
/// its outcome, once, from any thread (the answer is sent from the
/// connection's loop), or by continuing as a task that answers when it
/// returns.
public struct GRPCResponder: Sendable {
    let connection: LoopBound<GRPCServerConnection>
    let loop: any GRPCLoop
    let streamID: Int32
    let context: GRPCCallContext
    let logger: Logger
    let once = GRPCAnswerOnce()

    /// False (and logged) when the call was answered already.
    private func claim() -> Bool {
        guard once.claim() else {
            logger.error("a deferred handler answered twice; the second answer is dropped",
                         metadata: ["method": "\(context.path)"])
            return false
        }
        return true
    }

    /// Answers with `outcome`. Call exactly once (or `continueAsTask` once).
    public func callAsFunction(_ outcome: Result<[UInt8], GRPCStatus>) {
        guard claim() else { return }
        deliver(outcome)
    }

    /// Answers with what `body` returns, or the status its error maps to
    /// (as `callAsFunction(_ body:)`), computed now, on this thread: for a
    /// caller on the connection's loop (a callback the loop runs), where
    /// the answer goes out with no closure kept for later.
    public func answer(_ body: () throws -> [UInt8]) {
        guard claim() else { return }
        deliver(GRPCServerConnection.outcome(logger, context, body))
    }

    /// Hands `outcome` to the connection: now on its loop, else queued there.
    private func deliver(_ outcome: Result<[UInt8], GRPCStatus>) {
        let (connection, streamID) = (self.connection, self.streamID)
        if loop.inEventLoop {
            connection.value.handlerFinished(streamID, outcome)
        } else {
            loop.execute { connection.value.handlerFinished(streamID, outcome) }
        }
    }

    /// Answers with what `body` returns, or the status its error maps to
    /// (as a unary handler's would: a `GRPCStatus` as it is, a cancellation
    /// as CANCELLED, anything else as INTERNAL, logged). `body` runs on the
    /// loop: called from another thread, this only queues it.
    public func callAsFunction(_ body: @escaping @Sendable () throws -> [UInt8]) {
        guard !loop.inEventLoop else { return answer(body) }
        guard claim() else { return }
        let (connection, streamID, context, logger) = (self.connection, self.streamID, self.context, self.logger)
        loop.execute { connection.value.handlerFinished(streamID, GRPCServerConnection.outcome(logger, context, body)) }
    }

    /// Answers with `error`, mapped as `callAsFunction(_ body:)` maps it.
    public func fail(_ error: any Error) {
        self(GRPCServerConnection.failure(error, logger, context))
    }

    /// Continues the call as a task (on the loop when `onLoop` and the loop
    /// runs tasks, else on the shared pool) that answers when `body`
    /// returns, and is cancelled if the deadline passes first. Call on the
    /// loop, from the deferred handler itself, instead of answering.
    public func continueAsTask(onLoop: Bool, _ body: @escaping @Sendable () async throws -> [UInt8]) {
        precondition(loop.inEventLoop, "continueAsTask is called from the deferred handler, on its loop")
        guard claim() else { return }
        let connection = self.connection.value
        let placement: GRPCHandlerPlacement = onLoop ? .loop(maxRequestBytes: Int.max) : .pool
        let task = connection.startTask({ _, _ in try await body() }, placement: placement, request: [],
                                        context: context, streamID: streamID)
        connection.calls[streamID]?.task = task
    }
}
