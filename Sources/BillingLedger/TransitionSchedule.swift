import BillingProto

/// When each account's next time-driven transition (period end, trial end,
/// grace end) is due, and which invoices owe a payment attempt: derived from
/// the books, kept up to date by `LedgerState.apply`, so the clock finds the
/// next transition in O(log n) instead of scanning every account (once a
/// second, and once per transition when a month's periods end together).
///
/// A min-heap of (due, account) with lazy deletion: an account's entry is
/// current while it equals `dueAt[account]`; a rescheduled account pushes a
/// new entry and its old one is discarded when it reaches the top.
public struct TransitionSchedule: Sendable {
    struct Item: Comparable {
        let at: Int64
        let accountID: String

        /// Earliest first; ties by account id, the order replays must follow.
        static func < (a: Item, b: Item) -> Bool { (a.at, a.accountID) < (b.at, b.accountID) }
    }

    private(set) var dueAt: [String: Int64] = [:]
    private var heap: [Item] = []
    /// Sequences of invoices issued with a payment attempt not yet recorded.
    public private(set) var owedInvoices: Set<Int64> = []

    public init() {}

    /// Records `account`'s next transition time.
    mutating func schedule(_ accountID: String, at: Int64) {
        guard dueAt.updateValue(at, forKey: accountID) != at else { return }
        push(Item(at: at, accountID: accountID))
        // Stale entries are bounded: rebuild once they outnumber current ones.
        if heap.count > 2 * dueAt.count + 1_024 { rebuildHeap() }
    }

    mutating func remove(_ accountID: String) {
        dueAt[accountID] = nil
    }

    mutating func setOwed(_ sequence: Int64, _ owed: Bool) {
        if owed { owedInvoices.insert(sequence) } else { owedInvoices.remove(sequence) }
    }

    /// The account whose transition is due first, with its time, if that is
    /// at or before `limit`.
    mutating func earliest(upTo limit: Int64) -> (accountID: String, at: Int64)? {
        while let top = heap.first {
            if dueAt[top.accountID] == top.at {
                return top.at <= limit ? (top.accountID, top.at) : nil
            }
            popTop()
        }
        return nil
    }

    /// The same, passing over the accounts in `skipping` (those whose due
    /// transition failed in this sweep): they are lifted off the heap while
    /// the next is found and put back, so a sweep that skips a few accounts
    /// costs a few heap moves per step, not a scan of every account.
    mutating func earliest(upTo limit: Int64, skipping: Set<String>) -> (accountID: String, at: Int64)? {
        guard !skipping.isEmpty else { return earliest(upTo: limit) }
        var lifted: [Item] = []
        defer { for item in lifted { push(item) } }
        while let top = heap.first {
            guard dueAt[top.accountID] == top.at else { popTop(); continue }
            guard top.at <= limit else { return nil }
            guard skipping.contains(top.accountID) else { return (top.accountID, top.at) }
            lifted.append(top)
            popTop()
        }
        return nil
    }

    private mutating func rebuildHeap() {
        heap = dueAt.map { Item(at: $0.value, accountID: $0.key) }.sorted()  // a sorted array is a heap
    }

    private mutating func push(_ item: Item) {
        heap.append(item)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child] < heap[parent] else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popTop() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count && heap[left] < heap[smallest] { smallest = left }
            if right < heap.count && heap[right] < heap[smallest] { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}

extension LedgerState {
    /// Brings `schedule` up to date after `event` was applied: the account it
    /// touched (its lifecycle and its invoices), or every account when plan
    /// terms change. Debits, refusals and grants change neither.
    mutating func reschedule(after event: Billing_Journal_V1_Entry.OneOf_Event?) {
        switch event {
        case .accountCreated(let created): reschedule(created.accountID)
        case .lifecycle(let lifecycle): reschedule(lifecycle.accountID)
        case .chargeRecorded(let recorded): reschedule(recorded.charge.accountID)
        case .creditsPurchased(let purchase): reschedule(purchase.accountID)
        case .plansConfigured: rescheduleAll()
        default: break
        }
    }

    /// The account's next transition. (Invoices owing an attempt are kept
    /// where `attemptPending` changes — set when a period close issues one,
    /// cleared by its charge — not re-read here: an account's every invoice
    /// read on each of its events made many purchases quadratic.)
    mutating func reschedule(_ accountID: String) {
        guard let index = accounts.index(forKey: accountID) else { return schedule.remove(accountID) }
        schedule.schedule(accountID, at: accounts.values[index].lifecycle.nextTransition.at)
    }

    /// The whole schedule from the books (after a checkpoint is loaded).
    mutating func rescheduleAll() {
        schedule = TransitionSchedule()
        for id in accounts.keys { reschedule(id) }
        for (sequence, record) in invoices where record.attemptPending { schedule.setOwed(sequence, true) }
    }

    /// Whether the schedule says what the books say (tests).
    public var scheduleIsCurrent: Bool {
        var fresh = self
        fresh.rescheduleAll()
        return fresh.schedule.dueAt == schedule.dueAt && fresh.schedule.owedInvoices == schedule.owedInvoices
    }
}
