/// The priced line items of one `Quote` or `Debit`, their total and the
/// catalog version they were priced with. The total is the checked sum of the
/// rounded line items, so a trace's items always add up to it.
public struct PricedDebit: Hashable, Sendable {
    public let lineItems: [PricedLineItem]
    public let total: Money
    public let catalogVersion: String

    /// Refuses an empty list (`noLineItems`) and a total beyond Int64
    /// (`amountTooLarge(key: "total")`).
    public init(lineItems: [PricedLineItem], catalogVersion: String) throws(InvalidArgument) {
        guard !lineItems.isEmpty else { throw .noLineItems }
        do {
            total = try Money.sum(lineItems.lazy.map(\.amount))
        } catch {
            throw .amountTooLarge(key: "total")
        }
        self.lineItems = lineItems
        self.catalogVersion = catalogVersion
    }
}
