/// Input rules for a line item, checked before pricing.
///
/// - Negative quantities are refused.
/// - Zero quantities are allowed: usage arrives in chunks, and a chunk with
///   only output tokens (or a zero count) is honest data that prices to $0.
///   A debit as a whole must have at least one line item (see `price(_:)`).
/// - Model and integration names must not be empty; they are matched against
///   the catalog exactly (case-sensitive).
/// - An llm item's input + output tokens must fit in Int64, so its quantity
///   (total tokens) is representable in usage roll-ups.
extension LineItem {
    public func validate() throws(InvalidArgument) {
        switch self {
        case .llm(let model, let input, let output):
            guard !model.isEmpty else { throw .missingField("llm.model") }
            guard input >= 0 else { throw .negativeQuantity(field: "llm.input_tokens", value: input) }
            guard output >= 0 else { throw .negativeQuantity(field: "llm.output_tokens", value: output) }
            guard quantity != nil else { throw .quantityTooLarge(field: "llm.input_tokens + llm.output_tokens") }
        case .toolCall(let integration, let calls):
            guard !integration.isEmpty else { throw .missingField("tool_call.integration") }
            guard calls >= 0 else { throw .negativeQuantity(field: "tool_call.calls", value: calls) }
        case .storage(_, let bytes):
            guard bytes >= 0 else { throw .negativeQuantity(field: "storage.bytes", value: bytes) }
        }
    }
}
