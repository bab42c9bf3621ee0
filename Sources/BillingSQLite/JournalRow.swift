internal import BillingProto
internal import BillingLedger

/// The indexed columns of a journal row, copied from its entry's event.
struct JournalRow {
    /// The `Entry.event` oneof field number in journal.proto; 0001_ledger.sql's
    /// partial indexes and the reader's queries use these literals.
    enum Kind: Int64 {
        /// Up to `debitsPerRow` consecutive debit entries (0005).
        case debits = 0
        case accountCreated = 10
        case creditsGranted = 11
        case debitAccepted = 12
        case debitRefused = 13
        case apiKeyCreated = 14
        case apiKeyRevoked = 15
        case lifecycle = 16
        case chargeRecorded = 17
        case creditsPurchased = 18
        case clockSet = 19
        case plansConfigured = 20
        case chargeStarted = 21
    }

    /// The most debit entries one row holds (0005; readers do not rely on
    /// it: they find the row holding a seq by one descent).
    static let debitsPerRow = 16

    /// Kinds the audit log lists (everything but debits).
    static let auditKinds: [Kind] = [
        .accountCreated, .creditsGranted, .apiKeyCreated, .apiKeyRevoked,
        .lifecycle, .chargeRecorded, .creditsPurchased, .clockSet, .plansConfigured, .chargeStarted,
    ]

    let kind: Kind
    let accountID: String
    let idempotencyKey: String?
    let runID: String?

    init(_ entry: Billing_Journal_V1_Entry) throws {
        try self.init(JournalRecord(entry))
    }

    init(_ record: JournalRecord) throws {
        switch record.event {
        case .accountCreated(let created):
            (kind, accountID, idempotencyKey, runID) = (.accountCreated, created.accountID, nil, nil)
        case .creditsGranted(let granted):
            // A grant's key is optional; an empty one is stored as NULL.
            let key = granted.idempotencyKey.isEmpty ? nil : granted.idempotencyKey
            (kind, accountID, idempotencyKey, runID) = (.creditsGranted, granted.accountID, key, nil)
        case .debitAccepted(let debit):
            (kind, accountID, idempotencyKey, runID) = (.debitAccepted, debit.accountID, debit.idempotencyKey, debit.runID)
        case .debitRefused(let refused):
            (kind, accountID, idempotencyKey, runID) = (.debitRefused, refused.accountID, refused.idempotencyKey, nil)
        case .apiKeyCreated:
            // Service-wide: no account.
            (kind, accountID, idempotencyKey, runID) = (.apiKeyCreated, "", nil, nil)
        case .apiKeyRevoked:
            (kind, accountID, idempotencyKey, runID) = (.apiKeyRevoked, "", nil, nil)
        case .lifecycle(let event):
            (kind, accountID, idempotencyKey, runID) = (.lifecycle, event.accountID, nil, nil)
        case .chargeRecorded(let recorded):
            (kind, accountID, idempotencyKey, runID) = (.chargeRecorded, recorded.charge.accountID, nil, nil)
        case .creditsPurchased(let purchase):
            (kind, accountID, idempotencyKey, runID) = (.creditsPurchased, purchase.accountID, nil, nil)
        case .chargeStarted(let started):
            (kind, accountID, idempotencyKey, runID) = (.chargeStarted, started.accountID, nil, nil)
        case .clockSet:
            (kind, accountID, idempotencyKey, runID) = (.clockSet, "", nil, nil)
        case .plansConfigured:
            (kind, accountID, idempotencyKey, runID) = (.plansConfigured, "", nil, nil)
        case nil:
            throw SQLiteStoreError.entryWithoutEvent(seq: record.seq)
        }
    }
}
