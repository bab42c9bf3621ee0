import BillingCore
import BillingLedger
import BillingProto
import Foundation
import SwiftProtobuf
import Testing
@testable import BillingSQLite

/// The hand-written debit encoding writes exactly SwiftProtobuf's bytes.
@Suite struct JournalEncodingTests {
    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func debitsEncodeByteForByteAsSwiftProtobufDoes(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<500 {
            let entry = Self.randomDebit(&rng)
            let expected: [UInt8] = try entry.serializedBytes()
            let actual = try JournalEncoding.bytes(entry)
            #expect(actual == expected, "seed \(seed): \(entry)")
            #expect(try Billing_Journal_V1_Entry(serializedBytes: actual) == entry)
        }
    }

    /// A debit's body length takes one, two or three bytes: the two-byte
    /// case is widened in place, the three-byte one through a buffer. Bodies
    /// of every length around 128 and 16,384 bytes (a long idempotency key).
    @Test func bodiesAroundTheVarintLengthBoundaries() throws {
        var entry = Billing_Journal_V1_Entry()
        entry.seq = 7
        entry.atUnixMicros = 1_700_000_000_000_000
        var debit = Billing_Journal_V1_DebitAccepted()
        debit.accountID = "acct"
        debit.runID = "run"
        debit.requestHash = Data(repeating: 0xAB, count: 32)
        debit.totalMicros = 5
        debit.fromCreditsMicros = 5
        entry.debitAccepted = debit
        let base = (try entry.debitAccepted.serializedBytes() as [UInt8]).count
        var lengths = Set<Int>()
        for target in [127, 128, 16_383, 16_384] {
            for body in target - 4...target + 4 where body - base - 3 > 0 {
                debit.idempotencyKey = String(repeating: "k", count: body - base - 3)
                entry.debitAccepted = debit
                let expected: [UInt8] = try entry.serializedBytes()
                #expect(try JournalEncoding.bytes(entry) == expected, "key of \(debit.idempotencyKey.count) bytes")
                lengths.insert((try entry.debitAccepted.serializedBytes() as [UInt8]).count)
            }
        }
        #expect(lengths.isSuperset(of: [127, 128, 16_383, 16_384]), "\(lengths.sorted())")
    }

    @Test func otherEntriesAndUnknownFieldsGoThroughSwiftProtobuf() throws {
        var rng = SplitMix64(seed: 9)
        var entry = Self.randomDebit(&rng)
        // An unknown field (number 99, varint 5) on the debit: kept verbatim.
        var debit = entry.debitAccepted
        try debit.merge(serializedBytes: [0x98, 0x06, 0x05] as [UInt8])
        entry.debitAccepted = debit
        #expect(try JournalEncoding.bytes(entry) == (try entry.serializedBytes() as [UInt8]))
        // One on the entry itself (a newer build's field): kept too, in a row of its own and in a row of debits.
        var outer = Self.randomDebit(&rng)
        outer.seq = 41
        try outer.merge(serializedBytes: [0x98, 0x06, 0x05] as [UInt8])
        #expect(try JournalEncoding.bytes(outer) == (try outer.serializedBytes() as [UInt8]))
        var next = Self.randomDebit(&rng)
        next.seq = outer.seq + 1
        let rows = try JournalEncoding.rows([outer, next].map(JournalRecord.init))
        #expect(rows.count == 1 && rows[0].entries == 2)
        var decoded: [Billing_Journal_V1_Entry] = []
        try JournalDecoding.forEachEntry(inDebitsRow: rows[0].body, first: outer.seq, count: 2) { decoded.append($0) }
        #expect(decoded == [outer, next])
        var refused = Billing_Journal_V1_DebitRefused()
        refused.accountID = "a"
        refused.reason = "INSUFFICIENT_CREDITS"
        entry.event = .debitRefused(refused)
        #expect(try JournalEncoding.bytes(entry) == (try entry.serializedBytes() as [UInt8]))
    }

    static func randomDebit(_ rng: inout SplitMix64) -> Billing_Journal_V1_Entry {
        func text() -> String { rng.wireText() }
        func number() -> Int64 { rng.wireNumber() }
        var debit = Billing_Journal_V1_DebitAccepted()
        debit.accountID = text()
        debit.workspaceID = text()
        debit.agentID = text()
        debit.runID = text()
        debit.idempotencyKey = text()
        debit.requestHash = Data((0..<[0, 32, 200][rng.next(below: 3)]).map { _ in UInt8(rng.next(below: 256)) })
        debit.lines = (0..<rng.next(below: 6)).map { _ in
            var line = Billing_Journal_V1_PricedLine()
            line.key = text()
            line.amountMicros = number()
            line.quantity = number()
            var item = Billing_V1_LineItem()
            switch rng.next(below: 5) {
            case 0:
                var llm = Billing_V1_LlmUsage()
                llm.model = text()
                llm.inputTokens = number()
                llm.outputTokens = number()
                item.llm = llm
            case 1:
                var call = Billing_V1_ToolCallUsage()
                call.integration = text()
                call.calls = number()
                item.toolCall = call
            case 2:
                var storage = Billing_V1_StorageUsage()
                storage.kind = [.unspecified, .knowledgeBase, .traces][rng.next(below: 3)]
                storage.bytes = number()
                item.storage = storage
            case 3:
                item = Billing_V1_LineItem()  // set, with no kind
            default:
                line.clearItem()
                return line
            }
            line.item = item
            return line
        }
        debit.totalMicros = number()
        debit.fromCreditsMicros = number()
        debit.overageMicros = number()
        debit.catalogVersion = text()
        debit.newRun = rng.next(below: 2) == 0
        debit.balanceAfterMicros = number()
        var entry = Billing_Journal_V1_Entry()
        entry.seq = number()
        entry.atUnixMicros = number()
        entry.debitAccepted = debit
        return entry
    }
}
