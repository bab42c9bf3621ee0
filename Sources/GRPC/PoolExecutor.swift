import Dispatch

/// Swift's shared thread pool (libdispatch's global queue) as an explicit
/// task executor: the preference of every handler task not placed on a
/// loop. With no preference at all, a task that the ledger actor ran while
/// the actor was draining on an event loop (called there by a loop-placed
/// handler) would carry on inline on that loop thread after leaving the
/// actor — rendering a PDF or reading SQLite on the loop. With this one it
/// goes back to the pool.
public final class PoolExecutor: TaskExecutor {
    public static let shared = PoolExecutor()

    private init() {}

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        DispatchQueue.global().async { unowned.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
