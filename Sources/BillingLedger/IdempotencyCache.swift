public import BillingProto
import Synchronization

/// The hot set of recent debit outcomes by (account, key), bounded in
/// memory: two generations, the older dropped when the newer fills up.
/// Older keys live on in SQLite and are looked up there on a miss.
/// `generation` lets a caller that looked in SQLite before entering the
/// ledger detect that a rotation happened meanwhile and look again.
public final class IdempotencyCache: Sendable {
    struct Key: Hashable {
        let account: String
        let key: String
    }

    struct Generations {
        var current: [Key: Billing_Journal_V1_Entry] = [:]
        var previous: [Key: Billing_Journal_V1_Entry] = [:]
        var generation: UInt64 = 0
    }

    private let state = Mutex(Generations())
    /// Entries per generation; memory holds at most twice this many.
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    public func lookup(account: String, key: String) -> (entry: Billing_Journal_V1_Entry?, generation: UInt64) {
        let k = Key(account: account, key: key)
        return state.withLock { s in (s.current[k] ?? s.previous[k], s.generation) }
    }

    public func insert(_ entry: Billing_Journal_V1_Entry, account: String, key: String) {
        state.withLock { s in
            if s.current.count >= capacity {
                s.previous = s.current
                s.current = [:]
                s.current.reserveCapacity(capacity)
                s.generation += 1
            }
            s.current[Key(account: account, key: key)] = entry
        }
    }

    public func removeAll() {
        state.withLock { s in
            s.current = [:]
            s.previous = [:]
            s.generation += 1
        }
    }

    public var count: Int { state.withLock { $0.current.count + $0.previous.count } }
}
