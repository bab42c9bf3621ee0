extension LineItem {
    /// A stable key for roll-ups and traces: "llm:gpt-4o", "tool_call:slack",
    /// "storage:traces", "storage:knowledge_base".
    public var key: String {
        switch self {
        case .llm(let model, _, _): "llm:\(model)"
        case .toolCall(let integration, _): "tool_call:\(integration)"
        case .storage(let kind, _): "storage:\(kind.rawValue)"
        }
    }

    public var unit: QuantityUnit {
        switch self {
        case .llm: .tokens
        case .toolCall: .calls
        case .storage: .bytes
        }
    }

    /// The quantity in `unit`: for llm, input + output tokens. Nil only for
    /// an llm item whose token sum overflows, which `validate()` refuses.
    var quantity: Int64? {
        switch self {
        case .llm(_, let input, let output):
            let (sum, overflow) = input.addingReportingOverflow(output)
            return overflow ? nil : sum
        case .toolCall(_, let calls):
            return calls
        case .storage(_, let bytes):
            return bytes
        }
    }
}
