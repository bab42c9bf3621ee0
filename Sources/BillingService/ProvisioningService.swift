public import BillingLedger
import BillingProto
public import GRPC

/// The minimal account path the ledger needs until the account-lifecycle
/// issue lands: Accounts.CreateAccount and Admin.GrantCredits.
public final class ProvisioningService: Sendable {
    let ledger: Ledger

    public init(ledger: Ledger) {
        self.ledger = ledger
    }

    public func register(into router: inout GRPCRouter) {
        router.register("/billing.v1.Accounts/CreateAccount") { [self] (request: Billing_V1_CreateAccountRequest, _) in
            try await createAccount(request)
        }
        router.register("/billing.v1.Admin/GrantCredits") { [self] (request: Billing_V1_GrantCreditsRequest, _) in
            try await grantCredits(request)
        }
    }

    func createAccount(_ request: Billing_V1_CreateAccountRequest) async throws -> Billing_V1_CreateAccountResponse {
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
            entry = try await ledger.createAccount(id: request.accountID, plan: plan, actor: "api")
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

    func grantCredits(_ request: Billing_V1_GrantCreditsRequest) async throws -> Billing_V1_GrantCreditsResponse {
        try requireID(request.accountID, "account_id")
        guard request.amountMicros > 0 else {
            throw GRPCStatus(.invalidArgument, "amount_micros must be positive", reason: "INVALID_AMOUNT")
        }
        guard request.reason.utf8.count <= 1024 else {
            throw GRPCStatus(.invalidArgument, "reason is longer than 1024 bytes", reason: "FIELD_TOO_LONG")
        }
        do {
            let (entry, balance) = try await ledger.grantCredits(
                accountID: request.accountID, amountMicros: request.amountMicros, kind: "promotional",
                note: request.reason, actor: "admin")
            var response = Billing_V1_GrantCreditsResponse()
            response.creditBalanceMicros = balance
            response.grantID = "grant-\(entry.seq)"
            return response
        } catch {
            throw Refusals.status(error)
        }
    }
}
