import BillingCore
import BillingProto
import Foundation
import SwiftProtobuf
import Testing
@testable import BillingSQLite

/// The hand-written debit decoding gives what SwiftProtobuf gives, and
/// leaves every other shape to it.
@Suite struct JournalDecodingTests {
    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func debitsDecodeAsSwiftProtobufDecodesThem(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<500 {
            let entry = JournalEncodingTests.randomDebit(&rng)
            let bytes = try JournalEncoding.bytes(entry)
            let handDecoded = try #require(JournalDecoding.debit(bytes) as Billing_Journal_V1_Entry?, "seed \(seed): the hand path reads \(entry)")
            #expect(handDecoded == entry, "seed \(seed)")
            #expect(handDecoded == (try Billing_Journal_V1_Entry(serializedBytes: bytes)))
            #expect(try JournalDecoding.entry(bytes) == entry)
        }
    }

    /// Shapes the hand path does not read go to SwiftProtobuf, which gives
    /// the same message as ever (or the same error).
    @Test func otherShapesGoToSwiftProtobuf() throws {
        var rng = SplitMix64(seed: 11)
        let debit = JournalEncodingTests.randomDebit(&rng)
        let written = try JournalEncoding.bytes(debit)
        var refused = Billing_Journal_V1_Entry()
        refused.seq = 3
        refused.debitRefused.accountID = "acct"
        let cases: [(String, [UInt8])] = [
            ("another event", try refused.serializedBytes()),
            ("an unknown field on the entry", written + [0x98, 0x06, 0x05]),
            ("the seq twice (the last one wins)", written + [0x08, 0x07]),
            ("an empty body", []),
            ("a line item's usage twice (merged)", Self.itemWithUsageTwice),
        ]
        for (name, bytes) in cases {
            #expect(JournalDecoding.debit(bytes) == nil, "\(name)")
            #expect(try JournalDecoding.entry(bytes) == (try Billing_Journal_V1_Entry(serializedBytes: bytes)), "\(name)")
        }
        // Malformed input: SwiftProtobuf's error, not a wrong entry.
        var badText = Billing_Journal_V1_Entry()
        badText.debitAccepted.accountID = "x"
        var badBytes: [UInt8] = try badText.serializedBytes()
        badBytes[badBytes.count - 1] = 0xFF  // "x" -> an invalid UTF-8 byte
        for bytes in [badBytes, Array(written.dropLast())] {
            #expect(JournalDecoding.debit(bytes) == nil)
            #expect(throws: (any Error).self) { try JournalDecoding.entry(bytes) }
        }
    }

    /// An entry whose one debit line's item holds its llm usage twice
    /// (SwiftProtobuf merges the two).
    static let itemWithUsageTwice: [UInt8] = {
        let llm: [UInt8] = [0x0A, 0x01, 0x6E]  // model "n"
        let item = [0x0A, UInt8(llm.count)] + llm + [0x0A, UInt8(llm.count)] + llm
        let line = [0x0A, UInt8(item.count)] + item
        let debit = [0x3A, UInt8(line.count)] + line
        return [0x62, UInt8(debit.count)] + debit
    }()

    /// A damaged row's seq or entry count near the ends of Int64 is corrupt,
    /// not an arithmetic trap.
    @Test func rowBoundsAtTheEndsOfInt64AreCorrupt() throws {
        var entry = Billing_Journal_V1_Entry()
        entry.seq = .max
        entry.event = .debitAccepted(Billing_Journal_V1_DebitAccepted())
        let body = try JournalEncoding.bytes(entry)
        #expect(throws: SQLiteStoreError.self) {
            try JournalDecoding.forEachEntry(inDebitsRow: body, first: .max, count: 2) { _ in }
        }
        #expect(throws: SQLiteStoreError.self) {
            try JournalDecoding.forEachEntry(inDebitsRow: body, first: 1, count: -1) { _ in }
        }
        #expect(throws: SQLiteStoreError.self) {
            try JournalDecoding.entry(.max, inDebitsRow: body, first: .min, count: 2)
        }
        #expect(!JournalDecoding.holds(.max, first: .min, count: 2))
        #expect(JournalDecoding.holds(.max, first: .max - 1, count: 2))
        #expect(!JournalDecoding.holds(.max - 2, first: .max - 1, count: 2))
    }
}
