import BillingCore
import Testing

/// Unix seconds of a UTC civil time.
func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int64 = 0, _ minute: Int64 = 0, _ second: Int64 = 0) -> Int64 {
    CivilDate.daysFromCivil(year: year, month: month, day: day) * 86_400 + hour * 3_600 + minute * 60 + second
}

let day: Int64 = 86_400
let proPrice = Money(micros: 49_000_000)

/// One account and a test clock: requests at `now`, and `advance(to:)`
/// applying every due transition in order at its own time, as the server's
/// test clock does.
struct LifecycleHarness {
    var account: AccountLifecycle
    var now: Int64
    var plans = PlanCatalog.default
    /// Overage the ledger would report for each period that closes.
    var overage: [BillingPeriod: Money] = [:]
    /// Every applied transition with its actions, in order.
    var transitions: [(DueTransition, [AccountAction])] = []

    static let grace: Int64 = 7 * day

    init(signUpAt start: Int64) {
        account = .trial(startingAt: start, plans: PlanCatalog.default, graceSeconds: Self.grace)
        now = start
    }

    init(account: AccountLifecycle, now: Int64) {
        self.account = account
        self.now = now
    }

    mutating func send(_ event: AccountEvent) -> Result<[AccountAction], AccountRefusal> {
        account.apply(event, now: now, plans: plans)
    }

    /// The actions of an event that must succeed.
    mutating func accept(_ event: AccountEvent, sourceLocation: SourceLocation = #_sourceLocation) -> [AccountAction] {
        switch send(event) {
        case .success(let actions): return actions
        case .failure(let refusal):
            Issue.record("\(event) refused: \(refusal.reason)", sourceLocation: sourceLocation)
            return []
        }
    }

    /// Moves the clock to `time`; returns the transitions applied on the way.
    @discardableResult
    mutating func advance(to time: Int64) -> [(DueTransition, [AccountAction])] {
        precondition(time >= now)
        var applied: [(DueTransition, [AccountAction])] = []
        while let due = account.nextDueTransition(now: time) {
            var usage = Money.zero
            if case .periodEnd(let period) = due { usage = overage[period] ?? .zero }
            guard case .success(let actions) = account.apply(due.event(overage: usage, trialContinues: account.trialEndContinuesWithoutPaymentMethod(plans)), now: due.at, plans: plans) else {
                preconditionFailure("time-driven events are never refused")
            }
            applied.append((due, actions))
        }
        transitions += applied
        now = time
        return applied
    }
}

extension LifecycleHarness {
    /// An account active on `plan` since `start` with a payment method.
    static func active(_ plan: Plan, since start: Int64, contract: EnterpriseContract? = nil) -> LifecycleHarness {
        LifecycleHarness(
            account: .active(plan: plan, startingAt: start, graceSeconds: grace, hasPaymentMethod: true, contract: contract),
            now: start)
    }
}

/// The Pro plan's line for a period.
func proLine(_ start: Int64, _ end: Int64) -> InvoiceLine {
    InvoiceLine(
        kind: .subscription(.pro),
        description: "Pro plan, \(CivilDate(unixSeconds: start)) to \(CivilDate(unixSeconds: end))",
        amount: proPrice, periodStart: start, periodEnd: end)
}

/// The billing period [start, end) of an account anchored at `anchor`
/// (default `start`); traps if that is not one of the anchor's periods.
func period(_ start: Int64, _ end: Int64, anchor: Int64? = nil) -> BillingPeriod {
    let period = BillingPeriod.containing(start, anchor: anchor ?? start)
    precondition(period.start == start && period.end == end, "not a period of that anchor")
    return period
}

/// The lines of the first invoice `actions` issue, if any.
func invoiceLines(_ actions: [AccountAction]) -> [InvoiceLine]? {
    for case .issueInvoice(let lines, _, _, _) in actions { return lines }
    return nil
}
