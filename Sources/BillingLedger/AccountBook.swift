public import BillingCore

/// One account's books in memory.
public struct AccountBook: Sendable, Equatable {
    public let accountID: String
    /// "free", "trial", "pro" or "enterprise".
    public var plan: String
    public var periodAnchor: Int64
    public var balance: Int64 = 0
    /// Uncovered usage accrued for the next invoice (Pro/Enterprise).
    public var overage: Int64 = 0
    /// Start of the period `runsInPeriod` counts.
    public var periodStart: Int64
    public var runsInPeriod: Set<String> = []
    public var workspaces: Set<String> = []
    public var usage: [UsageKey: UsageCell] = [:]
    /// Lifetime totals, for reconciliation: balance == granted - fromCredits.
    public var granted: Int64 = 0
    public var debitedFromCredits: Int64 = 0

    public init(accountID: String, plan: String, periodAnchor: Int64) {
        self.accountID = accountID
        self.plan = plan
        self.periodAnchor = periodAnchor
        self.periodStart = periodAnchor
    }

    /// The plan whose terms apply ("trial" uses the catalog's trial plan).
    public func terms(in plans: PlanCatalog) -> PlanTerms {
        switch plan {
        case "free": plans.free
        case "enterprise": plans.enterprise
        case "trial": plans[plans.trialPlan]
        default: plans.pro
        }
    }

    /// Whether uncovered usage may accrue as overage instead of being refused.
    public func accruesOverage(in plans: PlanCatalog) -> Bool {
        plan != "trial" && terms(in: plans).accruesOverage
    }
}

/// A usage roll-up cell: one UTC day × agent × line item.
public struct UsageKey: Hashable, Sendable {
    /// Days since the Unix epoch (UTC).
    public let day: Int64
    public let agentID: String
    public let lineKey: String

    public init(day: Int64, agentID: String, lineKey: String) {
        self.day = day
        self.agentID = agentID
        self.lineKey = lineKey
    }
}

public struct UsageCell: Sendable, Equatable {
    public var amount: Int64 = 0
    public var quantity: Int64 = 0
    public var inputTokens: Int64 = 0
    public var outputTokens: Int64 = 0

    public init(amount: Int64 = 0, quantity: Int64 = 0, inputTokens: Int64 = 0, outputTokens: Int64 = 0) {
        self.amount = amount
        self.quantity = quantity
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }
}
