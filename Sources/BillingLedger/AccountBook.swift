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
    /// Lifetime sums of every usage cell (derived, not stored): while each
    /// fits in Int64, so does any sum of cells GetUsage can report.
    public var lifetime = UsageTotals()
    /// Idempotency keys of grants: key → (seq, amount).
    public var grantKeys: [String: GrantRecord] = [:]

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
    mutating func add(amount: Int64, quantity: Int64, inputTokens: Int64, outputTokens: Int64) {
        self.amount += amount
        self.quantity += quantity
        self.inputTokens += inputTokens
        self.outputTokens += outputTokens
    }

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

/// Sums over usage cells, every addition checked.
public struct UsageTotals: Sendable, Equatable {
    public var amount: Int64 = 0
    public var inputTokens: Int64 = 0
    public var outputTokens: Int64 = 0
    public var toolCalls: Int64 = 0
    public var storageBytes: Int64 = 0

    public init() {}

    /// These totals plus one line item, or nil when any sum would overflow.
    public func adding(lineKey: String, amount: Int64, quantity: Int64, inputTokens: Int64, outputTokens: Int64) -> UsageTotals? {
        var next = self
        var overflow = false
        func add(_ value: inout Int64, _ delta: Int64) {
            let (sum, o) = value.addingReportingOverflow(delta)
            value = sum
            overflow = overflow || o
        }
        add(&next.amount, amount)
        add(&next.inputTokens, inputTokens)
        add(&next.outputTokens, outputTokens)
        if lineKey.hasPrefix("tool_call:") { add(&next.toolCalls, quantity) }
        if lineKey.hasPrefix("storage:") { add(&next.storageBytes, quantity) }
        return overflow ? nil : next
    }
}

public struct GrantRecord: Sendable, Equatable {
    public var seq: Int64
    public var amount: Int64
}
