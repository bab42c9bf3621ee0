import BillingCore
@testable import BillingLedger
import BillingProto
@testable import BillingService
import GRPC
import Testing

/// GetExecutionCost answers a ledger it cannot read now (a reload under way
/// after a failed commit) as the other queries do — UNAVAILABLE, retry —
/// not INTERNAL. (A busy or failing store's error takes the same way:
/// `Refusals.status`, `RefusalStatusTests`.)
@Suite struct ExecutionCostStatusTests {
    @Test func aLedgerReloadingIsUnavailableNotInternal() async throws {
        try await withSQLiteLedger { ledger in
            let metering = MeteringService(ledger: ledger, catalog: try PriceCatalog(
                version: "t", models: [:], toolCallMicrosPerCall: [:], defaultToolCallMicrosPerCall: 500,
                storageMicrosPerGiB: [.knowledgeBase: 100_000, .traces: 20_000]))
            var request = Billing_V1_GetExecutionCostRequest()
            request.accountID = "acct"
            request.runID = "r1"
            await ledger.makeCacheUnreadable()  // as a failed commit's reload does
            do {
                _ = try metering.runCost(request)
                Issue.record("answered")
            } catch let status as GRPCStatus {
                #expect(status.code == .unavailable, "\(status)")
                #expect(status.errorInfo?.reason == "LEDGER_UNAVAILABLE")
            }
        }
    }

    /// A run longer than the chunks its tail is summed in (`runTailChunk`),
    /// partly in SQLite (checkpoints every 50 entries) and partly in
    /// memory, paged at sizes around the page's read chunk (`runPageChunk`): every page, from a fresh service (nothing cached) or after
    /// more debits, carries the whole run's total and count, and the pages
    /// list every debit once, in order.
    @Test func aRunLongerThanTheTailChunksAddsUpOnEveryPage() async throws {
        var configuration = LedgerConfiguration()
        configuration.checkpointEvery = 50
        try await withSQLiteLedger(configuration: configuration) { ledger in
            let catalog = try PriceCatalog(version: "t", models: [:], toolCallMicrosPerCall: [:], defaultToolCallMicrosPerCall: 500,
                                           storageMicrosPerGiB: [.knowledgeBase: 100_000, .traces: 20_000])
            _ = try await ledger.createAccount(id: "acct", plan: .pro, actor: "t")
            let chunk = MeteringService.runTailChunk
            var seqs: [Int64] = []
            var total: Int64 = 0
            func debit(_ range: Range<Int>) async throws {
                let commands = try range.map { n in
                    let items: [LineItem] = [.toolCall(integration: "slack", calls: Int64(n % 7 + 1))]
                    let run = n % 5 == 4 ? "other" : "long"
                    return (DebitCommand(accountID: "acct", workspaceID: "w", agentID: "a", runID: run,
                                         idempotencyKey: "k-\(n)", priced: try catalog.price(items),
                                         fingerprint: DebitCommand.fingerprint(workspaceID: "w", agentID: "a", runID: run, items: items)),
                            PriorLookup(entry: nil, generation: ledger.cache.generation))
                }
                for (outcome, (command, _)) in zip(try await ledger.debitBatch(commands), commands) where command.runID == "long" {
                    guard case .accepted(let record) = outcome else { Issue.record("\(outcome)"); return }
                    seqs.append(record.seq)
                    total += record.accepted.totalMicros
                }
            }
            try await debit(0..<(chunk * 3))
            func pages(_ metering: MeteringService, size: Int32) throws -> [Int64] {
                var listed: [Int64] = []
                var request = Billing_V1_GetExecutionCostRequest()
                request.accountID = "acct"
                request.runID = "long"
                request.pageSize = size
                repeat {
                    let page = try metering.runCost(request)
                    #expect(page.totalMicros == total && page.debitCount == seqs.count)
                    listed += page.debits.map(\.entryID)
                    request.pageToken = page.nextPageToken
                } while !request.pageToken.isEmpty && listed.count <= seqs.count
                return listed
            }
            let pageChunk = Int32(MeteringService.runPageChunk)
            #expect(try pages(MeteringService(ledger: ledger, catalog: catalog), size: 1_000) == seqs)
            let metering = MeteringService(ledger: ledger, catalog: catalog)
            for size in [37, pageChunk - 1, pageChunk, pageChunk + 1, 777] { #expect(try pages(metering, size: size) == seqs) }
            try await debit((chunk * 3)..<(chunk * 4 + 10))  // a tail past the cached summary
            #expect(try pages(metering, size: 50) == seqs)
            #expect(try pages(MeteringService(ledger: ledger, catalog: catalog), size: pageChunk + 1) == seqs)
            #expect(seqs.count > 3 * chunk)
        }
    }

    /// Bad input as such is refused at once, INVALID_ARGUMENT; only a
    /// refusal the catalog decides (a model since removed) is looked up as
    /// a possible retry — bad input looked up so heard UNAVAILABLE while the
    /// ledger reloaded.
    @Test func badInputIsNotLookedUpAsARetry() async throws {
        try await withSQLiteLedger { ledger in
            let metering = MeteringService(ledger: ledger, catalog: try PriceCatalog(
                version: "t", models: [:], toolCallMicrosPerCall: [:], defaultToolCallMicrosPerCall: nil,
                storageMicrosPerGiB: [.knowledgeBase: 100_000, .traces: 20_000]))
            var request = Billing_V1_DebitRequest()
            request.accountID = "acct"
            request.workspaceID = "w"
            request.agentID = "a"
            request.runID = "r"
            request.idempotencyKey = "k"
            var item = Billing_V1_LineItem()
            item.llm.model = "gone"
            item.llm.inputTokens = 10
            request.lineItems = [item]
            guard case .unpriceable(_, let status) = try metering.commandOrUnpriceable(request) else {
                Issue.record("an unknown model was not looked up as a retry")
                return
            }
            #expect(status.errorInfo?.reason == "UNKNOWN_MODEL")
            request.lineItems = []
            #expect(throws: GRPCStatus.self) { _ = try metering.commandOrUnpriceable(request) }
            item.llm.inputTokens = -1
            request.lineItems = [item]
            do {
                _ = try metering.commandOrUnpriceable(request)
                Issue.record("a negative quantity was not refused at once")
            } catch let status as GRPCStatus {
                #expect(status.code == .invalidArgument && status.errorInfo?.reason == "NEGATIVE_QUANTITY")
            }
        }
    }
}
