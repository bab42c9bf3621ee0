import CLinux
import Dispatch
import Foundation
import Logging
@testable import Server
import Synchronization
import Testing

/// The event loop as an executor of work from other threads, before and
/// after it stops (the ledger actor runs on loop 0 in `billing serve`).
@Suite struct EventLoopTests {
    /// A loop running on a thread of its own; `stop()` shuts it down and
    /// returns once its thread has left `run()`.
    final class Running: @unchecked Sendable {
        let loop: EventLoop
        private let exited = DispatchSemaphore(value: 0)

        init() throws {
            loop = try EventLoop(index: 0, logger: Logger(label: "test"))
            let (loop, exited) = (loop, exited)
            Thread {
                loop.run()
                exited.signal()
            }.start()
        }

        func stop() {
            let loop = self.loop
            loop.execute { loop.beginShutdown(drainDeadline: monotonicNanos()) }
            exited.wait()
        }
    }

    /// Runs `body` on a new thread and waits for its result.
    static func onNewThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            result.withLock { $0 = body() }
            done.signal()
        }.start()
        done.wait()
        return result.withLock { $0! }
    }

    @Test(.timeLimit(.minutes(1))) func onlyTheLoopsOwnThreadIsOnTheLoop() async throws {
        let running = try Running()
        let loop = running.loop
        let onLoop = await withCheckedContinuation { continuation in
            loop.execute { continuation.resume(returning: loop.inEventLoop) }
        }
        #expect(onLoop)
        #expect(!loop.inEventLoop)
        #expect(!Self.onNewThread { loop.inEventLoop })
        running.stop()
    }

    /// glibc hands a finished thread's id to the next thread it creates: once
    /// the loop's thread has exited, no thread may pass for the loop (work it
    /// queued would land where nothing drains it). Work queued after the stop
    /// still runs.
    @Test(.timeLimit(.minutes(1))) func afterTheLoopStopsNoThreadPassesForItAndWorkStillRuns() async throws {
        let running = try Running()
        let loop = running.loop
        running.stop()
        for _ in 0..<20 {
            let ran = DispatchSemaphore(value: 0)
            let passed = Self.onNewThread { () -> Bool in
                loop.execute { ran.signal() }
                return loop.inEventLoop
            }
            #expect(!passed)
            // A bound on the wait, not a pause: the work runs at once unless it was stranded.
            #expect(ran.wait(timeout: .now() + 10) == .success, "work queued after the stop never ran")
        }
    }

    /// Work queued after the stop runs one piece at a time, in the order each
    /// thread queued it (the ledger's jobs must never run two at once).
    @Test(.timeLimit(.minutes(1))) func workAfterTheStopRunsOneAtATimeInOrder() async throws {
        let running = try Running()
        let loop = running.loop
        // Queued while the loop runs but not run before it stops: handed over in order too.
        running.stop()
        struct Log { var running = 0; var overlapped = false; var seen: [Int: [Int]] = [:] }
        let log = Mutex(Log())
        let done = DispatchSemaphore(value: 0)
        let perThread = 500
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for index in 0..<perThread {
                loop.execute {
                    log.withLock { $0.running += 1; if $0.running > 1 { $0.overlapped = true } }
                    log.withLock { $0.seen[thread, default: []].append(index); $0.running -= 1 }
                    if index == perThread - 1 { done.signal() }
                }
            }
        }
        for _ in 0..<4 { done.wait() }
        let final = log.withLock { $0 }
        #expect(!final.overlapped)
        for thread in 0..<4 { #expect(final.seen[thread] == Array(0..<perThread)) }
    }

    /// Work queued on the loop's own thread while it handles socket events
    /// runs in that same turn, after every event of the turn and before the
    /// loop waits again: the ledger's journal is woken this way once per
    /// turn, after all of the turn's debits (`LoopLedgerExecutor`).
    @Test(.timeLimit(.minutes(1))) func workQueuedDuringSocketEventsRunsLaterInTheSameTurn() async throws {
        let running = try Running()
        defer { running.stop() }
        let loop = running.loop
        // A pipe stands in for the listening socket: its readiness is a socket event.
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        let (ready, writer) = (fds[0], fds[1])
        defer { close(ready); close(writer) }
        final class Flag: @unchecked Sendable {
            var value: Bool
            init(_ value: Bool) { self.value = value }
        }
        struct Seen: Sendable { var eventTurn: UInt64 = 0; var workTurn: UInt64 = 0; var ranInsideEvent = false }
        let seen = await withCheckedContinuation { (continuation: CheckedContinuation<Seen, Never>) in
            loop.execute {
                loop.acceptor = { loop in
                    var byte: UInt8 = 0
                    _ = read(ready, &byte, 1)
                    let inside = Flag(true)  // (a loop-thread flag: read and written there only)
                    let eventTurn = loop.turns
                    loop.execute {
                        continuation.resume(returning: Seen(eventTurn: eventTurn, workTurn: loop.turns, ranInsideEvent: inside.value))
                    }
                    inside.value = false
                    loop.acceptor = nil
                }
                loop.listenFD = ready
                try? loop.register(ready, events: EPOLLIN.rawValue)
                var byte: UInt8 = 1
                _ = write(writer, &byte, 1)
            }
        }
        #expect(!seen.ranInsideEvent)
        #expect(seen.eventTurn > 0)
        #expect(seen.workTurn == seen.eventTurn, "queued in one turn, ran in a later one")
    }
}
