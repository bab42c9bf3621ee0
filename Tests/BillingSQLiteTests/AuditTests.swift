import BillingLedger
import BillingProto
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

    /// A debit decided on books that drifted from the journal: it told its
    /// caller a balance the journal's books do not give, and took a Free
    /// account below zero. (Each figure alone adds up: balance = granted -
    /// debited from credits.)
    @Test func aDebitDecidedOnDriftedBooksIsReported() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            var created = accountCreated(1, account: "f")
            created.accountCreated.plan = "free"
            var debit = debitAccepted(3, account: "f", key: "k1", total: 5_000)
            debit.debitAccepted.lines = [Self.line(5_000)]
            debit.debitAccepted.fromCreditsMicros = 5_000
            debit.debitAccepted.balanceAfterMicros = 1_000  // what drifted books said
            try store.append([created, creditsGranted(2, account: "f", key: "g1", micros: 1_000), debit])
            let problems = try LedgerAudit.run(on: store).problems
            #expect(problems.contains("account f seq 3: the debit told its caller a balance of 1000, the journal's books give -4000"),
                    "\(problems)")
            #expect(problems.contains("account f seq 3: a plan without overage left at a balance of -4000 with an overage of 0"),
                    "\(problems)")
            // The same debit told the truth on books with the credits is clean.
            var honest = debitAccepted(3, account: "f", key: "k1", total: 1_000)
            honest.debitAccepted.lines = [Self.line(1_000)]
            (honest.debitAccepted.fromCreditsMicros, honest.debitAccepted.balanceAfterMicros) = (1_000, 0)
            try withTemporaryDatabase { other in
                let clean = try SQLiteLedgerStore(path: other)
                try clean.append([created, creditsGranted(2, account: "f", key: "g1", micros: 1_000), honest])
                #expect(try LedgerAudit.run(on: clean).problems == [])
            }
        }
    }

    static func line(_ micros: Int64) -> Billing_Journal_V1_PricedLine {
        var line = Billing_Journal_V1_PricedLine()
        line.amountMicros = micros
        return line
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
