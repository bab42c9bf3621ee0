/// What a connection needs from the thread that owns it: a way back onto
/// that thread from a handler's task, timers, and the time. The server's
/// event loop implements it; tests use a manual one.
public protocol GRPCLoop: AnyObject, Sendable {
    /// Runs `work` on the loop thread soon. Callable from any thread.
    func execute(_ work: @escaping @Sendable () -> Void)
    /// Runs `work` on the loop thread at `deadlineNanos` unless cancelled.
    /// Call only on the loop thread.
    func schedule(atNanos deadlineNanos: UInt64, _ work: @escaping () -> Void) -> GRPCTimerID
    /// Call only on the loop thread.
    func cancel(_ timer: GRPCTimerID)
    /// Monotonic nanoseconds.
    var nowNanos: UInt64 { get }
    /// True on the loop's own thread.
    var inEventLoop: Bool { get }
    /// Runs the tasks of handlers placed on the loop (`GRPCHandlerPlacement.loop`);
    /// nil: they run on Swift's global concurrent executor like the others.
    var handlerExecutor: (any TaskExecutor)? { get }
}

extension GRPCLoop {
    public var handlerExecutor: (any TaskExecutor)? { nil }
}

/// A loop that runs the tasks of handlers placed on it (and the actors
/// they call while they run there): a job is queued with `execute` like
/// any other work and run between socket events; one resumed from another
/// thread (a commit acknowledged by the journal thread) wakes the loop.
/// Conformers return `self` as their `handlerExecutor`.
public protocol GRPCExecutorLoop: GRPCLoop, TaskExecutor {}

extension GRPCExecutorLoop {
    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        execute { [unowned self] in unowned.runSynchronously(on: asUnownedTaskExecutor()) }
    }
}

public struct GRPCTimerID: Hashable, Sendable {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
}

/// The socket side of a connection: told when there is output to write.
public protocol GRPCConnectionHost: AnyObject {
    func connectionHasOutput()
}

/// Carries a loop-confined object through a `@Sendable` closure that will
/// only touch it back on the loop (via `GRPCLoop.execute`).
struct LoopBound<Value: AnyObject>: @unchecked Sendable {
    let value: Value
}
