public import BillingLedger
import BillingCore
import BillingProto
import GRPC

/// billing.v1.Accounts: sign-up, the Overview tab, the plan table, plan
/// changes. Every change goes through the ledger's journal.
public final class AccountsService: Sendable {
    let ledger: Ledger

    public init(ledger: Ledger) {
        self.ledger = ledger
    }

    func register(into router: inout SecuredRouter) {
        router.register("/billing.v1.Accounts/CreateAccount") { [self] (request: Billing_V1_CreateAccountRequest, principal) in
            try await createAccount(request, actor: principal.auditName)
        }
        router.register("/billing.v1.Accounts/GetAccount") { [self] (request: Billing_V1_GetAccountRequest, principal) in
            try requireID(request.accountID, "account_id")
            return try await Refusals.mapping {
                var response = Billing_V1_GetAccountResponse()
                response.account = try await account(request.accountID, operatorView: principal.isService)
                return response
            }
        }
        router.register("/billing.v1.Accounts/GetBanners") { [self] (request: Billing_V1_GetBannersRequest, principal) in
            try requireID(request.accountID, "account_id")
            return try await Refusals.mapping {
                let book = try await ledger.currentBook(request.accountID)
                var response = Billing_V1_GetBannersResponse()
                let banners = AccountView.banners(book, now: ledger.currentUnix, plans: await ledger.plans)
                response.banners = Authenticator.mayReadBilling(principal) ? banners : banners.map(AccountView.withoutBillingDetails)
                return response
            }
        }
        router.register("/billing.v1.Accounts/ListPlans") { [self] (request: Billing_V1_ListPlansRequest, _) in
            try await listPlans(request)
        }
        router.register("/billing.v1.Accounts/ChangePlan") { [self] (request: Billing_V1_ChangePlanRequest, principal) in
            try await changePlan(request, actor: principal.auditName, operatorView: principal.isService)
        }
        router.register("/billing.v1.Accounts/CancelPendingChange") { [self] (request: Billing_V1_CancelPendingChangeRequest, principal) in
            try requireID(request.accountID, "account_id")
            return try await Refusals.mapping {
                try await ledger.cancelPendingChange(accountID: request.accountID, actor: principal.auditName)
                var response = Billing_V1_CancelPendingChangeResponse()
                response.account = try await account(request.accountID, operatorView: principal.isService)
                return response
            }
        }
        router.register("/billing.v1.Admin/SetEnterpriseContract") { [self] (request: Billing_V1_SetEnterpriseContractRequest, principal) in
            try requireID(request.accountID, "account_id")
            // Left out, the terms would be all zero: no price, and usage not
            // invoiced at all (a 0 rate) — free, unlimited use by omission.
            guard request.hasContract else {
                throw GRPCStatus(.invalidArgument, "contract is required", reason: "MISSING_FIELD", metadata: ["field": "contract"])
            }
            guard request.contract.hasUsageRateBasisPoints else {
                throw GRPCStatus(.invalidArgument,
                                 "contract.usage_rate_basis_points is required (10000 = list price; 0 = usage not invoiced)",
                                 reason: "MISSING_FIELD", metadata: ["field": "contract.usage_rate_basis_points"])
            }
            try requireText(request.contract.contractReference, "contract.contract_reference", max: 200)
            try requireText(request.contract.notes, "contract.notes", max: 4096)
            guard request.contract.customInvoiceLines.count <= Billing_V1_SetEnterpriseContractRequest.maxCustomLines else {
                throw Billing_V1_SetEnterpriseContractRequest.tooManyCustomLines  // (counted on the wire first: WireCounted)
            }
            for (index, line) in request.contract.customInvoiceLines.enumerated() {
                let field = "contract.custom_invoice_lines[\(index)].description"
                guard line.description_p.contains(where: { !$0.isWhitespace }) else {
                    throw GRPCStatus(.invalidArgument, "\(field) is required (it is printed on the invoice)",
                                     reason: "MISSING_FIELD", metadata: ["field": field])
                }
                try requireText(line.description_p, field, max: 200)
            }
            // The agreement's dates are a record (not enforced), but a date:
            // 1970 to 9999, the end not before the start (any Int64 was kept).
            let latest = AccountView.endOfYear9999Unix
            guard (0...latest).contains(request.contract.startUnixSeconds) else {
                throw GRPCStatus(.invalidArgument, "contract.start_unix_seconds must be 0 to \(latest)",
                                 reason: "INVALID_FIELD", metadata: ["field": "contract.start_unix_seconds"])
            }
            guard request.contract.endUnixSeconds == 0
                    || (request.contract.startUnixSeconds...latest).contains(request.contract.endUnixSeconds) else {
                throw GRPCStatus(.invalidArgument, "contract.end_unix_seconds must be 0 (open-ended) or from the start to \(latest)",
                                 reason: "INVALID_FIELD", metadata: ["field": "contract.end_unix_seconds"])
            }
            return try await Refusals.mapping {
                let charge = try await ledger.setEnterpriseContract(accountID: request.accountID, terms: request.contract,
                                                                     actor: principal.auditName)
                var response = Billing_V1_SetEnterpriseContractResponse()
                response.account = try await account(request.accountID, operatorView: principal.isService)
                if let charge { response.charge = charge }
                return response
            }
        }
        router.register("/billing.v1.Admin/AdvanceClock") { [self] (request: Billing_V1_AdvanceClockRequest, principal) in
            try await advanceClock(request, actor: principal.auditName)
        }
    }

    func createAccount(_ request: Billing_V1_CreateAccountRequest, actor: String) async throws -> Billing_V1_CreateAccountResponse {
        try requireID(request.accountID, "account_id")
        try requireText(request.displayName, "display_name", max: 1024)
        try requireEmail(request.billingEmail, "billing_email")
        let plan: Plan?
        switch request.initialPlan {
        case .unspecified: plan = nil
        case .UNRECOGNIZED:
            throw GRPCStatus(.invalidArgument, "unknown initial_plan", reason: "INVALID_FIELD", metadata: ["field": "initial_plan"])
        default: plan = LedgerState.plan(request.initialPlan)
        }
        return try await Refusals.mapping {
            _ = try await ledger.createAccount(id: request.accountID, plan: plan, displayName: request.displayName,
                                               billingEmail: request.billingEmail, actor: actor)
            var response = Billing_V1_CreateAccountResponse()
            response.account = try await account(request.accountID, operatorView: true)  // (service keys only)
            return response
        }
    }

    /// The account as its caller may see it: a contract's operator fields
    /// (notes, start and end dates) only for a service key
    /// (`operatorView`), never for a customer's user. (No default: session
    /// 29, three answers left it out and showed service keys the redacted
    /// contract.)
    func account(_ id: String, operatorView: Bool) async throws -> Billing_V1_Account {
        let book = try await ledger.currentBook(id)
        var account = AccountView.account(book, now: ledger.currentUnix, plans: await ledger.plans)
        if !operatorView, account.hasEnterpriseContract {
            account.enterpriseContract.notes = ""
            account.enterpriseContract.startUnixSeconds = 0
            account.enterpriseContract.endUnixSeconds = 0
        }
        return account
    }

    func listPlans(_ request: Billing_V1_ListPlansRequest) async throws -> Billing_V1_ListPlansResponse {
        try requireID(request.accountID, "account_id", required: false)
        var current: Plan?
        if !request.accountID.isEmpty {
            current = try await Refusals.mapping { try await ledger.currentBook(request.accountID).lifecycle.plan }
        }
        var response = Billing_V1_ListPlansResponse()
        response.plans = AccountView.planTable(await ledger.plans, current: current)
        return response
    }

    func changePlan(_ request: Billing_V1_ChangePlanRequest, actor: String, operatorView: Bool) async throws -> Billing_V1_ChangePlanResponse {
        try requireID(request.accountID, "account_id")
        try requireID(request.idempotencyKey, "idempotency_key", required: false)
        guard let target = LedgerState.plan(request.toPlan) else {
            throw GRPCStatus(.invalidArgument, "to_plan must be PLAN_FREE, PLAN_PRO or PLAN_ENTERPRISE",
                             reason: "INVALID_FIELD", metadata: ["field": "to_plan"])
        }
        return try await Refusals.mapping {
            let result = try await ledger.changePlan(accountID: request.accountID, to: target, key: request.idempotencyKey, actor: actor)
            var response = Billing_V1_ChangePlanResponse()
            response.effect = result.effect
            if let invoice = result.invoice { response.invoice = invoice }
            if let charge = result.charge { response.charge = charge }
            response.account = try await account(request.accountID, operatorView: operatorView)
            return response
        }
    }

    func advanceClock(_ request: Billing_V1_AdvanceClockRequest, actor: String) async throws -> Billing_V1_AdvanceClockResponse {
        let now = ledger.currentUnix
        let target: Int64
        var seconds: Int64?
        switch request.target {
        case .seconds(let asked)?:
            guard asked >= 0 else {
                throw GRPCStatus(.invalidArgument, "seconds must be >= 0", reason: "INVALID_FIELD", metadata: ["field": "seconds"])
            }
            seconds = asked
            target = now.addingReportingOverflow(asked).overflow ? .max : now + asked
        case .toUnixSeconds(let to)?:
            target = to
        case nil:
            seconds = 0  // (where the clock stands in the ledger's turn)
            target = now
        }
        // The field the caller set, named in refusals.
        let field = if case .toUnixSeconds? = request.target { "to_unix_seconds" } else { "seconds" }
        // Ten years of transitions at most per call: every loop is bounded.
        guard target <= now + AccountView.maxClockStep else {
            throw GRPCStatus(.invalidArgument, "the test clock moves at most 10 years per call",
                             reason: "INVALID_FIELD", metadata: ["field": field])
        }
        // Dates past 9999-12-31 are not dates the service prints or
        // computes with (microseconds of them overflow long after).
        guard target <= AccountView.latestClockUnix else {
            throw GRPCStatus(.invalidArgument, "the test clock goes no later than 9999-12-31 (unix \(AccountView.latestClockUnix))",
                             reason: "INVALID_FIELD", metadata: ["field": field])
        }
        return try await Refusals.mapping {
            let (previous, current, transitions): (Int64, Int64, [ClockTransition])
            do {
                // `seconds` counts from the clock as it stands in the ledger's
                // turn (another advance may move it before then).
                (previous, current, transitions) = if let seconds {
                    try await ledger.advanceClock(by: seconds, latestUnix: AccountView.latestClockUnix, actor: actor)
                } else {
                    try await ledger.advanceClock(to: target, actor: actor)
                }
            } catch let refused as AccountRequestRefused where ["CLOCK_BACKWARDS", "INVALID_FIELD"].contains(refused.reason) {
                // (Checked in the ledger's turn: the clock may have moved since `now`.)
                throw GRPCStatus(.invalidArgument, refused.message, reason: refused.reason, metadata: ["field": field])
            }
            var response = Billing_V1_AdvanceClockResponse()
            response.previousUnixSeconds = previous
            response.nowUnixSeconds = current
            response.transitions = transitions.map { transition in
                var message = Billing_V1_ClockTransition()
                message.atUnixSeconds = transition.at
                message.accountID = transition.accountID
                message.kind = transition.kind
                message.description_p = transition.description
                return message
            }
            return response
        }
    }
}

/// Free text fields: bounded, no control characters.
func requireText(_ value: String, _ field: String, max: Int) throws(GRPCStatus) {
    guard value.utf8.count <= max else {
        throw GRPCStatus(.invalidArgument, "\(field) is longer than \(max) bytes", reason: "FIELD_TOO_LONG", metadata: ["field": field])
    }
    guard !value.unicodeScalars.contains(where: isDisallowedInText) else {
        throw GRPCStatus(.invalidArgument, "\(field) contains control or direction-override characters", reason: "INVALID_FIELD",
                         metadata: ["field": field])
    }
}

/// An address invoices are printed and sent to: none (empty), or
/// `local@domain` — one "@", no spaces, a domain with a dot inside it. Not
/// a full RFC 5322 parser: what it refuses ("not-an-email", " a@b.com ")
/// could not be delivered to, and nothing can change the address later.
func requireEmail(_ value: String, _ field: String) throws(GRPCStatus) {
    try requireText(value, field, max: 320)
    guard !value.isEmpty else { return }
    let parts = value.split(separator: "@", omittingEmptySubsequences: false)
    let valid = parts.count == 2 && !parts[0].isEmpty && parts[0].utf8.count <= 64
        && !value.unicodeScalars.contains { $0.properties.isWhitespace }
        && parts[1].contains(".") && !parts[1].hasPrefix(".") && !parts[1].hasSuffix(".") && !parts[1].contains("..")
    guard valid else {
        throw GRPCStatus(.invalidArgument, "\(field) must be an e-mail address (name@example.com) or empty", reason: "INVALID_FIELD",
                         metadata: ["field": field])
    }
}
