import BillingLedger
import Testing
@testable import BillingSQLite

/// `billing verify` finds a key journaled twice wherever the two entries
/// are: both covered by the index, one of them, or neither.
@Suite struct AuditTests {
    static let entries = [
        accountCreated(1, account: "a"),
        debitRefused(2, account: "a", key: "k1"),
        debitRefused(3, account: "a", key: "k2"),
        debitRefused(4, account: "a", key: "k1"),
    ]

    @Test(arguments: [4, 3, 0] as [Int64])
    func aKeyJournaledTwiceIsReported(indexedThrough: Int64) throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            try store.append(Self.entries)
            if indexedThrough > 0 { try store.index(Array(Self.entries.prefix(Int(indexedThrough)))) }
            #expect(try store.indexedThrough() == indexedThrough)
            let problems = try LedgerAudit.run(on: store).problems
            #expect(problems.contains("account a key k1: a second debit entry (seq 4, first at 2)"), "\(problems)")
            #expect(!problems.contains { $0.contains("key k2") }, "\(problems)")
        }
    }

    @Test func theIndexedRowsAreComparedUpToTheSeqReadFirst() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let clean = Array(Self.entries.prefix(3))
            try store.append(clean)
            try store.index(clean)
            var rows = 0
            try store.forEachIndexRow(runs: false, through: 2) { _ in rows += 1 }
            #expect(rows == 0, "generation 3 is beyond seq 2")
            try store.forEachIndexRow(runs: false, through: 3) { _ in rows += 1 }
            #expect(rows == 2)
            #expect(try store.keyRowsSharingAHash(through: 3).isEmpty)
        }
    }
}
