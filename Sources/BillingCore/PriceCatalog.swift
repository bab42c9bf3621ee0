/// A versioned price list: what each model, integration and storage kind
/// costs. Every debit records the `version` it was priced with.
///
/// Units, all integers:
/// - llm: micro-dollars per million tokens, input and output separately
///   (gpt-4o at $2.50/M input tokens is 2,500,000);
/// - tool calls: micro-dollars per call, per integration, with an optional
///   default for integrations not listed;
/// - storage: micro-dollars per GiB (2^30 bytes) written, per kind, so that a
///   price below one micro per byte ($0.10/GiB = 100,000) is exact.
///
/// A catalog is validated when built: the version is well formed, names are
/// not empty, every rate is non-negative and every storage kind is priced.
public struct PriceCatalog: Sendable, Hashable {
    /// Rates are per this many tokens.
    public static let tokensPerRateUnit: Int64 = 1_000_000
    /// Storage rates are per this many bytes (one GiB).
    public static let bytesPerRateUnit: Int64 = 1 << 30
    /// The version goes into every journal entry and trace: keep it short.
    public static let maxVersionLength = 64

    public let version: String
    public let models: [String: ModelRates]
    public let toolCallMicrosPerCall: [String: Int64]
    /// The per-call price of an integration not in `toolCallMicrosPerCall`;
    /// nil makes such integrations unknown (`INVALID_ARGUMENT`).
    public let defaultToolCallMicrosPerCall: Int64?
    public let storageMicrosPerGiB: [StorageKind: Int64]

    public init(
        version: String,
        models: [String: ModelRates],
        toolCallMicrosPerCall: [String: Int64],
        defaultToolCallMicrosPerCall: Int64?,
        storageMicrosPerGiB: [StorageKind: Int64]
    ) throws(CatalogError) {
        try PriceCatalog.validate(version: version)
        for (model, rates) in models {
            guard !model.isEmpty else { throw .emptyName("models") }
            try PriceCatalog.validate(rate: rates.inputMicrosPerMillionTokens,
                                      at: "models.\(model).input_micros_per_million_tokens")
            try PriceCatalog.validate(rate: rates.outputMicrosPerMillionTokens,
                                      at: "models.\(model).output_micros_per_million_tokens")
        }
        for (integration, price) in toolCallMicrosPerCall {
            guard !integration.isEmpty else { throw .emptyName("tool_calls.micros_per_call") }
            try PriceCatalog.validate(rate: price, at: "tool_calls.micros_per_call.\(integration)")
        }
        if let defaultToolCallMicrosPerCall {
            try PriceCatalog.validate(rate: defaultToolCallMicrosPerCall, at: "tool_calls.default_micros_per_call")
        }
        for kind in StorageKind.allCases {
            guard let rate = storageMicrosPerGiB[kind] else {
                throw .missingField("storage.micros_per_gib.\(kind.rawValue)")
            }
            try PriceCatalog.validate(rate: rate, at: "storage.micros_per_gib.\(kind.rawValue)")
        }
        self.version = version
        self.models = models
        self.toolCallMicrosPerCall = toolCallMicrosPerCall
        self.defaultToolCallMicrosPerCall = defaultToolCallMicrosPerCall
        self.storageMicrosPerGiB = storageMicrosPerGiB
    }

    /// 1–64 characters of `A-Z a-z 0-9 . - _ + :`, e.g. "2026-11-01".
    private static func validate(version: String) throws(CatalogError) {
        guard !version.isEmpty else { throw .missingField("version") }
        guard version.utf8.count <= maxVersionLength,
            version.utf8.allSatisfy({ byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"),
                    UInt8(ascii: "_"), UInt8(ascii: "+"), UInt8(ascii: ":"):
                    true
                default:
                    false
                }
            })
        else { throw .invalidVersion(version) }
    }

    private static func validate(rate: Int64, at path: String) throws(CatalogError) {
        guard rate >= 0 else { throw .negativeRate(path) }
    }
}

/// A model's rates in micro-dollars per million tokens.
public struct ModelRates: Sendable, Hashable {
    public var inputMicrosPerMillionTokens: Int64
    public var outputMicrosPerMillionTokens: Int64

    public init(inputMicrosPerMillionTokens: Int64, outputMicrosPerMillionTokens: Int64) {
        self.inputMicrosPerMillionTokens = inputMicrosPerMillionTokens
        self.outputMicrosPerMillionTokens = outputMicrosPerMillionTokens
    }
}

extension PriceCatalog {
    /// SHA-256 of the prices alone (every rate, sorted by name; not the
    /// version, the comment or the file's layout): what a version stands
    /// for. A ledger refuses to serve a version it priced debits with
    /// before under other prices (`catalog_versions`).
    public var contentDigest: [UInt8] {
        var text = ""
        for (model, rates) in models.sorted(by: { $0.key < $1.key }) {
            text += "model\t\(model)\t\(rates.inputMicrosPerMillionTokens)\t\(rates.outputMicrosPerMillionTokens)\n"
        }
        for (integration, price) in toolCallMicrosPerCall.sorted(by: { $0.key < $1.key }) {
            text += "tool\t\(integration)\t\(price)\n"
        }
        text += "tool-default\t\(defaultToolCallMicrosPerCall.map(String.init) ?? "none")\n"
        for (kind, price) in storageMicrosPerGiB.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            text += "storage\t\(kind.rawValue)\t\(price)\n"
        }
        return SHA256.hash(Array(text.utf8))
    }
}
