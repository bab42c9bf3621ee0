import BillingCore
import BillingLedger
import BillingProto

/// DESIGN.md's debit rules written a second time, small and on their own,
/// for the simulation's accounts (no payment methods, no plan changes, no
/// period closes: the simulation journals none): what the auditor expects
/// each journaled debit's outcome to be. The auditor also re-decides each
/// debit with the ledger's own `LedgerState.decide`, which checks that the
/// journal is what the code decides — but a wrong rule in that code would
/// pass that check; it fails this one.
///
/// Rules, in their order of precedence: an unknown account is refused
/// (`ACCOUNT_NOT_FOUND`); a trial over (14 days from the account's creation)
/// pauses new runs (`ACCOUNT_PAUSED`; a run already counted this period goes
/// on); a plan with a workspace limit refuses
/// a debit naming a workspace beyond it (`WORKSPACE_LIMIT`); a run's first
/// debit of a monthly period (anchored at the account's creation) beyond the
/// plan's run quota is refused (`RUN_QUOTA_EXCEEDED`); credits not covering
/// the debit refuse it on Free and during a trial (`INSUFFICIENT_CREDITS`),
/// and on Pro and Enterprise the uncovered part accrues as overage.
struct DecisionModel {
    struct Account {
        let plan: Plan
        let createdAt: Int64
        let trialEndsAt: Int64?
        var balance: Int64
        var periodStart: Int64
        var runsInPeriod: Set<String> = []
        var workspaces: Set<String> = []
    }

    /// What a debit should have come to.
    enum Expected: Equatable, CustomStringConvertible {
        case accepted(fromCredits: Int64, overage: Int64, newRun: Bool, balanceAfter: Int64)
        case refused(reason: String)

        var description: String {
            switch self {
            case let .accepted(fromCredits, overage, newRun, balanceAfter):
                "accepted (credits \(fromCredits), overage \(overage), new run \(newRun), balance after \(balanceAfter))"
            case .refused(let reason): "refused \(reason)"
            }
        }
    }

    let plans: PlanCatalog
    private(set) var accounts: [String: Account] = [:]

    init(plans: PlanCatalog) { self.plans = plans }

    /// An account the journal created at `at` (unix seconds): its terms from
    /// the plan asked for, not from what the ledger made of it. Returns what
    /// disagrees with the entry (the ledger's trial end, its anchor).
    mutating func created(_ created: Billing_Journal_V1_AccountCreated, at: Int64) -> String? {
        let trial = created.trialEndsUnix != 0
        let plan: Plan = switch created.plan {
        case "free": .free
        case "enterprise": .enterprise
        default: .pro
        }
        let trialEnd = trial ? at + Int64(plans.trialDays) * 86_400 : nil
        accounts[created.accountID] = Account(plan: plan, createdAt: at, trialEndsAt: trialEnd,
                                              balance: created.trialCreditMicros, periodStart: at)
        if trial && (plan != plans.trialPlan || created.trialEndsUnix != trialEnd) {
            return "a trial of \(created.plan) ending at \(created.trialEndsUnix); expected \(plans.trialPlan) ending at \(trialEnd ?? 0)"
        }
        if created.periodAnchorUnix != at { return "periods anchored at \(created.periodAnchorUnix), created at \(at)" }
        return nil
    }

    mutating func granted(_ grant: Billing_Journal_V1_CreditsGranted) {
        accounts[grant.accountID]?.balance += grant.amountMicros
    }

    /// The outcome the rules give `command` at `atMicros`, on the books so far.
    func expected(_ command: DebitCommand, atMicros: Int64) -> Expected {
        guard let account = accounts[command.accountID] else { return .refused(reason: "ACCOUNT_NOT_FOUND") }
        let now = atMicros / 1_000_000
        let onTrial = account.trialEndsAt != nil
        let period = BillingPeriod.containing(now, anchor: account.createdAt).start
        let runs = period == account.periodStart ? account.runsInPeriod : []
        let newRun = !runs.contains(command.runID)
        if newRun, let end = account.trialEndsAt, now >= end { return .refused(reason: "ACCOUNT_PAUSED") }
        let limits: (workspaces: Int?, runs: Int?, overage: Bool) = switch account.plan {
        case .free: (1, Int(plans.free.runQuota ?? .max), false)
        case .pro: (nil, Int(plans.pro.runQuota ?? .max), !onTrial)
        case .enterprise: (nil, nil, !onTrial)  // no contract: no limits
        }
        if let limit = limits.workspaces, !account.workspaces.contains(command.workspaceID),
           account.workspaces.count >= limit {
            return .refused(reason: "WORKSPACE_LIMIT")
        }
        if newRun, let quota = limits.runs, runs.count >= quota { return .refused(reason: "RUN_QUOTA_EXCEEDED") }
        let total = command.priced.total.micros
        if account.balance >= total {
            return .accepted(fromCredits: total, overage: 0, newRun: newRun, balanceAfter: account.balance - total)
        }
        guard limits.overage else { return .refused(reason: "INSUFFICIENT_CREDITS") }
        let fromCredits = max(account.balance, 0)
        return .accepted(fromCredits: fromCredits, overage: total - fromCredits, newRun: newRun,
                         balanceAfter: account.balance - fromCredits)
    }

    /// Books an accepted debit as journaled (the journal stays the truth
    /// after a disagreement, so one wrong outcome is reported once).
    mutating func accepted(_ debit: Billing_Journal_V1_DebitAccepted, atMicros: Int64) {
        guard var account = accounts[debit.accountID] else { return }
        let period = BillingPeriod.containing(atMicros / 1_000_000, anchor: account.createdAt).start
        if period != account.periodStart {
            account.periodStart = period
            account.runsInPeriod = []
        }
        account.runsInPeriod.insert(debit.runID)
        account.workspaces.insert(debit.workspaceID)
        account.balance -= debit.fromCreditsMicros
        accounts[debit.accountID] = account
    }

    static func journaled(_ event: Billing_Journal_V1_Entry.OneOf_Event?) -> Expected? {
        switch event {
        case .debitAccepted(let debit)?:
            .accepted(fromCredits: debit.fromCreditsMicros, overage: debit.overageMicros, newRun: debit.newRun,
                      balanceAfter: debit.balanceAfterMicros)
        case .debitRefused(let refused)?: .refused(reason: refused.reason)
        default: nil
        }
    }
}
