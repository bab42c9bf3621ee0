import BillingCore
@testable import BillingLedger
import BillingProto
import Foundation
import Testing

/// `JournalRecord` keeps an accepted debit apart from other events; it must
/// still be the entry it was made from, and the ledger's way of applying an
/// accepted debit from a record must change the books exactly as applying
/// the entry does (replay and `billing verify` apply entries).
@Suite struct JournalRecordTests {
    static func accepted(seq: Int64, account: String = "acct-r", key: String, micros: Int64) -> Billing_Journal_V1_Entry {
        var line = Billing_Journal_V1_PricedLine()
        line.key = "tool_call:slack"
        line.amountMicros = micros
        line.quantity = 1
        var debit = Billing_Journal_V1_DebitAccepted()
        debit.accountID = account
        debit.workspaceID = "ws-1"
        debit.agentID = "agent-1"
        debit.runID = "run-1"
        debit.idempotencyKey = key
        debit.requestHash = Data([1, 2, 3])
        debit.lines = [line]
        debit.totalMicros = micros
        debit.fromCreditsMicros = micros
        debit.newRun = seq == 3
        var entry = Billing_Journal_V1_Entry()
        entry.seq = seq
        entry.atUnixMicros = 1_767_225_600_000_000 + seq
        entry.event = .debitAccepted(debit)
        return entry
    }

    static func others() -> [Billing_Journal_V1_Entry] {
        var refused = Billing_Journal_V1_DebitRefused()
        refused.accountID = "acct-r"
        refused.idempotencyKey = "k-refused"
        refused.reason = "INSUFFICIENT_CREDITS"
        var grant = Billing_Journal_V1_CreditsGranted()
        grant.accountID = "acct-r"
        grant.amountMicros = 5
        return [refused, grant].enumerated().map { index, event in
            var entry = Billing_Journal_V1_Entry()
            entry.seq = Int64(index + 1)
            entry.atUnixMicros = 7
            switch event {
            case let refused as Billing_Journal_V1_DebitRefused: entry.event = .debitRefused(refused)
            case let grant as Billing_Journal_V1_CreditsGranted: entry.event = .creditsGranted(grant)
            default: break
            }
            return entry
        } + [{ var empty = Billing_Journal_V1_Entry(); empty.seq = 9; return empty }()]
    }

    /// An entry as a newer build might write it: a field this build does not know.
    static func withUnknownField(_ entry: Billing_Journal_V1_Entry) throws -> Billing_Journal_V1_Entry {
        var entry = entry
        try entry.merge(serializedBytes: [0x98, 0x06, 0x05] as [UInt8])  // field 99, varint 5
        #expect(!entry.unknownFields.data.isEmpty)
        return entry
    }

    @Test func isTheEntryItWasMadeFrom() throws {
        let debit = Self.accepted(seq: 3, key: "k", micros: 42)
        for entry in [debit, try Self.withUnknownField(debit)] + Self.others() {
            let record = JournalRecord(entry)
            #expect(record.entry == entry)
            #expect(try record.entry.serializedBytes() as [UInt8] == entry.serializedBytes())
            #expect(record.event == entry.event)
            #expect(record.seq == entry.seq && record.atUnixMicros == entry.atUnixMicros)
            let isAccepted = if case .debitAccepted? = entry.event { true } else { false }
            let isRefused = if case .debitRefused? = entry.event { true } else { false }
            #expect(record.isAccepted == isAccepted)
            #expect(record.isDebit == (isAccepted || isRefused))
            #expect(record.accepted == (isAccepted ? entry.debitAccepted : Billing_Journal_V1_DebitAccepted()))
        }
    }

    @Test func recordsDifferWhenTheirEventsDo() throws {
        let debit = JournalRecord(Self.accepted(seq: 3, key: "k", micros: 42))
        #expect(debit == JournalRecord(Self.accepted(seq: 3, key: "k", micros: 42)))
        #expect(debit != JournalRecord(Self.accepted(seq: 3, key: "k", micros: 43)))
        #expect(debit != JournalRecord(Self.accepted(seq: 4, key: "k", micros: 42)))
        #expect(debit != JournalRecord(try Self.withUnknownField(Self.accepted(seq: 3, key: "k", micros: 42))))
        let refusal = JournalRecord(Self.others()[0])
        #expect(refusal != JournalRecord(seq: refusal.seq, atUnixMicros: refusal.atUnixMicros, event: nil))
    }

    /// A state with one Pro account created at seq 1 and granted credits at seq 2.
    static func state() throws -> LedgerState {
        var created = Billing_Journal_V1_AccountCreated()
        created.accountID = "acct-r"
        created.plan = "pro"
        var grant = Billing_Journal_V1_CreditsGranted()
        grant.accountID = "acct-r"
        grant.amountMicros = 1_000
        var state = LedgerState(plans: Fixtures.plans)
        try state.apply(JournalRecord(seq: 1, atUnixMicros: 1_767_225_600_000_000, event: .accountCreated(created)))
        try state.apply(JournalRecord(seq: 2, atUnixMicros: 1_767_225_600_000_001, event: .creditsGranted(grant)))
        return state
    }

    @Test func applyingARecordChangesTheBooksAsApplyingItsEntry() throws {
        var fromRecords = try Self.state()
        var fromEntries = try Self.state()
        for (offset, micros) in [30, 45, 12].enumerated() {
            let entry = Self.accepted(seq: Int64(3 + offset), key: "k-\(offset)", micros: Int64(micros))
            try fromRecords.apply(JournalRecord(entry))
            try fromEntries.apply(entry)
        }
        #expect(fromRecords == fromEntries)
        #expect(fromRecords.lastSeq == 5)
        let book = try #require(fromRecords.accounts["acct-r"])
        #expect(book.balance == 1_000 - 87)
        #expect(book.usage.values.reduce(0) { $0 + $1.amount } == 87)
    }

    @Test func aRecordThatCannotApplyChangesNothing() throws {
        let before = try Self.state()
        var state = before
        #expect(throws: LedgerState.ApplyError.outOfOrder(expected: 3, got: 4)) {
            try state.apply(JournalRecord(Self.accepted(seq: 4, key: "k", micros: 1)))
        }
        #expect(throws: LedgerState.ApplyError.unknownAccount(seq: 3, "nobody")) {
            try state.apply(JournalRecord(Self.accepted(seq: 3, account: "nobody", key: "k", micros: 1)))
        }
        var unbalanced = Self.accepted(seq: 3, key: "k", micros: 10)
        unbalanced.debitAccepted.totalMicros = 11
        #expect(throws: LedgerState.ApplyError.self) { try state.apply(JournalRecord(unbalanced)) }
        #expect(state == before)
    }
}

/// How a debit the state cannot apply is refused (Debit and Quote alike).
@Suite struct LedgerRefusalTests {
    @Test func onlyAnOverflowIsTheCallersMistake() {
        #expect(Ledger.refusal(.overflow(seq: 3))
            == .invalid("the account's totals would exceed the largest amount or quantity the ledger keeps"))
        for error: LedgerState.ApplyError in [.outOfOrder(expected: 4, got: 6), .unknownAccount(seq: 4, "acct"),
                                              .inconsistent(seq: 4, "no such run")] {
            guard case .internalFault(let why) = Ledger.refusal(error) else {
                Issue.record("\(error) is not an internal fault")
                continue
            }
            #expect(why.contains("\(error)"))
        }
    }
}
