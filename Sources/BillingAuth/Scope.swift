/// What a service credential (API key) may do. The raw values are the
/// strings stored with a key and shown by `billing keys list`.
public enum Scope: String, Sendable, Hashable, CaseIterable {
    /// Debit, DebitBatch.
    case meteringWrite = "metering:write"
    /// Quote, GetExecutionCost, GetDebit, GetUsage.
    case meteringRead = "metering:read"
    /// The Admin service, and every Accounts and Payments method on any account.
    case accountsAdmin = "accounts:admin"
}
