import BillingCore
@testable import BillingLedger
import BillingProto
import SwiftProtobuf
import Testing

/// A checkpoint serialized straight from the books (`encodedCheckpoint`) is
/// SwiftProtobuf's serialization of `checkpoint(writtenAtMicros:)`'s message,
/// and decodes to it, on books filled with extremes: the largest and
/// smallest amounts, negative days, empty and non-ASCII texts, an account
/// larger than 16 KiB (a length of three varint bytes), thousands of runs.
@Suite struct CheckpointBytesTests {
    static let extremes: [Int64] = [0, 1, -1, 127, 128, 16_383, 16_384, .max, .min]

    @Test(arguments: [1, 2, 3] as [UInt64])
    func booksFullOfExtremesEncodeAsSwiftProtobufDoes(seed: UInt64) async throws {
        var rng = SplitMix64(seed: seed)
        func number() -> Int64 {
            rng.next(below: 3) == 0 ? Self.extremes[rng.next(below: Self.extremes.count)] : Int64(bitPattern: rng.next())
        }
        func text(_ longest: Int) -> String {
            let alphabet: [Character] = ["a", "Z", "-", "é", "€", "😀", " "]
            return String((0..<rng.next(below: longest + 1)).map { _ in alphabet[rng.next(below: alphabet.count)] })
        }
        let h = try Harness()
        for (index, plan) in ["pro", "free", "pro", "enterprise"].enumerated() {
            try await h.openAccount("acct-\(index)-\(text(6))", plan: plan, credits: 1_000)
        }
        var state = await h.ledger.snapshot
        for id in state.accounts.keys {
            var book = state.accounts[id]!
            book.balance = number()
            book.overage = number()
            book.granted = number()
            book.debitedFromCredits = number()
            book.periodStart = number()
            book.displayName = text(20)
            book.billingEmail = text(20)
            book.workspaces = Set((0..<rng.next(below: 4)).map { _ in text(8) })  // "" among them, sometimes
            book.runsInPeriod = Set((0..<rng.next(below: 3_000)).map { _ in number() })
            for _ in 0..<rng.next(below: 40) {
                let agent = rng.next(below: 10) == 0 ? String(repeating: "ü", count: 9_000) : text(12)
                book.usage[UsageKey(day: number(), agentID: agent, lineKey: "llm:\(text(10))")] =
                    UsageCell(amount: number(), quantity: number(), inputTokens: number(), outputTokens: number())
            }
            for _ in 0..<rng.next(below: 4) { book.grantKeys[text(16)] = GrantRecord(seq: number(), amount: number(), note: rng.next(below: 2) == 0 ? nil : text(8)) }
            for _ in 0..<rng.next(below: 3) {
                book.requestKeys["plan:\(text(8))"] = RequestKeyRecord(request: text(30), seq: number(), invoiceSequence: number(),
                                                                      effect: Int32(truncatingIfNeeded: number()), chargeID: text(10))
            }
            book.invoiceSequences = (0..<rng.next(below: 5)).map { _ in number() }
            state.accounts[id] = book
        }
        state.testClockUnix = number()
        let written = number()
        let encoded = try state.encodedCheckpoint(writtenAtMicros: written)
        let message = state.checkpoint(writtenAtMicros: written)
        #expect(encoded.bytes == (try message.serializedBytes() as [UInt8]), "seed \(seed)")
        #expect(try Billing_Journal_V1_Checkpoint(serializedBytes: encoded.bytes) == message)
        #expect(encoded.seq == state.lastSeq && encoded.writtenUnixMicros == written && encoded.accounts == state.accounts.count)
        // The books themselves come back from the bytes (what the message holds of them).
        let restored = LedgerState(checkpoint: try Billing_Journal_V1_Checkpoint(serializedBytes: encoded.bytes), plans: Fixtures.plans)
        for (id, book) in state.accounts {
            let back = try #require(restored.accounts[id])
            #expect(back.balance == book.balance && back.usage == book.usage && back.runsInPeriod == book.runsInPeriod
                    && back.workspaces == book.workspaces && back.grantKeys == book.grantKeys && back.requestKeys == book.requestKeys
                    && back.invoiceSequences == book.invoiceSequences, "\(id)")
        }
        await h.ledger.close()
    }
}
