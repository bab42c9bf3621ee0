import BillingCore
import BillingLedger
import BillingProto
import GRPC

/// Request limits of the metering API, explicit.
enum MeteringLimits {
    /// Line items in one Debit or Quote.
    static let maxLineItems = 256
    /// Debits in one DebitBatch.
    static let maxBatch = 8192
    /// Bytes of an id (account, workspace, agent, run, idempotency key, model).
    static let maxIDBytes = 256
    /// Input or output tokens in one llm line item (a trillion). With the
    /// two below, far beyond any one report of usage, and far enough below
    /// Int64 that an account's lifetime sums (which bound every usage
    /// bucket) take thousands of the largest items (9,223 storage items of
    /// a petabyte, ~100,000 of the dearest LLM items — charged ~$860
    /// million and $9.2 trillion by then): without them one storage line of
    /// Int64.max bytes was accepted and every later storage debit of that
    /// account refused.
    static let maxTokens: Int64 = 1_000_000_000_000
    /// Calls in one tool_call line item (a billion).
    static let maxToolCalls: Int64 = 1_000_000_000
    /// Bytes in one storage line item (10^15: a petabyte).
    static let maxStorageBytes: Int64 = 1_000_000_000_000_000
}

/// Checks a required id: present, bounded, printable (no control bytes).
public func requireID(_ value: String, _ field: @autoclosure () -> String, required: Bool = true) throws(GRPCStatus) {
    if value.isEmpty {
        guard !required else {
            throw GRPCStatus(.invalidArgument, "\(field()) is required", reason: "MISSING_FIELD", metadata: ["field": field()])
        }
        return
    }
    guard value.utf8.count <= MeteringLimits.maxIDBytes else {
        throw GRPCStatus(.invalidArgument, "\(field()) is longer than \(MeteringLimits.maxIDBytes) bytes", reason: "FIELD_TOO_LONG",
                         metadata: ["field": field()])
    }
    // Control characters are single UTF-8 bytes (every byte of a longer
    // sequence is 0x80 or above): the bytes are scanned, in place when the
    // string is native. Bit 0: a control byte; bit 1: a byte past ASCII.
    func scan(_ bytes: some Sequence<UInt8>) -> UInt8 {
        bytes.reduce(0) { found, byte in found | (byte < 0x20 || byte == 0x7F ? 1 : 0) | (byte >= 0x80 ? 2 : 0) }
    }
    let found = value.utf8.withContiguousStorageIfAvailable(scan) ?? scan(value.utf8)
    guard found & 1 == 0 else {
        throw GRPCStatus(.invalidArgument, "\(field()) contains control characters", reason: "INVALID_FIELD", metadata: ["field": field()])
    }
    // Texts whose bytes differ can compare equal in Swift (canonically
    // equivalent: "é" composed, or "e" and a combining accent), while the
    // ledger's hashes, SQLite and the journal tell them apart: one account
    // could answer to two ids, one debit be charged under two keys. Only
    // the composed form (Unicode NFC, unique per equivalent text) is taken;
    // ASCII always is. Ids that print alike must not be two ids: no
    // invisible characters (C1 controls, zero-width and direction marks,
    // other format characters, line and paragraph separators) and no space
    // at either end ("demo " and "demo\u{200B}" look like "demo").
    // (`idTextProblem`, the rules a user token's ids follow too.)
    let problem: IDTextProblem?
    if found & 2 != 0 {
        problem = value.idTextProblem
    } else {  // ASCII: a space byte (its other whitespace is control bytes, refused above)
        problem = value.utf8.first == 0x20 || value.utf8.last == 0x20 ? .edgeSpace : nil
    }
    switch problem {
    case .notNFC?:
        throw GRPCStatus(.invalidArgument, "\(field()) must be in Unicode normalization form C (composed characters)",
                         reason: "INVALID_FIELD", metadata: ["field": field()])
    case .invisible?:
        throw GRPCStatus(.invalidArgument, "\(field()) contains invisible or control characters",
                         reason: "INVALID_FIELD", metadata: ["field": field()])
    case .edgeSpace?:
        throw GRPCStatus(.invalidArgument, "\(field()) begins or ends with a space", reason: "INVALID_FIELD",
                         metadata: ["field": field()])
    case nil:
        break
    }
}

/// A character a free text (names, notes, descriptions, reasons) may not
/// hold: controls (C0 and C1), line and paragraph separators, and the
/// direction overrides and isolates that reorder what follows them (a
/// text shown in a log, an audit line or a PDF must read as it is stored).
/// Zero-width joiners stay: scripts and emoji use them.
public func isDisallowedInText(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x202A...0x202E, 0x2066...0x2069: return true
    default: break
    }
    switch scalar.properties.generalCategory {
    case .control, .lineSeparator, .paragraphSeparator: return true
    default: return false
    }
}

extension LineItem {
    /// The domain line item of a request's, or INVALID_ARGUMENT naming what is wrong.
    init(_ proto: Billing_V1_LineItem, index: Int) throws(GRPCStatus) {
        switch proto.kind {
        case .llm(let llm):
            try requireID(llm.model, "line_items[\(index)].llm.model")
            self = .llm(model: llm.model, inputTokens: llm.inputTokens, outputTokens: llm.outputTokens)
        case .toolCall(let tool):
            try requireID(tool.integration, "line_items[\(index)].tool_call.integration")
            self = .toolCall(integration: tool.integration, calls: tool.calls)
        case .storage(let storage):
            switch storage.kind {
            case .knowledgeBase: self = .storage(kind: .knowledgeBase, bytes: storage.bytes)
            case .traces: self = .storage(kind: .traces, bytes: storage.bytes)
            default:
                throw GRPCStatus(.invalidArgument, "line_items[\(index)].storage.kind must be KNOWLEDGE_BASE or TRACES",
                                 reason: "INVALID_FIELD", metadata: ["field": "line_items[\(index)].storage.kind"])
            }
        case nil:
            throw GRPCStatus(.invalidArgument, "line_items[\(index)] has no llm, tool_call or storage",
                             reason: "MISSING_FIELD", metadata: ["field": "line_items[\(index)]"])
        }
    }
}

extension MeteringLimits {
    /// QUANTITY_TOO_LARGE for the first quantity of `items` over its limit
    /// (naming its field), nil if none is. A negative one passes: pricing
    /// refuses it as NEGATIVE_QUANTITY. Kept apart from `lineItems`'
    /// checks: a debit over a limit may be the retry of one charged before
    /// the limits (session 28), answered from its key (`settledRetry`).
    static func quantityRefusal(_ items: [Billing_V1_LineItem]) -> GRPCStatus? {
        for (index, item) in items.enumerated() {
            let over: (field: String, limit: Int64, value: Int64)? = switch item.kind {
            case .llm(let llm) where llm.inputTokens > maxTokens: ("llm.input_tokens", maxTokens, llm.inputTokens)
            case .llm(let llm) where llm.outputTokens > maxTokens: ("llm.output_tokens", maxTokens, llm.outputTokens)
            case .toolCall(let tool) where tool.calls > maxToolCalls: ("tool_call.calls", maxToolCalls, tool.calls)
            case .storage(let storage) where storage.bytes > maxStorageBytes: ("storage.bytes", maxStorageBytes, storage.bytes)
            default: nil
            }
            if let over {
                let field = "line_items[\(index)].\(over.field)"
                return GRPCStatus(.invalidArgument, "\(field) must be at most \(over.limit) (got \(over.value))",
                                  reason: "QUANTITY_TOO_LARGE", metadata: ["field": field])
            }
        }
        return nil
    }
}

extension PriceCatalog {
    /// Prices a request's line items (a Quote's): INVALID_ARGUMENT for bad
    /// or unknown items, or quantities over their limits.
    func price(_ items: [Billing_V1_LineItem]) throws(GRPCStatus) -> (items: [LineItem], priced: PricedDebit) {
        let domain = try lineItems(items)
        if let tooLarge = MeteringLimits.quantityRefusal(items) { throw tooLarge }
        return (domain, try priced(domain))
    }

    /// A request's line items as the domain's, each checked alone (count,
    /// kinds, ids; not the quantity limits, `MeteringLimits.quantityRefusal`):
    /// what a debit's fingerprint is of, whatever they cost.
    func lineItems(_ items: [Billing_V1_LineItem]) throws(GRPCStatus) -> [LineItem] {
        guard items.count <= MeteringLimits.maxLineItems else {
            throw GRPCStatus(.invalidArgument, "at most \(MeteringLimits.maxLineItems) line items per request", reason: "TOO_MANY_LINE_ITEMS")
        }
        var domain: [LineItem] = []
        domain.reserveCapacity(items.count)
        for (index, item) in items.enumerated() { domain.append(try LineItem(item, index: index)) }
        return domain
    }

    /// Checked line items priced by this catalog: INVALID_ARGUMENT for an
    /// item it has no price for, or amounts that do not fit.
    func priced(_ domain: [LineItem]) throws(GRPCStatus) -> PricedDebit {
        do {
            return try price(domain)
        } catch {
            // Which item (found again only on this path: a refusal is rare):
            // "line_items[2]: unknown model …", and the field in ErrorInfo.
            if let index = domain.indices.first(where: { (try? price(domain[$0])) == nil }) {
                throw GRPCStatus(.invalidArgument, "line_items[\(index)]: \(error.message)", reason: error.reason,
                                 metadata: ["field": "line_items[\(index)]"])
            }
            throw GRPCStatus(.invalidArgument, error.message, reason: error.reason)  // (the total)
        }
    }
}

/// `text` with every character `isDisallowedInText` refuses shown as
/// `\u{…}`: what a terminal prints of stored texts (`billing audit`, `billing
/// keys list`), so that none can forge a line or move the cursor.
public func printable(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isDisallowedInText) else { return text }
    var shown = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
        if isDisallowedInText(scalar) {
            shown.append(contentsOf: "\\u{\(String(scalar.value, radix: 16))}".unicodeScalars)
        } else {
            shown.append(scalar)
        }
    }
    return String(shown)
}
