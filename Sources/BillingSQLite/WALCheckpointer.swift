import Dispatch
import Foundation
import Synchronization

/// Copies the write-ahead log back into the database file on a thread and
/// connection of its own (`PRAGMA wal_checkpoint(PASSIVE)` every
/// `interval`), so the journal's commits rarely do it: with SQLite's
/// automatic checkpoint alone the committing thread copied ~40 MiB and
/// fsynced the database file each time the WAL reached 10,000 pages, and
/// every caller waiting on that commit waited 50–250 ms. A passive
/// checkpoint takes no lock that blocks the writer or readers.
///
/// The writer keeps its automatic checkpoint at 10,000 pages: under steady
/// commits a checkpoint on another connection never finds the WAL idle, and
/// only the writer can then start it over from the beginning; by the time
/// it does, this thread has copied nearly every frame. (With the writer's
/// threshold raised to 100,000 pages the WAL grew to 400 MiB at 10 million
/// debits, and every page read searched its index: a checkpoint took 19 s.)
final class WALCheckpointer: Sendable {
    struct Statistics: Sendable {
        /// Checkpoints the thread ran, and the last one's error, if it failed.
        var runs = 0
        var lastError: String?
    }

    private struct Unchecked: @unchecked Sendable {
        // Only touched under `connection`'s lock.
        let connection: SQLiteConnection
    }

    private let connection: Mutex<Unchecked?>
    private let statistics = Mutex(Statistics())
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private let interval: Double

    /// Opens its connection and starts the thread.
    init(path: String, synchronous: SynchronousMode, interval: Double) throws {
        let connection = try SQLiteConnection(path: path)
        try connection.configure(synchronous: synchronous, readOnly: false)
        self.connection = Mutex(Unchecked(connection: connection))
        self.interval = interval
        let thread = Thread { [self] in run() }
        thread.name = "billing-wal"
        thread.start()
    }

    var current: Statistics { statistics.withLock { $0 } }

    /// One passive checkpoint now, on the caller's thread: (frames in the
    /// WAL, frames copied to the database).
    @discardableResult
    func checkpoint() throws -> (walFrames: Int64, copied: Int64) {
        try connection.withLock { held in
            guard let held else { throw SQLiteStoreError.closed }
            return try held.connection.prepare("PRAGMA wal_checkpoint(PASSIVE)").use { statement in
                guard try statement.step() else { return (0, 0) }
                // Columns: busy (0 for PASSIVE), frames in the WAL, frames checkpointed (-1: not WAL).
                return (max(statement.int64(at: 1), 0), max(statement.int64(at: 2), 0))
            }
        }
    }

    /// Stops the thread and closes its connection (idempotent).
    func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        wake.signal()
        stopped.wait()
        connection.withLock { $0 = nil }
    }

    private func run() {
        while !stopping.load(ordering: .relaxed) {
            _ = wake.wait(timeout: .now() + interval)
            guard !stopping.load(ordering: .relaxed) else { break }
            do {
                try checkpoint()
                statistics.withLock { $0.runs += 1; $0.lastError = nil }
            } catch {
                // Not fatal: the writer's safety net checkpoints if this keeps failing.
                statistics.withLock { $0.lastError = "\(error)" }
            }
        }
        stopped.signal()
    }
}
