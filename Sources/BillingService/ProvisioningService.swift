public import BillingLedger
import BillingProto
import GRPC

/// Admin.GrantCredits: promotional credits, recorded apart from purchases.
public final class ProvisioningService: Sendable {
    let ledger: Ledger

    public init(ledger: Ledger) {
        self.ledger = ledger
    }

    func register(into router: inout SecuredRouter) {
        router.register("/billing.v1.Admin/GrantCredits") { [self] (request: Billing_V1_GrantCreditsRequest, principal) in
            try await grantCredits(request, actor: principal.auditName)
        }
    }

    /// The largest grant, in micros ($1,000,000, as the largest purchase).
    static let maxGrantMicros: Int64 = 1_000_000_000_000

    func grantCredits(_ request: Billing_V1_GrantCreditsRequest, actor: String) async throws -> Billing_V1_GrantCreditsResponse {
        try requireID(request.accountID, "account_id")
        // At most $1,000,000 a grant, as a purchase: an operator's typo
        // (zeros too many) granted up to Int64.max, and every later grant to
        // the account was then refused as an overflow (session 27).
        guard (1...Self.maxGrantMicros).contains(request.amountMicros) else {
            throw GRPCStatus(.invalidArgument, "amount_micros must be 1 to \(Self.maxGrantMicros) ($1,000,000.00)",
                             reason: "INVALID_AMOUNT", metadata: ["field": "amount_micros"])
        }
        // (Shown in the audit log and by `billing audit`: a line break or a
        // terminal escape in it could forge lines there.)
        try requireText(request.reason, "reason", max: 1024)
        do {
            try requireID(request.idempotencyKey, "idempotency_key", required: false)
            let (seq, balance) = try await ledger.grantCredits(
                accountID: request.accountID, amountMicros: request.amountMicros, kind: "promotional",
                note: request.reason, actor: actor, idempotencyKey: request.idempotencyKey)
            var response = Billing_V1_GrantCreditsResponse()
            response.creditBalanceMicros = balance
            response.grantID = "grant-\(seq)"
            return response
        } catch {
            throw Refusals.status(error)
        }
    }
}
