/// Enterprise terms an operator sets through Admin; customers cannot.
public struct EnterpriseContract: Sendable, Hashable {
    /// The contract's monthly price, billed each period in advance.
    public var monthlyPrice: Money
    /// When set, each period's invoice bills this amount instead of
    /// `monthlyPrice` (a custom invoice amount agreed in the contract).
    public var customInvoiceAmount: Money?
    /// Whether usage beyond credits is billed on the invoice (metered, at
    /// catalog prices) or included in the contract.
    public var billsMeteredUsage: Bool

    public init(monthlyPrice: Money, customInvoiceAmount: Money? = nil, billsMeteredUsage: Bool = true) {
        precondition(monthlyPrice >= .zero, "a contract price is never negative")
        precondition((customInvoiceAmount ?? .zero) >= .zero, "a contract invoice amount is never negative")
        self.monthlyPrice = monthlyPrice
        self.customInvoiceAmount = customInvoiceAmount
        self.billsMeteredUsage = billsMeteredUsage
    }

    /// What one period's invoice bills for the contract.
    public var invoiceAmount: Money { customInvoiceAmount ?? monthlyPrice }
}
