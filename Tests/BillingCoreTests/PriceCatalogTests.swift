import BillingCore
import Foundation
import Testing

@Suite struct PriceCatalogTests {
    /// The repository's `config/catalog.json`.
    static func defaultCatalogBytes() throws -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config/catalog.json")
        return Array(try Data(contentsOf: url))
    }

    @Test func loadsTheDefaultCatalog() throws {
        let catalog = try PriceCatalog(json: try Self.defaultCatalogBytes())
        #expect(catalog.version == "2026-11-01")
        #expect(try catalog.rates(forModel: "gpt-4o")
            == ModelRates(inputMicrosPerMillionTokens: 2_500_000, outputMicrosPerMillionTokens: 10_000_000))
        for model in ["gpt-4o-mini", "claude-sonnet-4", "claude-haiku-3.5"] {
            #expect(throws: Never.self) { try catalog.rates(forModel: model) }
        }
        #expect(try catalog.microsPerCall(forIntegration: "slack") == 1_000)
        #expect(try catalog.microsPerCall(forIntegration: "http") == 500)
        #expect(try catalog.microsPerCall(forIntegration: "notion") == 2_000)
        #expect(catalog.microsPerGiB(forStorage: .knowledgeBase) == 100_000)
        #expect(catalog.microsPerGiB(forStorage: .traces) == 50_000)
    }

    @Test func loadsAMinimalCatalogWithoutADefault() throws {
        let catalog = try PriceCatalog(json: Self.json())
        #expect(catalog.version == "v1")
        #expect(catalog.defaultToolCallMicrosPerCall == nil)
        #expect(throws: InvalidArgument.unknownIntegration("github")) {
            try catalog.microsPerCall(forIntegration: "github")
        }
        #expect(throws: InvalidArgument.unknownModel("GPT-4O")) { try catalog.rates(forModel: "GPT-4O") }
    }

    /// A valid catalog document with one part replaced.
    static func json(
        version: String = #""version": "v1""#,
        models: String = #""models": {"m": {"input_micros_per_million_tokens": 1, "output_micros_per_million_tokens": 2}}"#,
        toolCalls: String = #""tool_calls": {"micros_per_call": {"slack": 3}}"#,
        storage: String = #""storage": {"micros_per_gib": {"knowledge_base": 4, "traces": 5}}"#
    ) -> String {
        "{" + [version, models, toolCalls, storage].filter { !$0.isEmpty }.joined(separator: ", ") + "}"
    }

    @Test(arguments: [
        (json(version: ""), CatalogError.missingField("version")),
        (json(version: #""version": """#), .missingField("version")),
        (json(version: #""version": "two words""#), .invalidVersion("two words")),
        (json(version: #""version": "\#(String(repeating: "x", count: 65))""#),
         .invalidVersion(String(repeating: "x", count: 65))),
        (json(models: ""), .missingField("models")),
        (json(models: #""models": {"m": {"input_micros_per_million_tokens": 1}}"#),
         .missingField("models.m.output_micros_per_million_tokens")),
        (json(models: #""models": {"m": {"input_micros_per_million_tokens": -1, "output_micros_per_million_tokens": 2}}"#),
         .negativeRate("models.m.input_micros_per_million_tokens")),
        (json(models: #""models": {"m": {"input_micros_per_million_tokens": 1, "output_micros_per_million_tokens": 2, "cache": 3}}"#),
         .unknownField("models.m.cache")),
        (json(models: #""models": {"": {"input_micros_per_million_tokens": 1, "output_micros_per_million_tokens": 2}}"#),
         .emptyName("models")),
        (json(toolCalls: #""tool_calls": {"micros_per_call": {"slack": -3}}"#),
         .negativeRate("tool_calls.micros_per_call.slack")),
        (json(toolCalls: #""tool_calls": {"default_micros_per_call": -1, "micros_per_call": {}}"#),
         .negativeRate("tool_calls.default_micros_per_call")),
        (json(toolCalls: #""tool_calls": {"default": 1, "micros_per_call": {}}"#),
         .unknownField("tool_calls.default")),
        (json(toolCalls: #""tool_calls": {}"#), .missingField("tool_calls.micros_per_call")),
        (json(storage: #""storage": {"micros_per_gib": {"traces": 5}}"#),
         .missingField("storage.micros_per_gib.knowledge_base")),
        (json(storage: #""storage": {"micros_per_gib": {"knowledge_base": 4, "traces": 5, "logs": 6}}"#),
         .unknownField("storage.micros_per_gib.logs")),
        (json(storage: #""storage": {"micros_per_gib": {"knowledge_base": 4, "traces": -5}}"#),
         .negativeRate("storage.micros_per_gib.traces")),
        (json(storage: #""storage": {"micros_per_gib": {}}, "currency": "EUR""#), .unknownField("currency")),
    ])
    func refusesInvalidCatalogs(_ json: String, _ expected: CatalogError) {
        #expect(throws: expected) { try PriceCatalog(json: json) }
    }

    @Test(arguments: [
        "",
        "not json",
        "[]",
        json(version: #""version": 7"#),
        json(toolCalls: #""tool_calls": {"micros_per_call": {"slack": 2.5}}"#),
        json(toolCalls: #""tool_calls": {"micros_per_call": {"slack": 9223372036854775808}}"#),
        json(toolCalls: #""tool_calls": {"micros_per_call": {"slack": "3"}}"#),
    ])
    func refusesMalformedCatalogs(_ json: String) {
        #expect {
            try PriceCatalog(json: json)
        } throws: { error in
            guard case .malformed = error as? CatalogError else { return false }
            return true
        }
    }

    @Test(arguments: ["2.5", "9223372036854775808", "-9223372036854775809", #""3""#, "null"])
    func malformedRateNamesItsPath(_ value: String) {
        let json = Self.json(toolCalls: #""tool_calls": {"micros_per_call": {"slack": \#(value)}}"#)
        #expect(throws: CatalogError.malformed(
            "tool_calls.micros_per_call.slack: expected an integer number of micro-dollars within 64 bits")
        ) {
            try PriceCatalog(json: json)
        }
    }

    @Test func largestRateLoads() throws {
        let json = Self.json(toolCalls: #""tool_calls": {"micros_per_call": {"slack": 9223372036854775807}}"#)
        #expect(try PriceCatalog(json: json).toolCallMicrosPerCall["slack"] == .max)
    }

    @Test func programmaticCatalogIsValidatedToo() {
        #expect(throws: CatalogError.negativeRate("models.m.output_micros_per_million_tokens")) {
            try PriceCatalog(
                version: "v1",
                models: ["m": ModelRates(inputMicrosPerMillionTokens: 0, outputMicrosPerMillionTokens: -1)],
                toolCallMicrosPerCall: [:], defaultToolCallMicrosPerCall: nil,
                storageMicrosPerGiB: [.knowledgeBase: 0, .traces: 0])
        }
    }
}
