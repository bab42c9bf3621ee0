import BillingLedger
import BillingProto
@testable import BillingService
import GRPC
import Testing

/// A GetUsage breakdown too large for a stock client (4 MiB) is refused
/// with a reason to narrow the query, not built and then dropped by the
/// client; the same cells summed into fewer buckets are answered.
@Suite struct UsageSizeTests {
    @Test func aBreakdownPastTheLimitIsRefusedAndFewerGroupsAnswer() throws {
        var byKey: [UsageKey: UsageCell] = [:]
        for agent in 0..<100 {
            for integration in 0..<100 {
                byKey[UsageKey(day: 20_000, agentID: "agent-\(agent)", lineKey: "tool_call:integration-\(integration)")] =
                    UsageCell(amount: 500, quantity: 1)
            }
        }
        let cells = Array(byKey)
        var request = Billing_V1_GetUsageRequest()
        request.accountID = "acct"
        let limit = 100_000  // ~10,000 buckets of ~80 bytes pass it; 100 do not
        let both = MeteringService.UsageQuery(fromDay: 20_000, toDay: 20_000, groups: [.agent, .lineItem])
        do {
            _ = try MeteringService.usageResponse(cells, request, both, maxUsageBytes: limit)
            Issue.record("answered")
        } catch {
            #expect(error.code == .resourceExhausted)
            #expect(error.errorInfo?.reason == "USAGE_TOO_LARGE")
        }
        let byAgent = MeteringService.UsageQuery(fromDay: 20_000, toDay: 20_000, groups: [.agent])
        let answer = try MeteringService.usageResponse(cells, request, byAgent, maxUsageBytes: limit)
        #expect(answer.buckets.count == 100 && answer.totalMicros == 10_000 * 500)
        // At the default limit (2 MiB) both dimensions fit.
        #expect(try MeteringService.usageResponse(cells, request, both).buckets.count == 10_000)
    }
}
