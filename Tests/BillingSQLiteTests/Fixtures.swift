import BillingLedger
import BillingProto
import Foundation

/// Runs `body` with a database path in a fresh temporary directory (whose
/// subdirectory does not exist yet: the store must create it), then deletes it.
func withTemporaryDatabase<T>(_ body: (String) throws -> T) throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("billing-sqlite-\(UUID())")
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory.appendingPathComponent("data/ledger.sqlite").path)
}

func withTemporaryDatabase<T>(_ body: (String) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("billing-sqlite-\(UUID())")
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory.appendingPathComponent("data/ledger.sqlite").path)
}

typealias Entry = Billing_Journal_V1_Entry

func accountCreated(_ seq: Int64, account: String) -> Entry {
    var created = Billing_Journal_V1_AccountCreated()
    created.accountID = account
    created.plan = "pro"
    return entry(seq, .accountCreated(created))
}

func creditsGranted(_ seq: Int64, account: String, key: String, micros: Int64 = 1_000_000) -> Entry {
    var granted = Billing_Journal_V1_CreditsGranted()
    granted.accountID = account
    granted.idempotencyKey = key
    granted.amountMicros = micros
    return entry(seq, .creditsGranted(granted))
}

func debitAccepted(_ seq: Int64, account: String, key: String, run: String = "run-1", total: Int64 = 1_500) -> Entry {
    var debit = Billing_Journal_V1_DebitAccepted()
    debit.accountID = account
    debit.idempotencyKey = key
    debit.runID = run
    debit.totalMicros = total
    debit.requestHash = Data([1, 2, 3])
    return entry(seq, .debitAccepted(debit))
}

func debitRefused(_ seq: Int64, account: String, key: String) -> Entry {
    var refused = Billing_Journal_V1_DebitRefused()
    refused.accountID = account
    refused.idempotencyKey = key
    refused.code = 9
    refused.reason = "INSUFFICIENT_CREDITS"
    return entry(seq, .debitRefused(refused))
}

private func entry(_ seq: Int64, _ event: Entry.OneOf_Event) -> Entry {
    var entry = Entry()
    entry.seq = seq
    entry.atUnixMicros = 1_700_000_000_000_000 + seq
    entry.event = event
    return entry
}

func checkpoint(_ seq: Int64) -> Billing_Journal_V1_Checkpoint {
    var checkpoint = Billing_Journal_V1_Checkpoint()
    checkpoint.seq = seq
    checkpoint.writtenUnixMicros = 1_700_000_000_000_000 + seq
    var account = Billing_Journal_V1_AccountState()
    account.accountID = "acct-1"
    account.balanceMicros = seq * 100
    checkpoint.accounts = [account]
    return checkpoint
}

extension LedgerStore {
    /// Writes a checkpoint at the last of `entries` with their index rows, as
    /// the ledger does (the rows from its IdempotencyCache).
    func index(_ entries: [Entry]) throws {
        let cache = IdempotencyCache()
        for entry in entries { cache.insert(entry) }
        let seq = entries.map(\.seq).max() ?? 0
        try writeCheckpoint(checkpoint(seq), index: cache.seal(atSeq: seq))
    }

    /// The journal after `seq`, collected.
    func entries(after seq: Int64 = 0) throws -> [Entry] {
        var entries: [Entry] = []
        try forEachEntry(after: seq) { entries.append($0) }
        return entries
    }
}
