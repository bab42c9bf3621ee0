/// Bounds and cadences of the ledger, each explicit.
public struct LedgerConfiguration: Sendable {
    /// Entries committed in one SQLite transaction at most.
    public var maxBatch: Int = 4096
    /// Entries waiting for the journal at most; beyond it mutations are
    /// refused with RESOURCE_EXHAUSTED instead of queueing without bound.
    public var maxQueued: Int = 65_536
    /// Debit outcomes kept in memory per generation (two generations at
    /// most); older ones are read back from SQLite.
    public var idempotencyCacheCapacity: Int = 262_144
    /// A checkpoint is written after this many journal entries.
    public var checkpointEvery: Int = 100_000

    /// Credits a new account's trial starts with, in micros ($10).
    public var trialCreditMicros: Int64 = 10_000_000
    /// How long runs continue after a failed invoice payment before they
    /// pause (7 days).
    public var graceSeconds: Int64 = 7 * 86_400

    public init() {}
}
