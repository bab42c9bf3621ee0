import BillingCore
import Testing

/// Accounts active since 2026-04-01 00:00 UTC: April is a 30-day period.
@Suite struct AccountLifecyclePlanChangeTests {
    static let april = period(utc(2026, 4, 1), utc(2026, 5, 1))

    @Test func midPeriodUpgradeChargesTheProratedDifference() {
        var h = LifecycleHarness.active(.free, since: Self.april.start)
        h.now = utc(2026, 4, 16)
        let line = InvoiceLine(
            kind: .proration(from: .free, to: .pro),
            description: "Upgrade from Free to Pro, prorated 2026-04-16 to 2026-05-01",
            amount: Money(micros: 24_500_000), periodStart: utc(2026, 4, 16), periodEnd: Self.april.end)
        #expect(h.accept(.changePlan(to: .pro)) == [
            .setPlan(.pro),
            .issueInvoice(lines: [line], periodStart: utc(2026, 4, 16), periodEnd: Self.april.end, planChange: true),
            .attemptPayment,
        ])
        #expect(h.account.plan == .pro)
        #expect(h.account.status == .active)
        // A retried upgrade charges nothing twice.
        #expect(h.accept(.changePlan(to: .pro)) == [])

        // The next period is billed at the full price, in advance.
        let closed = h.advance(to: Self.april.end)
        #expect(closed.map(\.1) == [[
            .resetQuota,
            .issueInvoice(lines: [proLine(utc(2026, 5, 1), utc(2026, 6, 1))], periodStart: Self.april.start, periodEnd: Self.april.end),
            .attemptPayment,
        ]])
    }

    /// Past the period's end, before the close is applied, the terms are
    /// those of the plan a due downgrade moves to; before the end, or with
    /// nothing due, those in force.
    @Test func termsAfterThePeriodsEndAreThoseOfADueDowngrade() {
        var h = LifecycleHarness.active(.pro, since: Self.april.start)
        h.now = utc(2026, 4, 20)
        #expect(h.account.planAfterDueClose(at: Self.april.end) == nil)
        _ = h.accept(.changePlan(to: .free))
        #expect(h.account.planAfterDueClose(at: Self.april.end - 1) == nil)
        #expect(h.account.effectiveTerms(at: Self.april.end - 1, h.plans) == h.plans[.pro])
        #expect(h.account.planAfterDueClose(at: Self.april.end) == .free)
        #expect(h.account.effectiveTerms(at: Self.april.end + 1, h.plans) == h.plans[.free])
        #expect(h.account.effectiveTerms(h.plans) == h.plans[.pro])
        // Once applied, nothing is anticipated.
        h.advance(to: Self.april.end + 1)
        #expect(h.account.planAfterDueClose(at: Self.april.end + 1) == nil)
        #expect(h.account.effectiveTerms(at: Self.april.end + 1, h.plans) == h.plans[.free])

        // An Enterprise account moving to Pro leaves its contract's terms.
        var enterprise = LifecycleHarness.active(.enterprise, since: Self.april.start,
                                                 contract: EnterpriseContract(monthlyPrice: Money(micros: 900_000_000)))
        enterprise.now = utc(2026, 4, 20)
        _ = enterprise.accept(.changePlan(to: .pro))
        #expect(enterprise.account.effectiveTerms(at: Self.april.end, enterprise.plans) == enterprise.plans[.pro])
        #expect(enterprise.account.effectiveTerms(at: Self.april.end - 1, enterprise.plans) != enterprise.plans[.pro])
    }

    /// A clock stepped back (NTP) behind the period's start, a moment after
    /// the account was made: the upgrade or contract is prorated from the
    /// start, the whole period, instead of trapping the server.
    @Test func anUpgradeWithTheClockBehindThePeriodsStartChargesTheWholePeriod() {
        var h = LifecycleHarness.active(.free, since: Self.april.start)
        h.now = Self.april.start - 2
        let lines = invoiceLines(h.accept(.changePlan(to: .pro)))
        #expect(lines?.map(\.amount) == [proPrice] && lines?.first?.periodStart == Self.april.start)
        var contract = LifecycleHarness.active(.pro, since: Self.april.start)
        contract.now = Self.april.start - 2
        let terms = EnterpriseContract(monthlyPrice: Money(micros: 449_000_000))
        #expect(invoiceLines(contract.accept(.enterpriseContractSet(terms, prorated: true)))?.map(\.amount)
            == [Money(micros: 400_000_000)])
    }

    @Test func upgradeInTheLastSecondOfAPeriod() {
        var h = LifecycleHarness.active(.free, since: Self.april.start)
        h.now = Self.april.end - 1
        let actions = h.accept(.changePlan(to: .pro))
        // 49e6 × 1 / 2,592,000 = 18.9 → 19 micros.
        guard case .issueInvoice(let lines, _, _, _) = actions[1] else {
            Issue.record("no invoice: \(actions)")
            return
        }
        #expect(lines.map(\.amount) == [Money(micros: 19)])
    }

    @Test func upgradeNeedsAPaymentMethod() {
        var h = LifecycleHarness(
            account: .active(plan: .free, startingAt: Self.april.start, graceSeconds: 0, hasPaymentMethod: false),
            now: utc(2026, 4, 10))
        let before = h.account
        #expect(h.send(.changePlan(to: .pro)) == .failure(.paymentMethodRequired))
        #expect(h.account == before)
        #expect(h.accept(.paymentMethodAdded) == [.usePaymentMethodNow])
        #expect(h.accept(.changePlan(to: .pro)).first == .setPlan(.pro))
    }

    @Test func downgradeIsPendingThenAppliedAtPeriodEnd() {
        var h = LifecycleHarness.active(.pro, since: Self.april.start)
        h.now = utc(2026, 4, 10)
        #expect(h.accept(.changePlan(to: .free)) == [.scheduleDowngrade(.free, at: Self.april.end)])
        #expect(h.account.pendingChange == PendingPlanChange(plan: .free, effectiveAt: Self.april.end))
        #expect(h.account.plan == .pro)
        // Asking again is harmless.
        #expect(h.accept(.changePlan(to: .free)) == [.scheduleDowngrade(.free, at: Self.april.end)])
        // Staying on Pro does not cancel it: CancelPendingChange does.
        #expect(h.accept(.changePlan(to: .pro)) == [])
        #expect(h.account.pendingChange != nil)

        // Overage accrued on Pro in April is still billed; Free costs nothing.
        h.overage[Self.april] = Money(micros: 3_210_000)
        let closed = h.advance(to: utc(2026, 5, 2))
        let usage = InvoiceLine(
            kind: .meteredUsage, description: "Metered usage, 2026-04-01 to 2026-05-01",
            amount: Money(micros: 3_210_000), periodStart: Self.april.start, periodEnd: Self.april.end)
        #expect(closed.map(\.1) == [[
            .setPlan(.free), .resetQuota,
            .issueInvoice(lines: [usage], periodStart: Self.april.start, periodEnd: Self.april.end),
            .attemptPayment,
        ]])
        #expect(h.account.plan == .free)
        #expect(h.account.pendingChange == nil)
        #expect(h.advance(to: utc(2026, 6, 1)).map(\.1) == [[.resetQuota]])
    }

    @Test func aCancelledDowngradeNeverApplies() {
        var h = LifecycleHarness.active(.pro, since: Self.april.start)
        h.now = utc(2026, 4, 10)
        #expect(h.send(.cancelPendingChange) == .failure(.noPendingChange))
        _ = h.accept(.changePlan(to: .free))
        #expect(h.accept(.cancelPendingChange) == [.cancelScheduledDowngrade])
        #expect(h.account.pendingChange == nil)
        let closed = h.advance(to: Self.april.end)
        #expect(h.account.plan == .pro)
        #expect(!closed[0].1.contains(.setPlan(.free)))
    }

    @Test(arguments: [Plan.free, .pro])
    func enterpriseRequestIsRefusedWithContactSales(_ plan: Plan) {
        var h = LifecycleHarness.active(plan, since: Self.april.start)
        let before = h.account
        #expect(h.send(.changePlan(to: .enterprise)) == .failure(.contactSales))
        #expect(h.account == before)
    }

    @Test func enterpriseRequestDuringTheTrialIsRefusedWithContactSales() {
        var h = LifecycleHarness(signUpAt: Self.april.start)
        #expect(h.send(.changePlan(to: .enterprise)) == .failure(.contactSales))
        #expect(h.account.status == .trial)
    }

    @Test func anOperatorsContractPutsTheAccountOnEnterprise() {
        var h = LifecycleHarness.active(.pro, since: Self.april.start)
        h.now = utc(2026, 4, 20)
        let contract = EnterpriseContract(
            monthlyPrice: Money(micros: 2_000_000_000),
            customLines: [.init(description: "Dedicated support", amount: Money(micros: 1_500_000_000))],
            includedUsage: Money(micros: 200_000), usageRateBasisPoints: 8_000, reference: "C-7")
        // As a journal of an earlier build replays it: no charge until the period's end.
        #expect(h.accept(.enterpriseContractSet(contract, prorated: false)) == [.setPlan(.enterprise)])
        #expect(h.account.plan == .enterprise)
        #expect(h.account.contract == contract)
        // Already on Enterprise: a customer's request is a no-op.
        #expect(h.accept(.changePlan(to: .enterprise)) == [])

        // The invoice bills the price, the custom line, and usage beyond the
        // included $0.20 at 80%: (0.70 - 0.20) x 0.8 = $0.40.
        h.overage[Self.april] = Money(micros: 700_000)
        let closed = h.advance(to: Self.april.end)
        guard case .issueInvoice(let lines, _, _, _) = closed[0].1[1] else {
            Issue.record("no invoice: \(closed)")
            return
        }
        #expect(lines.map(\.kind) == [.subscription(.enterprise), .custom, .meteredUsage])
        #expect(lines.map(\.amount) == [Money(micros: 2_000_000_000), Money(micros: 1_500_000_000), Money(micros: 400_000)])
        #expect(lines[0].description == "Enterprise contract C-7, 2026-05-01 to 2026-06-01")
        #expect(lines[1].description == "Dedicated support, 2026-05-01 to 2026-06-01")
    }

    /// A contract that moves a Pro account to Enterprise mid-period is an
    /// upgrade: the rest of the period is charged now (11 of April's 30
    /// days), the next period in full at its end.
    @Test func aContractSetMidPeriodChargesTheRestOfThePeriodAsAnUpgrade() {
        var h = LifecycleHarness.active(.pro, since: Self.april.start)
        h.now = utc(2026, 4, 20)
        let contract = EnterpriseContract(
            monthlyPrice: Money(micros: 2_000_000_000),
            customLines: [.init(description: "Dedicated support", amount: Money(micros: 1_500_000_000))],
            reference: "C-7")
        // ($2,000 - $49) x 11/30 = $715.366666.. -> 715,366,667 micros; $1,500 x 11/30 = $550.
        let lines = [
            InvoiceLine(kind: .proration(from: .pro, to: .enterprise),
                        description: "Upgrade from Pro to Enterprise contract C-7, prorated 2026-04-20 to 2026-05-01",
                        amount: Money(micros: 715_366_667), periodStart: utc(2026, 4, 20), periodEnd: Self.april.end),
            InvoiceLine(kind: .custom, description: "Dedicated support, prorated 2026-04-20 to 2026-05-01",
                        amount: Money(micros: 550_000_000), periodStart: utc(2026, 4, 20), periodEnd: Self.april.end),
        ]
        #expect(h.accept(.enterpriseContractSet(contract, prorated: true)) == [
            .setPlan(.enterprise),
            .issueInvoice(lines: lines, periodStart: utc(2026, 4, 20), periodEnd: Self.april.end, planChange: true),
            .attemptPayment,
        ])
        let closed = h.advance(to: Self.april.end)
        #expect(invoiceLines(closed[0].1)?.map(\.amount) == [Money(micros: 2_000_000_000), Money(micros: 1_500_000_000)])

        // From Free the whole price is prorated; new terms on Enterprise wait for the next period.
        var free = LifecycleHarness.active(.free, since: Self.april.start)
        free.now = utc(2026, 4, 20)
        let priceOnly = EnterpriseContract(monthlyPrice: Money(micros: 300_000_000))
        #expect(invoiceLines(free.accept(.enterpriseContractSet(priceOnly, prorated: true)))?.map(\.amount) == [Money(micros: 110_000_000)])
        #expect(free.accept(.enterpriseContractSet(contract, prorated: true)) == [])
    }

    /// New terms for an Enterprise account whose customer scheduled a
    /// downgrade leave the downgrade scheduled (README: the operator
    /// cancels it to keep the account on the terms); at the period's end
    /// the account leaves Enterprise and its contract.
    @Test func newTermsLeaveAnEnterpriseAccountsScheduledDowngrade() {
        let contract = EnterpriseContract(monthlyPrice: Money(micros: 2_000_000_000), reference: "C-7")
        var h = LifecycleHarness.active(.enterprise, since: Self.april.start, contract: contract)
        h.now = utc(2026, 4, 10)
        _ = h.accept(.changePlan(to: .pro))
        #expect(h.account.pendingChange != nil)
        h.now = utc(2026, 4, 20)
        let renewed = EnterpriseContract(monthlyPrice: Money(micros: 3_000_000_000), reference: "C-8")
        #expect(h.accept(.enterpriseContractSet(renewed, prorated: true)) == [])
        #expect(h.account.contract == renewed && h.account.pendingChange != nil)
        _ = h.advance(to: Self.april.end)
        #expect(h.account.plan == .pro)
        #expect(h.account.contract == nil)
    }

    @Test func aContractEndsAPausedTrialAndChargesItsFirstPeriod() {
        var h = LifecycleHarness(signUpAt: utc(2026, 3, 1))
        h.advance(to: utc(2026, 3, 20))
        #expect(h.account.runsPaused)
        let contract = EnterpriseContract(monthlyPrice: Money(micros: 900_000_000))
        let line = InvoiceLine(
            kind: .subscription(.enterprise), description: "Enterprise contract, 2026-03-20 to 2026-04-20",
            amount: Money(micros: 900_000_000), periodStart: utc(2026, 3, 20), periodEnd: utc(2026, 4, 20))
        #expect(h.accept(.enterpriseContractSet(contract, prorated: true)) == [
            .setPlan(.enterprise), .resetQuota, .unpause,
            .issueInvoice(lines: [line], periodStart: utc(2026, 3, 20), periodEnd: utc(2026, 4, 20)),
            .attemptPayment,
        ])
        #expect(h.account.status == .active && h.account.plan == .enterprise && !h.account.runsPaused)
    }

    @Test func aContractMayIncludeUsage() {
        let contract = EnterpriseContract(monthlyPrice: Money(micros: 900_000_000), usageRateBasisPoints: 0)
        var h = LifecycleHarness.active(.enterprise, since: Self.april.start, contract: contract)
        h.overage[Self.april] = Money(micros: 700_000)
        let closed = h.advance(to: Self.april.end)
        guard case .issueInvoice(let lines, _, _, _) = closed[0].1[1] else {
            Issue.record("no invoice: \(closed)")
            return
        }
        #expect(lines.map(\.amount) == [Money(micros: 900_000_000)])
    }

    @Test func downgradeFromEnterpriseToProNeedsACard() {
        let contract = EnterpriseContract(monthlyPrice: Money(micros: 900_000_000))
        var h = LifecycleHarness(
            account: .active(plan: .enterprise, startingAt: Self.april.start, graceSeconds: 0, hasPaymentMethod: false, contract: contract),
            now: utc(2026, 4, 2))
        #expect(h.send(.changePlan(to: .pro)) == .failure(.paymentMethodRequired))
        #expect(h.accept(.changePlan(to: .free)) == [.scheduleDowngrade(.free, at: Self.april.end)])
        h.advance(to: Self.april.end)
        #expect(h.account.plan == .free)
        #expect(h.account.contract == nil)
    }

    @Test(arguments: [
        (AccountRefusal.contactSales, "CONTACT_SALES"),
        (.noPendingChange, "NO_PENDING_CHANGE"),
        (.paymentMethodRequired, "PAYMENT_METHOD_REQUIRED"),
    ])
    func refusalReasons(_ refusal: AccountRefusal, _ reason: String) {
        #expect(refusal.reason == reason)
        #expect(refusal.code == .failedPrecondition)
        #expect(!refusal.message.isEmpty)
    }
}
