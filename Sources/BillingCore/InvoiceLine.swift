/// One line of an invoice the lifecycle asks the shell to issue. Each line
/// names the time it covers: a plan is billed in advance for the period that
/// starts, metered usage in arrears for the period that ended.
public struct InvoiceLine: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// A plan's (or an Enterprise contract's) price for one period.
        case subscription(Plan)
        /// The prorated difference of an upgrade for the rest of a period.
        case proration(from: Plan, to: Plan)
        /// Usage that credits did not cover, accrued during the period.
        case meteredUsage
        /// An Enterprise contract's custom amount for a period.
        case custom
    }

    public let kind: Kind
    /// The text the invoice shows, e.g. "Pro plan, 2026-04-01 to 2026-05-01".
    public let description: String
    public let amount: Money
    /// Unix seconds: the time this line covers.
    public let periodStart: Int64
    public let periodEnd: Int64

    public init(kind: Kind, description: String, amount: Money, periodStart: Int64, periodEnd: Int64) {
        precondition(amount >= .zero, "an invoice line is never negative")
        precondition(periodStart <= periodEnd, "a line covers forward time")
        self.kind = kind
        self.description = description
        self.amount = amount
        self.periodStart = periodStart
        self.periodEnd = periodEnd
    }
}
