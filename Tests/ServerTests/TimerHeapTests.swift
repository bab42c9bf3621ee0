@testable import Server
import Testing

/// The loop's timers: soonest first, cancelled ones never run, and
/// cancelled entries do not pile up.
@Suite struct TimerHeapTests {
    @Test func timersComeDueInDeadlineOrderAndCancelledOnesNeverRun() {
        var heap = TimerHeap()
        var ran: [Int] = []
        var ids: [Int: UInt64] = [:]
        // Deadlines in a scrambled order; every third cancelled.
        for n in 0..<300 {
            let deadline = UInt64((n * 7_919) % 300)
            ids[n] = heap.insert(deadline: deadline) { ran.append(Int(deadline)) }
        }
        for n in stride(from: 0, to: 300, by: 3) { heap.cancel(ids[n]!) }
        #expect(heap.nextDeadline() != nil)
        for work in heap.popDue(now: 149) { work() }
        for work in heap.popDue(now: 1_000) { work() }
        let expected = (0..<300).filter { $0 % 3 != 0 }.map { (n: Int) in (n * 7_919) % 300 }.sorted()
        #expect(ran == expected)
        #expect(heap.isEmpty)
        #expect(heap.nextDeadline() == nil)
    }

    /// Calls with far deadlines, each ending (its timer cancelled) long
    /// before: the heap holds about the live timers, not every one ever set.
    @Test func cancelledFarTimersDoNotPileUp() {
        var heap = TimerHeap()
        let keep = heap.insert(deadline: 10) {}
        for n in 0..<100_000 {
            let id = heap.insert(deadline: UInt64.max - UInt64(n)) {}
            heap.cancel(id)
            #expect(heap.storedCount <= 2 * 1 + 64 + 1, "after \(n + 1) cancellations")
            if heap.storedCount > 2 * 1 + 64 + 1 { break }
        }
        #expect(heap.nextDeadline() == 10)
        heap.cancel(keep)
        #expect(heap.isEmpty)
    }
}
