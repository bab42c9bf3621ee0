/// Bounds and cadences of the ledger, each explicit.
public struct LedgerConfiguration: Sendable {
    /// Entries committed in one SQLite transaction at most.
    public var maxBatch: Int = 4096
    /// How long a charge waits for the payment gateway's answer; past it
    /// the outcome is unknown: the charge stays pending, asked again with
    /// its key (`ChargeOutcome.unknown`). The lifecycle — every account's
    /// purchases, plan changes and period closes — waits meanwhile, so a
    /// gateway that hangs holds it this long, not forever.
    public var gatewayTimeoutSeconds: Int = 30
    /// After a charge without an outcome: its key (an answer without one)
    /// or the whole gateway (no answer in time) is asked again after this,
    /// doubled after each in a row, 60 s at most.
    public var gatewayRetryBase: Duration = .seconds(1)
    /// Entries waiting for the journal at most; beyond it mutations are
    /// refused with RESOURCE_EXHAUSTED instead of queueing without bound.
    public var maxQueued: Int = 65_536
    /// A checkpoint is written after this many journal entries. The debits
    /// since the last checkpoint (and those of the one before) stay in
    /// memory, so this also bounds the idempotency hot set.
    public var checkpointEvery: Int = 100_000
    /// The largest `checkpointEvery` `billing serve` takes: a cache
    /// generation numbers its entries with 32-bit positions.
    public static let maxCheckpointEvery = 1_000_000_000
    /// False for an offline command that appends an entry or two (`billing
    /// keys`): its appends queue no checkpoint and the journal never paces
    /// for one — a start that replayed past the interval (what it replayed
    /// counts) would otherwise write one, with a key filter of the
    /// command's size over the server's.
    public var periodicCheckpoints = true
    /// Size of the filter that tells a new idempotency key from a possibly
    /// seen one without reading SQLite (`KeyFilter`; 16 MiB: ~0.3 % false
    /// positives at 10 million keys).
    public var keyFilterBytes: Int = 16 << 20
    /// A copy of the key filter is stored with every this-many checkpoints
    /// (and the first and last of a process); start-up loads it and reads
    /// the key hashes indexed since from SQLite (at most this many
    /// checkpoint intervals' worth).
    public var keyFilterEveryCheckpoints: Int = 10

    /// Durable entries beyond the newest checkpoint written past which the
    /// journal slows its commits (`GroupCommitter.pace`): two intervals.
    var maxCheckpointLag: Int64 {
        guard periodicCheckpoints else { return .max }
        let (lag, overflow) = Int64(checkpointEvery).multipliedReportingOverflow(by: 2)
        return overflow ? .max : lag
    }

    /// Seconds the ledger waits before reloading after the nth commit
    /// failure in a row beyond the first (nothing committed since the last
    /// reload): 1, 2, 4, then 8. The first failure reloads at once.
    public var commitRetrySeconds: @Sendable (_ failuresBeyondFirst: Int) -> Double = { n in
        Double(1 << min(max(n - 1, 0), 3))
    }

    /// Usage cells a `GetUsage` reads in one turn of the ledger's thread
    /// (`Ledger.committedUsage`); a range holding more is read a day at a
    /// time across turns, the ledger's other work running between them (a
    /// cell costs ~1 µs: a year of a large account's, 1.2 million cells,
    /// held every debit up ~1.5 s when read in one turn).
    public var usageCellsPerTurn: Int = 16_384

    /// Credits a new account's trial starts with, in micros ($10).
    public var trialCreditMicros: Int64 = 10_000_000
    /// How long runs continue after a failed invoice payment before they
    /// pause (7 days).
    public var graceSeconds: Int64 = 7 * 86_400
    /// Called (on the journal thread) instead of the usual reload when a
    /// commit fails with an error that leaves the disk's state unknown
    /// (`LedgerStoreError.leavesDiskStateUnknown`): the server logs and
    /// exits, and recovery at the next start decides what the journal holds.
    /// Nil (tests): such a failure reloads as any other.
    public var onDiskStateUnknown: (@Sendable (String) -> Void)?

    public init() {}
}
