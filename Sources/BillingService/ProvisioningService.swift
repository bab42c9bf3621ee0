public import BillingLedger
import BillingProto
import GRPC

/// The minimal account path the ledger needs until the account-lifecycle
/// issue lands: Accounts.CreateAccount and Admin.GrantCredits.
public final class ProvisioningService: Sendable {
    let ledger: Ledger

    public init(ledger: Ledger) {
        self.ledger = ledger
    }

    func register(into router: inout SecuredRouter) {
        router.register("/billing.v1.Accounts/CreateAccount") { [self] (request: Billing_V1_CreateAccountRequest, principal) in
            try await createAccount(request, actor: principal.auditName)
        }
        router.register("/billing.v1.Admin/GrantCredits") { [self] (request: Billing_V1_GrantCreditsRequest, principal) in
            try await grantCredits(request, actor: principal.auditName)
        }
    }

    func createAccount(_ request: Billing_V1_CreateAccountRequest, actor: String) async throws -> Billing_V1_CreateAccountResponse {
        try requireID(request.accountID, "account_id")
        let plan: String
        switch request.initialPlan {
        case .unspecified: plan = "trial"
        case .free: plan = "free"
        case .pro: plan = "pro"
        case .enterprise: plan = "enterprise"
        case .UNRECOGNIZED:
            throw GRPCStatus(.invalidArgument, "unknown initial_plan", reason: "INVALID_FIELD", metadata: ["field": "initial_plan"])
        }
        let entry: Billing_Journal_V1_Entry
        do {
            entry = try await ledger.createAccount(id: request.accountID, plan: plan, actor: actor)
        } catch {
            throw Refusals.status(error)
        }
        var response = Billing_V1_CreateAccountResponse()
        response.account.accountID = request.accountID
        response.account.displayName = request.displayName
        response.account.billingEmail = request.billingEmail
        response.account.plan = request.initialPlan == .unspecified ? .pro : request.initialPlan
        response.account.status = plan == "trial" ? .trial : .active
        response.account.createdUnixSeconds = entry.atUnixMicros / 1_000_000
        return response
    }

    func grantCredits(_ request: Billing_V1_GrantCreditsRequest, actor: String) async throws -> Billing_V1_GrantCreditsResponse {
        try requireID(request.accountID, "account_id")
        guard request.amountMicros > 0 else {
            throw GRPCStatus(.invalidArgument, "amount_micros must be positive", reason: "INVALID_AMOUNT")
        }
        guard request.reason.utf8.count <= 1024 else {
            throw GRPCStatus(.invalidArgument, "reason is longer than 1024 bytes", reason: "FIELD_TOO_LONG")
        }
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
