import Synchronization

/// What every GetExecutionCost page of a run repeats: its total, debit
/// count and catalog versions (in the order first used), over its debits
/// up to `through` (a seq).
struct RunSummary: Sendable, Equatable {
    var through: Int64 = 0
    var total: Int64 = 0
    var count: Int64 = 0
    var catalogVersions: [String] = []
}

/// The summaries of recently asked runs, at most `capacity` (past it an
/// arbitrary one is dropped: a dropped run's next page reads it whole
/// again). Debits only ever join a run, durable ones are never taken back,
/// so a summary stays true; a page adds those joined since.
final class RunSummaries: Sendable {
    struct Key: Hashable, Sendable {
        let account: String
        let run: String
    }

    static let capacity = 4_096
    private let summaries = Mutex<[Key: RunSummary]>([:])

    subscript(key: Key) -> RunSummary? {
        get { summaries.withLock { $0[key] } }
        set {
            summaries.withLock { summaries in
                if newValue != nil, summaries[key] == nil, summaries.count >= Self.capacity {
                    summaries.remove(at: summaries.startIndex)
                }
                summaries[key] = newValue
            }
        }
    }
}
