import Dispatch

/// The serial executor the ledger actor runs on. `billing serve` gives it
/// the first event loop: a Debit or Quote arriving on that loop enters the
/// ledger synchronously (`Ledger.whenOnExecutor`), with no task, no actor
/// hop and no thread hand-off, and hears of its commit through a callback.
/// Calls from anywhere else await the actor as usual (their jobs run on
/// the loop, between its socket events).
public protocol LedgerExecutor: SerialExecutor, AnyObject {
    /// True on the thread that runs this executor's jobs now: code there
    /// is isolated to the actors this executor runs.
    var isCurrent: Bool { get }

    /// Runs `body` on this executor after what is queued there already;
    /// called on the executor's own thread, after the work in progress too
    /// (an event loop's current turn: every call its sockets brought in; a
    /// queue's current job). Called from any thread (the journal's hands
    /// commit callbacks over).
    func execute(_ body: @escaping @Sendable () -> Void)
}

extension LedgerExecutor {
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Whether code here is isolated to the executor (SE-0471: the runtime
    /// asks this first, also where it must not crash).
    public func isIsolatingCurrentContext() -> Bool? { isCurrent }

    /// Traps unless on the executor (`assumeIsolated` asks this when the
    /// current thread is not running one of the executor's jobs, e.g. a
    /// loop's socket callback, and the runtime predates SE-0471).
    public func checkIsolated() {
        precondition(isCurrent, "not on the ledger's executor")
    }
}

/// The ledger's executor when none is given (tests, the command-line tools):
/// a private serial dispatch queue.
public final class QueueLedgerExecutor: LedgerExecutor, @unchecked Sendable {
    private let queue: DispatchQueue
    private let key = DispatchSpecificKey<ObjectIdentifier>()

    public init(label: String = "billing-ledger") {
        queue = DispatchQueue(label: label)
        queue.setSpecific(key: key, value: ObjectIdentifier(self))
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
    }

    public var isCurrent: Bool { DispatchQueue.getSpecific(key: key) == ObjectIdentifier(self) }

    public func execute(_ body: @escaping @Sendable () -> Void) {
        queue.async(execute: body)
    }
}
