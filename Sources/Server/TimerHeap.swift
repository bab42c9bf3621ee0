/// Timers of one event loop, soonest first. Cancellation is lazy: a
/// cancelled id stays in the heap and is skipped when it comes due, until
/// cancelled entries outnumber live ones — then the heap is rebuilt from the
/// live ones. (Every call with a deadline has a timer cancelled when the
/// call ends; without the rebuild, calls with far deadlines — `grpc-timeout`
/// allows years — left their entries and closures behind for good.)
struct TimerHeap {
    struct Entry {
        let deadline: UInt64
        let id: UInt64
        let work: () -> Void
    }

    private var heap: [Entry] = []
    private var live: Set<UInt64> = []
    private var nextID: UInt64 = 1

    var isEmpty: Bool { live.isEmpty }

    mutating func insert(deadline: UInt64, _ work: @escaping () -> Void) -> UInt64 {
        let id = nextID
        nextID += 1
        live.insert(id)
        heap.append(Entry(deadline: deadline, id: id, work: work))
        siftUp(heap.count - 1)
        return id
    }

    mutating func cancel(_ id: UInt64) {
        guard live.remove(id) != nil else { return }
        if heap.count > 2 * live.count + 64 { rebuild() }
    }

    /// Entries held, cancelled ones included (tests).
    var storedCount: Int { heap.count }

    /// The live entries only, in heap order (O(n), after at least n/2
    /// cancellations since the last: amortized constant per cancel).
    private mutating func rebuild() {
        heap.removeAll { !live.contains($0.id) }
        var index = heap.count / 2
        while index > 0 {
            index -= 1
            siftDown(index)
        }
    }

    /// The soonest live deadline.
    mutating func nextDeadline() -> UInt64? {
        while let top = heap.first, !live.contains(top.id) { popTop() }
        return heap.first?.deadline
    }

    /// Removes and returns the work of every live timer due at `now`.
    mutating func popDue(now: UInt64) -> [() -> Void] {
        var due: [() -> Void] = []
        while let top = heap.first, top.deadline <= now || !live.contains(top.id) {
            popTop()
            if live.remove(top.id) != nil { due.append(top.work) }
        }
        return due
    }

    private mutating func popTop() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        if !heap.isEmpty { siftDown(0) }
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count && heap[right].deadline < heap[smallest].deadline { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
