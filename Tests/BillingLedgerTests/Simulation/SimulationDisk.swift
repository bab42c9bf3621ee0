import BillingLedger
import BillingProto

/// What the simulation runs on and the auditor reads back: the in-memory
/// `SimulatedDisk`, or a SQLite database file under the real store
/// (`SQLiteDisk`). Opening a store is a process starting on the disk; the
/// store the previous process opened is dead from then on.
protocol SimulationDisk: AnyObject, Sendable {
    func setFaults(_ faults: FaultRates)
    /// A new process opens the disk: the previous session's store refuses
    /// every call from now on, as a crashed process writes nothing more.
    func openStore() throws -> any LedgerStore
    /// The journal as the disk holds it, seq 1 first.
    func journal() -> [Entry]
    /// The `append` call that wrote each journal entry, by position.
    var writtenBy: [Int] { get }
    var atomicallyFailed: [SimulatedDisk.FailedAppend] { get }
    var ackLost: [SimulatedDisk.FailedAppend] { get }
    /// Writes the schema refused: the ledger must never attempt one.
    var violations: [String] { get }
    /// Sessions opened, faults injected and checkpoints stored, in order.
    var events: [String] { get }
    /// Every checkpoint stored, oldest first, and the session that wrote it.
    func writtenCheckpoints() -> [(session: Int, checkpoint: Billing_Journal_V1_Checkpoint)]
    /// The live process died on its own (in the middle of a checkpoint
    /// write) and must be restarted.
    var crashPending: Bool { get }
}

extension SimulatedDisk: SimulationDisk {
    func openStore() throws -> any LedgerStore { InMemoryLedgerStore(disk: self) }
    var crashPending: Bool { false }
}
