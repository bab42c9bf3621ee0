/// Enterprise terms an operator sets through Admin; customers cannot.
public struct EnterpriseContract: Sendable, Hashable {
    /// An extra amount printed on every period invoice (a custom invoice
    /// amount agreed in the contract).
    public struct CustomLine: Sendable, Hashable {
        public var description: String
        public var amount: Money

        public init(description: String, amount: Money) {
            precondition(amount >= .zero, "a custom invoice line is never negative")
            self.description = description
            self.amount = amount
        }
    }

    /// The contract's price per monthly period, billed in advance.
    public var monthlyPrice: Money
    /// Lines added to every period invoice.
    public var customLines: [CustomLine]
    /// Metered usage per period that the price includes.
    public var includedUsage: Money
    /// Rate applied to usage beyond `includedUsage`, in basis points of list
    /// price: 10,000 bills list price, 8,000 is 20% off, 0 bills no usage.
    public var usageRateBasisPoints: Int64
    /// Runs allowed per period; nil means unlimited.
    public var runQuota: Int64?
    /// Workspaces allowed; nil means unlimited.
    public var workspaceLimit: Int?
    /// The contract's reference, printed on its invoices.
    public var reference: String

    public init(
        monthlyPrice: Money, customLines: [CustomLine] = [], includedUsage: Money = .zero,
        usageRateBasisPoints: Int64 = 10_000, runQuota: Int64? = nil, workspaceLimit: Int? = nil, reference: String = ""
    ) {
        precondition(monthlyPrice >= .zero && includedUsage >= .zero, "contract amounts are never negative")
        precondition(usageRateBasisPoints >= 0, "a usage rate is never negative")
        self.monthlyPrice = monthlyPrice
        self.customLines = customLines
        self.includedUsage = includedUsage
        self.usageRateBasisPoints = usageRateBasisPoints
        self.runQuota = runQuota
        self.workspaceLimit = workspaceLimit
        self.reference = reference
    }

    /// What a period's uncovered usage costs under the contract: the part
    /// beyond `includedUsage` at `usageRateBasisPoints`, rounded half-up to
    /// the micro once.
    public func usageCharge(_ usage: Money) -> Money {
        guard usage > includedUsage, usageRateBasisPoints > 0 else { return .zero }
        let billable = UInt128(UInt64(usage.micros - includedUsage.micros))
        let rated = (billable * UInt128(UInt64(usageRateBasisPoints)) * 2 + 10_000) / 20_000
        return Money(micros: rated > UInt128(Int64.max) ? .max : Int64(rated))
    }
}
