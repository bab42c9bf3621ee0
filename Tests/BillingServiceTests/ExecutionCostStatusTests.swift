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
}
