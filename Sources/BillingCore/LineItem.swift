/// One unit of usage a run reports: what is priced and charged.
public enum LineItem: Hashable, Sendable {
    /// Tokens of one model; input and output are priced at their own rates.
    case llm(model: String, inputTokens: Int64, outputTokens: Int64)
    /// Calls to one integration ("slack", "github", ...).
    case toolCall(integration: String, calls: Int64)
    /// Bytes written to storage of one kind.
    case storage(kind: StorageKind, bytes: Int64)
}

/// What storage a line item writes to. The raw value is the catalog's and the
/// key's spelling.
public enum StorageKind: String, Hashable, Sendable, CaseIterable {
    case knowledgeBase = "knowledge_base"
    case traces
}

/// The unit a line item's quantity counts.
public enum QuantityUnit: String, Hashable, Sendable, CaseIterable {
    case tokens, calls, bytes
}
