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

    /// The unit of the line a roll-up `key` names (nil: none of the three
    /// prefixes). Read from the key's bytes, not its characters: `tool_call:`
    /// followed by a combining mark (an integration named "\u{301}x") is one
    /// character ":\u{301}" to `String.hasPrefix`, which missed the kind.
    public static func unit(ofKey key: String) -> QuantityUnit? {
        if key.utf8.starts(with: "llm:".utf8) { return .tokens }
        if key.utf8.starts(with: "tool_call:".utf8) { return .calls }
        if key.utf8.starts(with: "storage:".utf8) { return .bytes }
        return nil
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
