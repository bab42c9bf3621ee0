/// Why the ledger could not process a command at all (as opposed to a
/// business refusal, which is a recorded outcome).
public enum LedgerError: Error, Sendable, Equatable {
    /// The account id is already taken (CreateAccount).
    case accountExists(String)
    /// No such account, for commands other than Debit (whose refusal is recorded).
    case accountNotFound(String)
    /// No such API key.
    case keyNotFound(String)
    /// A grant's idempotency key was used before with another amount.
    case grantKeyReused(String)
    /// Too many mutations waiting for the journal; try again shortly.
    case overloaded(pending: Int)
    /// The journal write failed; the ledger reloaded from SQLite. Whether the
    /// command took effect is unknown: settle with GetDebit, retry with the same key.
    case unavailable(String)
    /// Input the ledger cannot accept (an amount out of range, a balance overflow).
    case invalid(String)
    /// A store read that may succeed if tried again (busy, disk full, I/O:
    /// `LedgerStoreError.isTransient`); UNAVAILABLE to the caller.
    case storageUnavailable(String)
    /// Not the caller's doing: the ledger's state breaks one of its own rules
    /// (a bug or damaged data). Logged; INTERNAL to the caller.
    case internalFault(String)
}

extension LedgerError {
    /// A store's error as the ledger reports it: `storageUnavailable` when
    /// trying again may succeed, else an internal fault.
    public init(storeError error: any Error, _ what: String) {
        if let store = error as? any LedgerStoreError, store.isTransient {
            self = .storageUnavailable("\(what): \(error)")
        } else {
            self = .internalFault("\(what): \(error)")
        }
    }
}
