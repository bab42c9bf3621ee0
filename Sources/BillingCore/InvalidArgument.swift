/// Bad input to pricing: refused with `INVALID_ARGUMENT` before anything is
/// charged. Each case names the offending field, model or integration.
public enum InvalidArgument: Error, Hashable, Sendable {
    /// No rate for this model in the catalog.
    case unknownModel(String)
    /// No price for this integration and the catalog has no default.
    case unknownIntegration(String)
    /// A quantity below zero; `field` is e.g. "llm.input_tokens".
    case negativeQuantity(field: String, value: Int64)
    /// A required field is empty; `field` is e.g. "llm.model".
    case missingField(String)
    /// A quantity that is valid alone but whose combination does not fit in
    /// Int64 (an llm line item's input + output tokens).
    case quantityTooLarge(field: String)
    /// An amount that does not fit in Int64 micro-dollars; `key` is the line
    /// item's key ("llm:gpt-4o") or "total".
    case amountTooLarge(key: String)
    /// A debit or quote with no line items.
    case noLineItems

    public var code: StatusCode { .invalidArgument }

    /// The machine-readable `google.rpc.ErrorInfo.reason`.
    public var reason: String {
        switch self {
        case .unknownModel: "UNKNOWN_MODEL"
        case .unknownIntegration: "UNKNOWN_INTEGRATION"
        case .negativeQuantity: "NEGATIVE_QUANTITY"
        case .missingField: "MISSING_FIELD"
        case .quantityTooLarge: "QUANTITY_TOO_LARGE"
        case .amountTooLarge: "AMOUNT_TOO_LARGE"
        case .noLineItems: "NO_LINE_ITEMS"
        }
    }

    public var message: String {
        switch self {
        case .unknownModel(let model):
            "unknown model \"\(model)\": the price catalog has no rate for it"
        case .unknownIntegration(let integration):
            "unknown integration \"\(integration)\": the price catalog has no price for it and no default"
        case .negativeQuantity(let field, let value):
            "\(field) must not be negative (got \(value))"
        case .missingField(let field):
            "\(field) is required"
        case .quantityTooLarge(let field):
            "\(field) is too large"
        case .amountTooLarge(let key):
            "the amount of \(key) does not fit in 64-bit micro-dollars"
        case .noLineItems:
            "at least one line item is required"
        }
    }
}

extension InvalidArgument: CustomStringConvertible {
    public var description: String { message }
}
