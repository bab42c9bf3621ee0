/// What a read of the ledger's memory waits for before it answers: the
/// commit of the newest entry it could have seen (`Ledger.readBarrier()`).
/// Fails, as that commit's callers are failed, when the commit fails.
public struct ReadBarrier: Sendable {
    let waiter: CommitWaiter?

    /// Whether everything the read saw was durable already.
    public var isSettled: Bool { waiter == nil }

    /// Returns once what the read saw is durable; throws `LedgerError.unavailable`
    /// when its commit fails. Call once.
    public func wait() async throws(LedgerError) {
        guard let waiter else { return }
        do {
            try await waiter.wait()
        } catch let error as LedgerError {
            throw error
        } catch {
            throw .unavailable("\(error)")
        }
    }
}
