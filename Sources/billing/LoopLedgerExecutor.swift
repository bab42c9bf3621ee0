import BillingLedger
import GRPC

/// The ledger actor on an event loop: its jobs are queued on the loop like
/// any other work and run between socket events; a Debit or Quote arriving
/// on that loop enters the ledger synchronously (see `LedgerExecutor`).
final class LoopLedgerExecutor: LedgerExecutor, @unchecked Sendable {
    let loop: any GRPCExecutorLoop

    init(loop: any GRPCExecutorLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
    }

    var isCurrent: Bool { loop.inEventLoop }

    /// The loop runs work queued from its own thread after its turn's socket
    /// events, before it waits again.
    func execute(_ body: @escaping @Sendable () -> Void) {
        loop.execute(body)
    }
}
