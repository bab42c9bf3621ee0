import BillingCore
@testable import BillingLedger
import BillingProto
import Testing

/// Line items of nothing (zero quantity, zero amount: honest data, accepted)
/// make no usage cell: such cells were kept forever, written into every
/// checkpoint, and a free debit could add 256 of them. Cells of nothing in
/// an older build's checkpoint are dropped at load, so its books are the
/// journal's under these rules (`billing verify` clean).
@Suite struct ZeroUsageTests {
    @Test func linesOfNothingMakeNoCellAndAnOlderCheckpointsAreDropped() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "free", credits: 1_000_000)
        let nothing: [LineItem] = (0..<50).map { .toolCall(integration: "i-\($0)", calls: 0) }
            + [.llm(model: "mini", inputTokens: 0, outputTokens: 0), .storage(kind: .traces, bytes: 0)]
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "k-0", items: nothing)).accepted != nil)
        #expect(await h.ledger.account("acct")?.usage.isEmpty == true)
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "k-1", items: [.toolCall(integration: "slack", calls: 0),
                                                                                       .toolCall(integration: "github", calls: 2)])).accepted != nil)
        #expect(await h.ledger.account("acct")?.usage.keys.map(\.lineKey) == ["tool_call:github"])

        // An older build's checkpoint, with a cell of nothing beside the real one.
        await h.ledger.close()
        let store = h.store.restart()
        var checkpoint = try #require(try store.latestCheckpoint())
        let index = try #require(checkpoint.accounts.firstIndex { $0.accountID == "acct" })
        var empty = Billing_Journal_V1_UsageRollup()
        empty.day = checkpoint.accounts[index].usage[0].day
        empty.agentID = "agent-1"
        empty.lineKey = "tool_call:slack"
        checkpoint.accounts[index].usage.append(empty)
        h.disk.replaceLatestCheckpoint(checkpoint)
        #expect(LedgerState(checkpoint: checkpoint).accounts["acct"]?.usage.count == 1)
        #expect(try LedgerAudit.run(on: store, plans: Fixtures.plans).problems == [])
    }
}
