import BillingCore
import Testing

@Suite struct RejectionTests {
    @Test func casesAreInPrecedenceOrder() {
        #expect(Rejection.allCases == [
            .unknownAccount, .idempotencyKeyReused, .accountPaused,
            .workspaceLimit, .runQuotaExceeded, .insufficientCredits,
        ])
        #expect(Rejection.allCases.sorted() == Rejection.allCases)
        #expect([Rejection.insufficientCredits, .accountPaused, .runQuotaExceeded].min() == .accountPaused)
    }

    @Test(arguments: [
        (Rejection.unknownAccount, "ACCOUNT_NOT_FOUND", StatusCode.notFound, UInt8(1)),
        (.idempotencyKeyReused, "IDEMPOTENCY_KEY_REUSED", .alreadyExists, 2),
        (.accountPaused, "ACCOUNT_PAUSED", .failedPrecondition, 3),
        (.workspaceLimit, "WORKSPACE_LIMIT", .failedPrecondition, 4),
        (.runQuotaExceeded, "RUN_QUOTA_EXCEEDED", .resourceExhausted, 5),
        (.insufficientCredits, "INSUFFICIENT_CREDITS", .failedPrecondition, 6),
    ])
    func reasonCodeAndStableRawValue(_ rejection: Rejection, _ reason: String, _ code: StatusCode, _ raw: UInt8) {
        #expect(rejection.reason == reason)
        #expect(rejection.code == code)
        #expect(rejection.rawValue == raw)
        #expect(Rejection(reason: reason) == rejection)
        #expect(!rejection.message.isEmpty)
    }

    @Test func statusCodesAreTheGRPCWireCodes() {
        #expect(StatusCode.invalidArgument.rawValue == 3)
        #expect(StatusCode.notFound.rawValue == 5)
        #expect(StatusCode.alreadyExists.rawValue == 6)
        #expect(StatusCode.resourceExhausted.rawValue == 8)
        #expect(StatusCode.failedPrecondition.rawValue == 9)
        #expect(Rejection(reason: "NOPE") == nil)
    }
}
