import BillingAuth
import BillingLedger
public import BillingProto
import GRPC

/// Admin: API keys and the audit log.
final class KeysService: Sendable {
    let ledger: Ledger

    init(ledger: Ledger) {
        self.ledger = ledger
    }

    /// Longest key name accepted.
    static let maxNameBytes = 128

    func register(into router: inout SecuredRouter) {
        router.register("/billing.v1.Admin/CreateApiKey") { [self] (request: Billing_V1_CreateApiKeyRequest, principal) in
            try await create(request, actor: principal.auditName)
        }
        router.register("/billing.v1.Admin/ListApiKeys") { [self] (request: Billing_V1_ListApiKeysRequest, _) in
            var response = Billing_V1_ListApiKeysResponse()
            let keys = try await Refusals.mapping { try await ledger.apiKeys() }
            response.keys = keys.filter { request.includeRevoked || $0.revokedUnix == 0 }.map(Self.message)
            return response
        }
        router.register("/billing.v1.Admin/RevokeApiKey") { [self] (request: Billing_V1_RevokeApiKeyRequest, principal) in
            try requireID(request.keyID, "key_id")
            // Not echoed: a whole key pasted here is a secret (refusals go to logs).
            guard ApiKeyToken.isKeyID(request.keyID) else {
                throw GRPCStatus(.invalidArgument,
                                 "key_id must be a key's 12-character id (the part between \"bk_\" and the next \"_\"), not the key itself",
                                 reason: "INVALID_FIELD", metadata: ["field": "key_id"])
            }
            do {
                _ = try await ledger.revokeApiKey(keyID: request.keyID, actor: principal.auditName)
            } catch {
                throw Refusals.status(error)
            }
            var response = Billing_V1_RevokeApiKeyResponse()
            if let key = ledger.keyRing.key(request.keyID) { response.key = Self.message(key) }
            return response
        }
        router.register("/billing.v1.Admin/ListAuditLog") { [self] (request: Billing_V1_ListAuditLogRequest, _) in
            try auditLog(request)
        }
    }

    func create(_ request: Billing_V1_CreateApiKeyRequest, actor: String) async throws -> Billing_V1_CreateApiKeyResponse {
        guard !request.name.isEmpty, request.name.utf8.count <= Self.maxNameBytes else {
            throw GRPCStatus(.invalidArgument, "name is required, at most \(Self.maxNameBytes) bytes", reason: "INVALID_FIELD",
                             metadata: ["field": "name"])
        }
        try requireID(request.name, "name")
        // A secret pasted as the name would be stored and listed in the clear.
        guard !looksSecret(request.name) else {
            throw GRPCStatus(.invalidArgument, "name holds an API key or a user token (not shown): name the key in words",
                             reason: "INVALID_FIELD", metadata: ["field": "name"])
        }
        let scopes = try Self.scopes(request.scopes)
        // A key that is dead when made is a mistake (a time in milliseconds
        // read as seconds, a date in the past), not a request.
        // (The real clock, as the authenticator checks expiry: not a test clock.)
        guard request.expiresUnixSeconds == 0 || request.expiresUnixSeconds > SystemClock().nowMicros() / 1_000_000 else {
            throw GRPCStatus(.invalidArgument, "expires_unix_seconds must be 0 (never) or a time in the future",
                             reason: "INVALID_FIELD", metadata: ["field": "expires_unix_seconds"])
        }
        let material = ApiKeyMaterial.generate()
        do {
            _ = try await ledger.createApiKey(keyID: material.keyID, name: request.name, scopes: scopes,
                                              hash: material.hash, expiresUnix: request.expiresUnixSeconds, actor: actor)
        } catch {
            throw Refusals.status(error)
        }
        var response = Billing_V1_CreateApiKeyResponse()
        if let key = ledger.keyRing.key(material.keyID) { response.key = Self.message(key) }
        response.secret = material.token
        return response
    }

    static func scopes(_ requested: [String]) throws(GRPCStatus) -> [String] {
        guard !requested.isEmpty else {
            throw GRPCStatus(.invalidArgument, "at least one scope is required", reason: "MISSING_FIELD", metadata: ["field": "scopes"])
        }
        guard requested.count <= Billing_V1_CreateApiKeyRequest.maxScopes else { throw Billing_V1_CreateApiKeyRequest.tooManyScopes }
        for scope in requested where Scope(rawValue: scope) == nil {
            throw GRPCStatus(.invalidArgument, "unknown scope \(scope.prefix(64)); scopes are metering:write, metering:read, accounts:admin",
                             reason: "INVALID_FIELD", metadata: ["field": "scopes"])
        }
        return Array(Set(requested)).sorted()
    }

    static func message(_ key: KeyRing.Key) -> Billing_V1_ApiKey {
        var message = Billing_V1_ApiKey()
        message.keyID = key.keyID
        message.name = key.name
        message.scopes = key.scopes
        message.createdUnixSeconds = key.createdUnix
        message.createdBy = key.createdBy
        message.expiresUnixSeconds = key.expiresUnix
        message.revoked = key.revokedUnix != 0
        message.revokedUnixSeconds = key.revokedUnix
        return message
    }

    func auditLog(_ request: Billing_V1_ListAuditLogRequest) throws -> Billing_V1_ListAuditLogResponse {
        try requireID(request.accountID, "account_id", required: false)
        guard request.pageSize >= 0 else {
            throw GRPCStatus(.invalidArgument, "page_size must be 0 (100) to 1000", reason: "INVALID_FIELD",
                             metadata: ["field": "page_size"])
        }
        let pageSize = request.pageSize == 0 ? 100 : min(Int(request.pageSize), 1000)
        var before = Int64.max
        if !request.pageToken.isEmpty {
            guard let token = Int64(request.pageToken), token > 0 else {
                throw GRPCStatus(.invalidArgument, "malformed page_token", reason: "INVALID_FIELD", metadata: ["field": "page_token"])
            }
            before = token
        }
        let (sinceMicros, overflow) = max(request.sinceUnixSeconds, 0).multipliedReportingOverflow(by: 1_000_000)
        guard !overflow else {
            throw GRPCStatus(.invalidArgument, "since_unix_seconds must be at most \(Int64.max / 1_000_000)",
                             reason: "INVALID_FIELD", metadata: ["field": "since_unix_seconds"])
        }
        // One more than the page: a token only when there is a next page (a
        // full last page answered a token to an empty page, session 27).
        var entries = try ledger.store.auditEntries(
            accountID: request.accountID, sinceMicros: sinceMicros,
            beforeSeq: before, limit: pageSize + 1)
        let more = entries.count > pageSize
        if more { entries.removeLast() }
        var response = Billing_V1_ListAuditLogResponse()
        response.entries = entries.map(AuditEvent.message)
        if more, let last = entries.last { response.nextPageToken = String(last.seq) }
        return response
    }
}

/// Journal entries as audit-log lines: who did what, with non-secret details.
public enum AuditEvent {
    /// Who asked for an invoice payment attempt: PayInvoice's caller, or the
    /// caller whose request issued the invoice (an upgrade, a card ending a
    /// paused trial, a contract's proration), or "system" (a period close, a
    /// retry after a restart; and entries from before callers were recorded).
    static func actor(_ recorded: Billing_Journal_V1_ChargeRecorded) -> String {
        recorded.actor.isEmpty ? "system" : recorded.actor
    }

    public static func message(_ entry: Billing_Journal_V1_Entry) -> Billing_V1_AuditEntry {
        var audit = Billing_V1_AuditEntry()
        audit.entryID = entry.seq
        audit.atUnixSeconds = entry.atUnixMicros / 1_000_000
        switch entry.event {
        case .accountCreated(let created):
            (audit.actor, audit.action, audit.accountID) = (created.actor, "CreateAccount", created.accountID)
            audit.details = ["plan": created.plan]
            // A trial's credits are a grant the account starts with (session
            // 30, an admin review: the audit log accounted for every grant but these).
            if created.trialCreditMicros > 0 { audit.details["trial_credit_micros"] = String(created.trialCreditMicros) }
        case .creditsGranted(let grant):
            (audit.actor, audit.action, audit.accountID) = (grant.actor, grant.kind == "purchase" ? "PurchaseCredits" : "GrantCredits", grant.accountID)
            audit.details = ["amount_micros": String(grant.amountMicros), "kind": grant.kind, "note": grant.note]
        case .apiKeyCreated(let created):
            (audit.actor, audit.action) = (created.actor, "CreateApiKey")
            audit.details = ["key_id": created.keyID, "name": created.name, "scopes": created.scopes.joined(separator: " ")]
        case .apiKeyRevoked(let revoked):
            (audit.actor, audit.action) = (revoked.actor, "RevokeApiKey")
            audit.details = ["key_id": revoked.keyID]
        case .lifecycle(let event):
            (audit.actor, audit.accountID) = (event.actor, event.accountID)
            switch event.event {
            case .trialEnded: audit.action = "TrialEnded"
            case .graceExpired: audit.action = "GraceExpired"
            case .periodEnded(let ended):
                audit.action = "PeriodClosed"
                audit.details = ["period_start": String(ended.periodStartUnix), "period_end": String(ended.periodEndUnix),
                                 "overage_micros": String(ended.overageMicros)]
            case .paymentMethodSet(let set):
                audit.action = "SetPaymentMethod"
                audit.details = ["payment_method_id": set.method.paymentMethodID, "type": "\(set.method.type)"]
            case .planChange(let change):
                audit.action = "ChangePlan"
                audit.details = ["to_plan": "\(change.toPlan)"]
                // The current plan chosen again: it cancelled the pending change.
                if change.cancelsPending { audit.details["cancelled_pending_change"] = "true" }
            case .pendingChangeCancelled: audit.action = "CancelPendingChange"
            case .enterpriseContract(let terms):
                audit.action = "SetEnterpriseContract"
                // Every term that changes what is billed (notes and custom
                // lines' texts stay in the journal).
                audit.details = ["contract_reference": terms.contractReference, "period_price_micros": String(terms.periodPriceMicros),
                                 "included_usage_micros": String(terms.includedUsageMicros),
                                 "run_quota": String(terms.runQuota),
                                 "max_workspaces": String(terms.maxWorkspaces), "custom_invoice_lines": String(terms.customInvoiceLines.count),
                                 "start_unix_seconds": String(terms.startUnixSeconds), "end_unix_seconds": String(terms.endUnixSeconds)]
                if terms.hasUsageRateBasisPoints { audit.details["usage_rate_basis_points"] = String(terms.usageRateBasisPoints) }
            case nil: audit.action = "Other"
            }
        case .chargeRecorded(let recorded):
            (audit.actor, audit.action, audit.accountID) = (Self.actor(recorded), "InvoicePayment", recorded.charge.accountID)
            audit.details = ["invoice_id": recorded.charge.invoiceID, "charge_id": recorded.charge.chargeID,
                             "amount_micros": String(recorded.charge.amountMicros), "status": "\(recorded.charge.status)"]
            // A card given to pay the invoice goes on file when it paid.
            if recorded.hasNewMethod {
                audit.details["new_payment_method_id"] = recorded.newMethod.method.paymentMethodID
                audit.details["new_payment_method_type"] = "\(recorded.newMethod.method.type)"
            }
            if !recorded.charge.failureReason.isEmpty { audit.details["failure_reason"] = recorded.charge.failureReason }
        case .creditsPurchased(let purchase):
            (audit.actor, audit.action, audit.accountID) = (purchase.actor, "PurchaseCredits", purchase.accountID)
            audit.details = ["amount_micros": String(purchase.amountMicros), "charge_id": purchase.charge.chargeID,
                             "status": "\(purchase.charge.status)"]
        case .chargeStarted(let started):
            // The gateway is asked next; a ChargeRecorded or PurchaseCredits line records its outcome.
            audit.accountID = started.accountID
            audit.action = "ChargeStarted"
            switch started.record {
            case .purchase(let purchase)?:
                audit.actor = purchase.actor
                audit.details = ["kind": "credit_purchase", "charge_id": purchase.charge.chargeID,
                                 "amount_micros": String(purchase.amountMicros)]
            case .invoicePayment(let payment)?:
                audit.actor = Self.actor(payment)
                audit.details = ["kind": "invoice_payment", "charge_id": payment.charge.chargeID,
                                 "invoice_id": payment.charge.invoiceID, "amount_micros": String(payment.charge.amountMicros)]
            case nil:
                audit.actor = "system"
            }
        case .plansConfigured(let configured):
            (audit.actor, audit.action) = (configured.actor, "ConfigurePlans")
            audit.details = ["pro_monthly_price_micros": String(configured.pro.monthlyPriceMicros),
                             "trial_days": String(configured.trialDays)]
            if configured.hasGraceSeconds { audit.details["grace_seconds"] = String(configured.graceSeconds) }
        case .clockSet(let set):
            (audit.actor, audit.action) = (set.actor, "AdvanceClock")
            audit.details = ["now_unix": String(set.nowUnix)]
        default:
            audit.action = "Other"
        }
        return audit
    }
}
