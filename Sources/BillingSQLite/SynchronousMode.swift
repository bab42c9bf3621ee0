/// How hard SQLite works to make a commit survive a power cut (PRAGMA synchronous).
public enum SynchronousMode: Sendable {
    /// fsync the WAL at every commit: a commit that returned survives power loss.
    /// The default: the ledger acknowledges a debit only after its commit.
    case full
    /// fsync only at checkpoints: a commit survives a process crash but the last
    /// ones may be lost on power loss. Faster; for tests and benchmarks.
    case normal
}
