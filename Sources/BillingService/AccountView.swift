import BillingCore
import BillingLedger
import BillingProto

/// The ledger's books as the Billing tab shows them: the Overview, the plan
/// comparison table, banners.
enum AccountView {
    static let maxClockStep: Int64 = 10 * 366 * 86_400
    /// 10000-01-01 00:00:00 UTC: the end (exclusive) of the instants the
    /// service takes and prints (usage ranges, contract dates, the test clock).
    static let endOfYear9999Unix: Int64 = 253_402_300_800
    /// 9999-12-31 23:59:59 UTC: the test clock's last instant.
    static let latestClockUnix: Int64 = endOfYear9999Unix - 1
    /// Where the app's flows live; banners link to them.
    static let paymentMethodLink = "/billing/payment-method"
    static let plansLink = "/billing/plans"

    static func account(_ book: AccountBook, now: Int64, plans: PlanCatalog) -> Billing_V1_Account {
        let lifecycle = book.lifecycle
        let terms = book.terms(in: plans)
        var account = Billing_V1_Account()
        account.accountID = book.accountID
        account.displayName = book.displayName
        account.billingEmail = book.billingEmail
        account.plan = LedgerState.proto(lifecycle.plan)
        account.status = switch lifecycle.status {
        case .trial: .trial
        case .active: .active
        case .pastDue: .pastDue
        }
        account.paused = lifecycle.runsPaused
        if let reason = lifecycle.pauseReason {
            account.pauseReason = reason == .trialEndedWithoutPaymentMethod ? .trialEnded : .pastDue
            account.pauseMessage = "New runs are paused: \(reason.remedy(plan: lifecycle.plan, plans: plans))."
        }
        account.createdUnixSeconds = book.createdUnix
        account.trialEndsUnixSeconds = lifecycle.trialEndsAt ?? 0
        account.trialDaysLeft = Int32(lifecycle.trialDaysLeft(now: now))
        account.currentPeriodStartUnixSeconds = lifecycle.currentPeriod.start
        account.currentPeriodEndUnixSeconds = lifecycle.currentPeriod.end
        account.nextBillingUnixSeconds = lifecycle.nextBillingDate ?? 0
        account.banners = banners(book, now: now, plans: plans)
        if let change = lifecycle.pendingChange {
            account.pendingChange.toPlan = LedgerState.proto(change.plan)
            account.pendingChange.effectiveUnixSeconds = change.effectiveAt
        }
        account.creditBalanceMicros = book.balance
        account.accruedOverageMicros = book.overage
        // What the period end invoices for it (`AccountLifecycle+Cycle`: the
        // closed period's contract rates it on Enterprise).
        let closing = book.overage - book.overageAfterPeriodEnd  // (as `Ledger.processDue` bills it)
        account.accruedOverageChargeMicros = lifecycle.plan == .enterprise
            ? (lifecycle.contract?.usageCharge(Money(micros: closing)).micros ?? closing) : closing
        // (As debits are decided: never before the current period — a wall
        // clock stepped back across its start must not show the runs as 0.)
        let period = BillingPeriod.containing(max(now, book.earliestDebitTime), anchor: book.periodAnchor)
        account.runsThisPeriod = period.start == book.periodStart ? Int64(book.runsInPeriod.count) : 0
        account.runQuota = terms.runQuota ?? 0
        account.maxWorkspaces = Int64(terms.workspaceLimit ?? 0)
        account.workspaceIds = book.workspaces.sorted()
        account.hasPaymentMethod_p = lifecycle.hasPaymentMethod
        if let contract = book.contractTerms, lifecycle.plan == .enterprise { account.enterpriseContract = contract }
        return account
    }

    /// A banner as shown to a user who may not read billing (a Member, a
    /// Viewer: `GetBanners`): that something is wrong and who can fix it,
    /// not which invoice failed, nor a link to flows they may not use.
    static func withoutBillingDetails(_ banner: Billing_V1_Banner) -> Billing_V1_Banner {
        var banner = banner
        banner.invoiceID = ""
        banner.link = ""
        banner.linkText = ""
        switch banner.kind {
        case .pastDue: banner.message = "A payment of this account failed: an Owner or Admin can update the payment method and pay it."
        case .paused: banner.message = "New runs are paused: an Owner or Admin can resume them from the Billing tab."
        default: break
        }
        return banner
    }

    /// Most severe first: paused, past due, pending change, trial countdown.
    static func banners(_ book: AccountBook, now: Int64, plans: PlanCatalog) -> [Billing_V1_Banner] {
        var banners: [Billing_V1_Banner] = []
        for banner in book.lifecycle.banners(now: now) {
            var message = Billing_V1_Banner()
            message.message = banner.message(plan: book.lifecycle.plan, plans: plans)
            switch banner {
            case .paused(let reason):
                message.kind = .paused
                message.severity = .critical
                if reason == .trialEndedWithoutPaymentMethod {
                    (message.link, message.linkText) = (paymentMethodLink, "Add a payment method")
                } else if let oldest = book.lifecycle.pastDueInvoices.first {
                    message.invoiceID = "in_\(oldest.number)"
                    (message.link, message.linkText) = (LedgerState.payLink(message.invoiceID), "Pay invoice")
                }
            case .pastDue(let invoice, _):
                message.kind = .pastDue
                message.severity = .critical
                message.invoiceID = "in_\(invoice)"
                (message.link, message.linkText) = (LedgerState.payLink(message.invoiceID), "Update payment and pay")
            case .trialCountdown(let days, _):
                message.kind = .trialCountdown
                message.severity = days <= 3 ? .warning : .info
                // (A trial that goes on without one at its end needs none.)
                if !book.lifecycle.hasPaymentMethod, !book.lifecycle.trialEndContinuesWithoutPaymentMethod(plans) {
                    (message.link, message.linkText) = (paymentMethodLink, "Add a payment method")
                }
            }
            banners.append(message)
        }
        if let change = book.lifecycle.pendingChange {
            var message = Billing_V1_Banner()
            message.kind = .pendingPlanChange
            message.severity = .info
            message.message = "Your plan changes to \(plans[change.plan].displayName) on \(CivilDate(unixSeconds: change.effectiveAt))."
            (message.link, message.linkText) = (plansLink, "Keep your current plan")
            // After the critical ones, before the countdown.
            let index = banners.firstIndex { $0.severity != .critical } ?? banners.count
            banners.insert(message, at: index)
        }
        return banners
    }

    /// The comparison table: the same rows in the same order for every plan.
    static func planTable(_ plans: PlanCatalog, current: Plan?) -> [Billing_V1_PlanInfo] {
        Plan.allCases.map { plan in
            let terms = plans[plan]
            var info = Billing_V1_PlanInfo()
            info.plan = LedgerState.proto(plan)
            info.displayName = terms.displayName
            info.contactSales = plan == .enterprise
            info.monthlyPriceMicros = plan == .enterprise ? 0 : terms.monthlyPrice.micros
            info.priceLabel = plan == .enterprise ? "Contact sales"
                : terms.monthlyPrice == .zero ? "$0" : "\(terms.monthlyPrice.formatted(.significant))/month"
            info.maxWorkspaces = Int64(terms.workspaceLimit ?? 0)
            info.runQuota = plan == .enterprise ? 0 : (terms.runQuota ?? 0)
            info.support = terms.support.rawValue.prefix(1).uppercased() + terms.support.rawValue.dropFirst()
            info.integrations = terms.integrations
            info.current = plan == current
            let workspaces = terms.workspaceLimit.map { $0 == 1 ? "1 workspace" : "\($0) workspaces" } ?? "Unlimited"
            let runs = plan == .enterprise ? "By contract" : terms.runQuota.map { "\(grouped($0)) runs/month" } ?? "Unlimited"
            info.features = [
                feature("Price", info.priceLabel),
                feature("Workspaces", workspaces),
                feature("Run quota", runs),
                feature("Support", info.support),
                feature("Integrations", terms.integrations),
                feature("SSO with SCIM", plan == .enterprise ? "Included" : "—"),
                feature("Deployment", plan == .enterprise ? "Cloud, on-prem or private cloud" : "Cloud"),
            ]
            return info
        }
    }

    static func feature(_ label: String, _ value: String) -> Billing_V1_PlanFeature {
        var feature = Billing_V1_PlanFeature()
        feature.label = label
        feature.value = value
        return feature
    }

    /// 20000 → "20,000".
    static func grouped(_ value: Int64) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return value < 0 ? "-" + out : out
    }
}
