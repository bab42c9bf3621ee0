@testable import BillingLedger
import BillingCore
import Testing

/// A line's kind is read from its key's bytes: an integration whose name
/// begins with a combining mark ("\u{301}x") made `tool_call:` and the mark
/// one character, and `String.hasPrefix("tool_call:")` was false — the
/// calls counted as no kind, outside the lifetime sums that bound a usage
/// cell (a zero-priced such integration could then overflow one: a trap).
@Suite struct UsageTotalsKindTests {
    @Test func aLineKeyIsClassifiedByItsBytes() throws {
        let odd = LineItem.toolCall(integration: "\u{301}x", calls: 3)
        #expect(!odd.key.hasPrefix("tool_call:"))  // (what String comparison makes of it)
        let totals = try #require(UsageTotals().adding(lineKey: odd.key, amount: 0, quantity: 3, inputTokens: 0, outputTokens: 0))
        #expect(totals.toolCalls == 3)
        let storage = LineItem.storage(kind: .traces, bytes: 10)
        #expect(UsageTotals().adding(lineKey: storage.key, amount: 0, quantity: 10, inputTokens: 0, outputTokens: 0)?.storageBytes == 10)
    }

    /// So its quantity is bounded like any tool call's: a total past Int64
    /// is refused by the sums checked before a debit is applied (nil here),
    /// not added into a usage cell that then overflows.
    @Test func callsOfSuchAnIntegrationCannotPassInt64() throws {
        let near = try #require(UsageTotals().adding(lineKey: LineItem.toolCall(integration: "\u{301}x", calls: .max).key,
                                                     amount: 0, quantity: .max, inputTokens: 0, outputTokens: 0))
        #expect(near.adding(lineKey: LineItem.toolCall(integration: "\u{301}x", calls: 1).key, amount: 0, quantity: 1,
                            inputTokens: 0, outputTokens: 0) == nil)
    }
}
