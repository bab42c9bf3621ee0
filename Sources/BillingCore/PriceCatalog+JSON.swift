#if canImport(FoundationEssentials)
internal import FoundationEssentials
#else
internal import Foundation
#endif

/// The catalog file format (`config/catalog.json`). Every rate is a JSON
/// integer in micro-dollars; unknown fields are refused so that a misspelt
/// key cannot silently drop a price.
///
/// ```json
/// {
///   "comment": "optional, ignored",
///   "version": "2026-11-01",
///   "models": {
///     "gpt-4o": { "input_micros_per_million_tokens": 2500000,
///                 "output_micros_per_million_tokens": 10000000 }
///   },
///   "tool_calls": {
///     "default_micros_per_call": 2000,
///     "micros_per_call": { "slack": 1000 }
///   },
///   "storage": {
///     "micros_per_gib": { "knowledge_base": 100000, "traces": 50000 }
///   }
/// }
/// ```
extension PriceCatalog {
    public init(json: [UInt8]) throws(CatalogError) {
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(json))
        } catch let error as CatalogError {
            throw error
        } catch let error as DecodingError {
            throw .malformed(Self.describe(error))
        } catch {
            throw .malformed(String(describing: error))
        }
        try self.init(
            version: document.version,
            models: document.models,
            toolCallMicrosPerCall: document.toolCallMicrosPerCall,
            defaultToolCallMicrosPerCall: document.defaultToolCallMicrosPerCall,
            storageMicrosPerGiB: document.storageMicrosPerGiB)
    }

    public init(json: String) throws(CatalogError) {
        try self.init(json: Array(json.utf8))
    }

    private static func describe(_ error: DecodingError) -> String {
        let context: DecodingError.Context
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c):
            context = c
        @unknown default:
            return String(describing: error)
        }
        let path = JSONKey.path(context.codingPath)
        return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
    }
}

/// The file as decoded, before the catalog's own validation.
private struct Document: Decodable {
    var version: String
    var models: [String: ModelRates] = [:]
    var toolCallMicrosPerCall: [String: Int64] = [:]
    var defaultToolCallMicrosPerCall: Int64?
    var storageMicrosPerGiB: [StorageKind: Int64] = [:]

    init(from decoder: any Decoder) throws {
        let root = try decoder.container(keyedBy: JSONKey.self)
        try root.allowOnly("comment", "version", "models", "tool_calls", "storage")
        version = try root.required(String.self, "version")

        let models = try root.requiredObject("models")
        for key in models.allKeys {
            let rates = try models.nestedContainer(keyedBy: JSONKey.self, forKey: key)
            try rates.allowOnly("input_micros_per_million_tokens", "output_micros_per_million_tokens")
            self.models[key.stringValue] = ModelRates(
                inputMicrosPerMillionTokens: try rates.integer(JSONKey("input_micros_per_million_tokens")),
                outputMicrosPerMillionTokens: try rates.integer(JSONKey("output_micros_per_million_tokens")))
        }

        let toolCalls = try root.requiredObject("tool_calls")
        try toolCalls.allowOnly("default_micros_per_call", "micros_per_call")
        let defaultKey = JSONKey("default_micros_per_call")
        if toolCalls.contains(defaultKey) {
            defaultToolCallMicrosPerCall = try toolCalls.integer(defaultKey)
        }
        let perCall = try toolCalls.requiredObject("micros_per_call")
        for key in perCall.allKeys {
            toolCallMicrosPerCall[key.stringValue] = try perCall.integer(key)
        }

        let storage = try root.requiredObject("storage")
        try storage.allowOnly("micros_per_gib")
        let perGiB = try storage.requiredObject("micros_per_gib")
        try perGiB.allowOnly(StorageKind.allCases.map(\.rawValue))
        for kind in StorageKind.allCases {
            storageMicrosPerGiB[kind] = try perGiB.integer(JSONKey(kind.rawValue))
        }
    }
}

/// Any JSON object key.
private struct JSONKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(_ stringValue: String) { self.stringValue = stringValue }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }

    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }
}

extension KeyedDecodingContainer where Key == JSONKey {
    fileprivate func allowOnly(_ allowed: String...) throws(CatalogError) {
        try allowOnly(allowed)
    }

    fileprivate func allowOnly(_ allowed: [String]) throws(CatalogError) {
        for key in allKeys where !allowed.contains(key.stringValue) {
            throw .unknownField(JSONKey.path(codingPath + [key]))
        }
    }

    fileprivate func required<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        let key = JSONKey(name)
        guard contains(key) else { throw CatalogError.missingField(JSONKey.path(codingPath + [key])) }
        return try decode(type, forKey: key)
    }

    /// A rate: a JSON integer that fits in Int64. Decoded here so a fraction
    /// or an out-of-range number is reported with its path (the decoder's own
    /// error for these says only "not valid JSON").
    fileprivate func integer(_ key: JSONKey) throws -> Int64 {
        let path = JSONKey.path(codingPath + [key])
        guard contains(key) else { throw CatalogError.missingField(path) }
        do {
            return try decode(Int64.self, forKey: key)
        } catch {
            // Foundation reports a fraction or an out-of-range number with an
            // internal error type, so every failure here is treated alike.
            throw CatalogError.malformed("\(path): expected an integer number of micro-dollars within 64 bits")
        }
    }

    fileprivate func requiredObject(_ name: String) throws -> KeyedDecodingContainer<JSONKey> {
        let key = JSONKey(name)
        guard contains(key) else { throw CatalogError.missingField(JSONKey.path(codingPath + [key])) }
        return try nestedContainer(keyedBy: JSONKey.self, forKey: key)
    }
}
