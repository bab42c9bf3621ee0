import GRPC
import Glibc
import Synchronization

/// A GRPCLoop driven by the test: time moves only when told, queued work
/// runs when the test takes it.
final class ManualLoop: GRPCLoop, @unchecked Sendable {
    private let queued: AsyncStream<@Sendable () -> Void>
    private let continuation: AsyncStream<@Sendable () -> Void>.Continuation
    private var iterator: AsyncStream<@Sendable () -> Void>.AsyncIterator
    var now: UInt64 = 1_000_000_000
    var timers: [UInt64: (UInt64, () -> Void)] = [:]
    var nextTimer: UInt64 = 1
    /// True while `runNext` runs a piece of work (handlers placed on the loop run there).
    let runningWork = Atomic<Bool>(false)

    init() {
        (queued, continuation) = AsyncStream.makeStream()
        iterator = queued.makeAsyncIterator()
    }

    /// The thread inside `drive`, if any: "on the loop" (the connection is
    /// driven there, so a deferred handler runs there).
    private let driver = Mutex<pthread_t?>(nil)

    var nowNanos: UInt64 { now }
    var inEventLoop: Bool {
        guard let thread = driver.withLock({ $0 }) else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    /// Runs `body` as the loop thread would (`inEventLoop` is true in it, on this thread only).
    func drive<R>(_ body: () throws -> R) rethrows -> R {
        driver.withLock { $0 = pthread_self() }
        defer { driver.withLock { $0 = nil } }
        return try body()
    }

    func execute(_ work: @escaping @Sendable () -> Void) { continuation.yield(work) }

    func schedule(atNanos deadline: UInt64, _ work: @escaping () -> Void) -> GRPCTimerID {
        defer { nextTimer += 1 }
        timers[nextTimer] = (deadline, work)
        return GRPCTimerID(nextTimer)
    }

    func cancel(_ timer: GRPCTimerID) { timers[timer.rawValue] = nil }

    /// Waits for the next piece of work posted by a handler task and runs it.
    func runNext() async {
        guard let work = await iterator.next() else { return }
        runningWork.store(true, ordering: .sequentiallyConsistent)
        work()
        runningWork.store(false, ordering: .sequentiallyConsistent)
    }

    func advance(byNanos nanos: UInt64) {
        now += nanos
        for (id, timer) in timers.sorted(by: { $0.value.0 < $1.value.0 }) where timer.0 <= now {
            timers[id] = nil
            timer.1()
        }
    }
}

/// Tasks of handlers placed on the loop are queued as work, like a real loop's.
extension ManualLoop: GRPCExecutorLoop {
    var handlerExecutor: (any TaskExecutor)? { self }
}
