/// Pricing: a line item's amount is its exact quantity × rate ÷ unit, rounded
/// half-up to the micro once; a total is the sum of the rounded line items.
///
/// Products are formed in 128 bits (quantities and rates are both at most
/// Int64.max and non-negative, so even input + output of an llm item stays
/// below 2^127): nothing overflows before the one rounding, and a result that
/// does not fit in Int64 micros is refused as `amountTooLarge` naming the item.
///
/// An llm item's input and output are combined exactly and rounded together:
/// it is one line item with one rounding, not two.
extension PriceCatalog {
    public func price(_ item: LineItem) throws(InvalidArgument) -> PricedLineItem {
        try item.validate()
        let micros: UInt128
        switch item {
        case .llm(let model, let inputTokens, let outputTokens):
            let rates = try rates(forModel: model)
            let exact = UInt128(inputTokens) * UInt128(rates.inputMicrosPerMillionTokens)
                + UInt128(outputTokens) * UInt128(rates.outputMicrosPerMillionTokens)
            micros = Self.roundedHalfUp(exact, dividedBy: Self.tokensPerRateUnit)
        case .toolCall(let integration, let calls):
            micros = UInt128(calls) * UInt128(try microsPerCall(forIntegration: integration))
        case .storage(let kind, let bytes):
            let exact = UInt128(bytes) * UInt128(microsPerGiB(forStorage: kind))
            micros = Self.roundedHalfUp(exact, dividedBy: Self.bytesPerRateUnit)
        }
        guard let amount = Int64(exactly: micros) else { throw .amountTooLarge(key: item.key) }
        return try PricedLineItem(item: item, amount: Money(micros: amount))
    }

    /// Prices every item of a debit or quote; at least one is required.
    public func price(_ items: [LineItem]) throws(InvalidArgument) -> PricedDebit {
        guard !items.isEmpty else { throw .noLineItems }
        var priced: [PricedLineItem] = []
        priced.reserveCapacity(items.count)
        for item in items {
            priced.append(try price(item))
        }
        return try PricedDebit(lineItems: priced, catalogVersion: version)
    }

    /// numerator ÷ unit rounded half-up: an exact half goes up. Inputs are
    /// non-negative, so half-up and half-away-from-zero agree.
    static func roundedHalfUp(_ numerator: UInt128, dividedBy unit: Int64) -> UInt128 {
        precondition(unit > 0)
        let divisor = UInt128(unit)
        let (quotient, remainder) = numerator.quotientAndRemainder(dividingBy: divisor)
        // remainder >= divisor / 2, without the odd-divisor trap of integer halving.
        return remainder >= divisor - remainder ? quotient + 1 : quotient
    }
}
