import BillingLedger
import BillingProto
import GRPC
@testable import BillingService
import Testing

/// AdvanceClock moves ten years a call at most, and never past 9999-12-31
/// 23:59:59 UTC: microseconds of later instants would overflow the ledger's
/// clock arithmetic (29,000 calls would have crashed the server).
@Suite struct TestClockBoundTests {
    @Test func theClockStopsAtTheEndOfYear9999() async throws {
        let clock = TestClock(startMicros: 1_800_000_000 * 1_000_000)
        try await withSQLiteLedger(clock: clock) { ledger in
            let service = AccountsService(ledger: ledger)
            func advance(seconds: Int64? = nil, to: Int64? = nil) async throws -> Int64 {
                var request = Billing_V1_AdvanceClockRequest()
                if let seconds { request.seconds = seconds }
                if let to { request.toUnixSeconds = to }
                return try await service.advanceClock(request, actor: "test").nowUnixSeconds
            }
            let last = AccountView.latestClockUnix
            var now = ledger.currentUnix
            for _ in 0..<1_000 where now + AccountView.maxClockStep <= last {
                now = try await advance(seconds: AccountView.maxClockStep)
            }
            #expect(last - now < AccountView.maxClockStep)
            await #expect(throws: GRPCStatus.self) { _ = try await advance(to: last + 1) }
            #expect(try await advance(to: last) == last)
            await #expect(throws: GRPCStatus.self) { _ = try await advance(seconds: 1) }
            #expect(ledger.currentUnix == last)
        }
    }
}
