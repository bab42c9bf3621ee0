import Synchronization

/// Reader connections, checked out one per call. Up to `capacity` are kept
/// idle; when all are busy another is opened for the call and closed after
/// it, so a burst of readers never blocks a thread (the callers are tasks on
/// Swift's cooperative pool, whose width already bounds the burst).
final class ReaderPool: Sendable {
    private struct State {
        var idle: [LedgerReader]
        var closed = false
    }

    private let state: Mutex<State>
    private let capacity: Int
    private let open: @Sendable () throws -> LedgerReader

    init(capacity: Int, open: @escaping @Sendable () throws -> LedgerReader) throws {
        precondition(capacity >= 1, "a reader pool needs at least one connection")
        self.capacity = capacity
        self.open = open
        var idle: [LedgerReader] = []
        for _ in 0..<capacity { idle.append(try open()) }
        state = Mutex(State(idle: idle))
    }

    func withReader<T>(_ body: (LedgerReader) throws -> T) throws -> T {
        let reader = try checkOut()
        defer { checkIn(reader) }
        return try body(reader)
    }

    /// Closes the idle connections now and those in use when they come back.
    func close() {
        // The connections are returned out of the lock and closed outside it.
        _ = state.withLock { state in
            state.closed = true
            defer { state.idle = [] }
            return state.idle
        }
    }

    private func checkOut() throws -> LedgerReader {
        let (closed, reader) = state.withLock { state in (state.closed, state.idle.popLast()) }
        guard !closed else { throw SQLiteStoreError.closed }
        return try reader ?? open()
    }

    private func checkIn(_ reader: LedgerReader) {
        // An overflow or post-close reader is returned out of the lock and closed outside it.
        _ = state.withLock { state -> LedgerReader? in
            guard !state.closed, state.idle.count < capacity else { return reader }
            state.idle.append(reader)
            return nil
        }
    }
}
