/// A line item with its amount: what a trace shows and a roll-up sums.
public struct PricedLineItem: Hashable, Sendable {
    public let item: LineItem
    /// Exact quantity × rate, rounded half-up to the micro once.
    public let amount: Money
    /// In `unit`; for llm, input + output tokens.
    public let quantity: Int64

    /// Rebuilds a priced line item, e.g. from the journal. Pricing itself goes
    /// through `PriceCatalog.price(_:)`.
    public init(item: LineItem, amount: Money) throws(InvalidArgument) {
        try item.validate()
        guard let quantity = item.quantity else { preconditionFailure("validated llm token sum overflowed") }
        precondition(amount >= .zero, "a line item's amount is never negative")
        self.item = item
        self.amount = amount
        self.quantity = quantity
    }

    /// "llm:gpt-4o", "tool_call:slack", "storage:traces".
    public var key: String { item.key }
    public var unit: QuantityUnit { item.unit }
}
