import BillingCore
import Testing

/// Hand-computed amounts. M = Int64.max = 9,223,372,036,854,775,807.
@Suite struct PricingTests {
    static let M = Int64.max

    static func catalog(
        models: [String: (Int64, Int64)] = [:],
        toolCalls: [String: Int64] = [:],
        defaultToolCall: Int64? = nil,
        knowledgeBase: Int64 = 100_000,
        traces: Int64 = 50_000
    ) throws -> PriceCatalog {
        try PriceCatalog(
            version: "test-1",
            models: models.mapValues {
                ModelRates(inputMicrosPerMillionTokens: $0.0, outputMicrosPerMillionTokens: $0.1)
            },
            toolCallMicrosPerCall: toolCalls,
            defaultToolCallMicrosPerCall: defaultToolCall,
            storageMicrosPerGiB: [.knowledgeBase: knowledgeBase, .traces: traces])
    }

    static func llm(_ input: Int64, _ output: Int64, rates: (Int64, Int64)) throws -> Int64 {
        try catalog(models: ["m": rates]).price(.llm(model: "m", inputTokens: input, outputTokens: output))
            .amount.micros
    }

    // MARK: Realistic prices

    @Test func realisticLLMPrices() throws {
        // claude-sonnet-4, $3 / $15 per M: 12,345 × 3 + 6,789 × 15 = 37,035 + 101,835.
        #expect(try Self.llm(12_345, 6_789, rates: (3_000_000, 15_000_000)) == 138_870)
        // gpt-4o-mini, $0.15 / $0.60 per M: 150.15 + 199.8 = 349.95 → 350.
        #expect(try Self.llm(1_001, 333, rates: (150_000, 600_000)) == 350)
        // gpt-4o, $2.50 / $10 per M: one input token is 2.5 micros → 3.
        #expect(try Self.llm(1, 0, rates: (2_500_000, 10_000_000)) == 3)
    }

    @Test func toolCallsAndDefault() throws {
        let catalog = try Self.catalog(toolCalls: ["slack": 1_000, "http": 500], defaultToolCall: 2_000)
        #expect(try catalog.price(.toolCall(integration: "slack", calls: 3)).amount == Money(micros: 3_000))
        #expect(try catalog.price(.toolCall(integration: "http", calls: 7)).amount == Money(micros: 3_500))
        #expect(try catalog.price(.toolCall(integration: "notion", calls: 2)).amount == Money(micros: 4_000))
        #expect(try catalog.price(.toolCall(integration: "slack", calls: 0)).amount == .zero)
    }

    @Test func storagePerGiBBelowOneMicroPerByte() throws {
        let catalog = try Self.catalog(knowledgeBase: 100_000, traces: 50_000)
        // 1 GiB of knowledge base at $0.10/GiB.
        #expect(try catalog.price(.storage(kind: .knowledgeBase, bytes: 1 << 30)).amount.micros == 100_000)
        // 1 KiB: 1,024 × 100,000 / 2^30 = 0.095 → 0.
        #expect(try catalog.price(.storage(kind: .knowledgeBase, bytes: 1_024)).amount.micros == 0)
        // 1,000,000 bytes of traces: 5 × 10^10 / 2^30 = 46.566 → 47.
        #expect(try catalog.price(.storage(kind: .traces, bytes: 1_000_000)).amount.micros == 47)
    }

    // MARK: Rounding half-up, once

    /// (tokens, micros) at 1 micro per million tokens: the amount is tokens / 10^6.
    static let llmRounding: [(Int64, Int64)] = [
        (499_999, 0),  // 0.499999 → 0
        (500_000, 1),  // 0.5 exactly → up
        (500_001, 1),  // 0.500001 → 1
        (1_499_999, 1),
        (1_500_000, 2),  // 1.5 → 2
        (2_500_000, 3),  // 2.5 → 3: half-up, not half-even
        (999_999, 1),
        (1_000_000, 1),
    ]

    @Test(arguments: llmRounding)
    func llmRoundsHalfUp(tokens: Int64, micros: Int64) throws {
        #expect(try Self.llm(tokens, 0, rates: (1, 1)) == micros)
        #expect(try Self.llm(0, tokens, rates: (1, 1)) == micros)
    }

    /// (bytes, micros) at 1 micro per GiB: the amount is bytes / 2^30.
    static let storageRounding: [(Int64, Int64)] = [
        ((1 << 29) - 1, 0),  // just below half a micro
        (1 << 29, 1),  // exactly half
        ((1 << 29) + 1, 1),  // just above
        ((3 << 29) - 1, 1),  // 1.4999...
        (3 << 29, 2),  // 1.5
    ]

    @Test(arguments: storageRounding)
    func storageRoundsHalfUp(bytes: Int64, micros: Int64) throws {
        let catalog = try Self.catalog(knowledgeBase: 1, traces: 1)
        #expect(try catalog.price(.storage(kind: .traces, bytes: bytes)).amount.micros == micros)
    }

    @Test func llmInputAndOutputAreCombinedBeforeTheOneRounding() throws {
        // 0.25 + 0.25 = 0.5 → 1. Rounding each part would give 0 + 0.
        #expect(try Self.llm(250_000, 250_000, rates: (1, 1)) == 1)
        // 0.4 + 0.4 = 0.8 → 1, not 0 + 0.
        #expect(try Self.llm(400_000, 400_000, rates: (1, 1)) == 1)
        // 0.6 + 0.6 = 1.2 → 1, not 1 + 1.
        #expect(try Self.llm(600_000, 600_000, rates: (1, 1)) == 1)
    }

    // MARK: The largest quantities and rates that fit

    @Test func largestTokenCountsAndRates() throws {
        let M = Self.M
        // M tokens at $1/M tokens: exactly M micros; one micro more per M tokens does not fit.
        #expect(try Self.llm(M, 0, rates: (1_000_000, 0)) == M)
        #expect(throws: InvalidArgument.amountTooLarge(key: "llm:m")) { try Self.llm(M, 0, rates: (1_000_001, 0)) }
        // The largest rate: 10^6 tokens at M per M tokens = M; 10^6 + 1 tokens does not fit.
        // The intermediate product (≈ 9.2 × 10^24) is far beyond 64 bits.
        #expect(try Self.llm(1_000_000, 0, rates: (M, 0)) == M)
        #expect(throws: InvalidArgument.amountTooLarge(key: "llm:m")) { try Self.llm(1_000_001, 0, rates: (M, 0)) }
        // M × 999,999 / 10^6 = M − 9,223,372,036,854.775807 = ...738,952.224193 → down.
        #expect(try Self.llm(M, 0, rates: (999_999, 0)) == 9_223_362_813_482_738_952)
        // M / 10^6 = 9,223,372,036,854.775807 → up.
        #expect(try Self.llm(M, 0, rates: (1, 0)) == 9_223_372_036_855)
        // Both rates at their maximum with the token sum at its maximum: M × M / 10^6 does not fit.
        #expect(throws: InvalidArgument.amountTooLarge(key: "llm:m")) { try Self.llm(M / 2, M / 2 + 1, rates: (M, M)) }
        // Input and output each near 2^62, combined exactly: (2^62 + 2^62 − 1) × 10^6 / 10^6 = M.
        #expect(try Self.llm(1 << 62, (1 << 62) - 1, rates: (1_000_000, 1_000_000)) == M)
        #expect(throws: InvalidArgument.amountTooLarge(key: "llm:m")) {
            try Self.llm(1 << 62, (1 << 62) - 1, rates: (1_000_000, 1_000_001))
        }
    }

    @Test func roundingAtTheTopOfTheRange() throws {
        let M = Self.M
        // (M − 1) + 0.5 rounds up to M: fits.
        #expect(try Self.llm(1_000_000, 1, rates: (M - 1, 500_000)) == M)
        // M + 0.499999 rounds down to M: fits.
        #expect(try Self.llm(1_000_000, 1, rates: (M, 499_999)) == M)
        // M + 0.5 rounds up to M + 1: does not fit.
        #expect(throws: InvalidArgument.amountTooLarge(key: "llm:m")) {
            try Self.llm(1_000_000, 1, rates: (M, 500_000))
        }
    }

    @Test func largestToolCallsAndStorage() throws {
        let M = Self.M
        let one = try Self.catalog(toolCalls: ["x": 1, "y": 2])
        #expect(try one.price(.toolCall(integration: "x", calls: M)).amount.micros == M)
        #expect(try one.price(.toolCall(integration: "y", calls: M / 2)).amount.micros == M - 1)
        #expect(throws: InvalidArgument.amountTooLarge(key: "tool_call:y")) {
            try one.price(.toolCall(integration: "y", calls: M / 2 + 1))
        }

        // M bytes at 2^30 micros/GiB (one micro per byte): exactly M; one more micro per GiB overflows.
        let perByte = try Self.catalog(knowledgeBase: 1 << 30, traces: (1 << 30) + 1)
        #expect(try perByte.price(.storage(kind: .knowledgeBase, bytes: M)).amount.micros == M)
        #expect(throws: InvalidArgument.amountTooLarge(key: "storage:traces")) {
            try perByte.price(.storage(kind: .traces, bytes: M))
        }
        // M × (2^30 − 1) / 2^30 = M − 8,589,934,591.999999999 → ...841,215.000000001 → down.
        let below = try Self.catalog(knowledgeBase: (1 << 30) - 1, traces: 1)
        #expect(try below.price(.storage(kind: .knowledgeBase, bytes: M)).amount.micros == 9_223_372_028_264_841_215)
        // M / 2^30 = 8,589,934,591.99999999907 → up.
        #expect(try below.price(.storage(kind: .traces, bytes: M)).amount.micros == 8_589_934_592)
    }

    // MARK: Totals

    @Test func totalIsTheSumOfRoundedLineItems() throws {
        let catalog = try Self.catalog(
            models: ["gpt-4o-mini": (150_000, 600_000)], toolCalls: ["slack": 1_000], defaultToolCall: 2_000,
            knowledgeBase: 100_000, traces: 50_000)
        let debit = try catalog.price([
            .llm(model: "gpt-4o-mini", inputTokens: 1_001, outputTokens: 333),  // 349.95 → 350
            .toolCall(integration: "slack", calls: 2),  // 2,000
            .toolCall(integration: "notion", calls: 1),  // default 2,000
            .storage(kind: .traces, bytes: 1_000_000),  // 46.57 → 47
            .storage(kind: .knowledgeBase, bytes: 1_024),  // 0.095 → 0
        ])
        #expect(debit.lineItems.map(\.amount.micros) == [350, 2_000, 2_000, 47, 0])
        #expect(debit.total == Money(micros: 4_397))
        #expect(try Money.sum(debit.lineItems.map(\.amount)) == debit.total)
        #expect(debit.catalogVersion == "test-1")
        #expect(debit.lineItems.map(\.key)
            == ["llm:gpt-4o-mini", "tool_call:slack", "tool_call:notion", "storage:traces", "storage:knowledge_base"])
        #expect(debit.lineItems.map(\.quantity) == [1_334, 2, 1, 1_000_000, 1_024])
        #expect(debit.lineItems.map(\.unit) == [.tokens, .calls, .calls, .bytes, .bytes])
    }

    @Test func manySubMicroItemsDoNotAddUpToMoreThanTheirRoundedSum() throws {
        // Each item is 0.4 micro → 0; the total is 0, not round(0.4 × 10).
        let catalog = try Self.catalog(models: ["m": (1, 1)])
        let debit = try catalog.price(Array(repeating: .llm(model: "m", inputTokens: 400_000, outputTokens: 0), count: 10))
        #expect(debit.total == .zero)
    }

    @Test func totalOverflowIsRefused() throws {
        let catalog = try Self.catalog(toolCalls: ["x": 1])
        let half = LineItem.toolCall(integration: "x", calls: Self.M / 2 + 1)
        #expect(throws: InvalidArgument.amountTooLarge(key: "total")) { try catalog.price([half, half]) }
        let fits = try catalog.price([half, .toolCall(integration: "x", calls: Self.M / 2)])
        #expect(fits.total == Money(micros: Self.M))
    }

    // MARK: Refusals

    @Test func unknownModelAndIntegrationAreNamed() throws {
        let catalog = try Self.catalog(models: ["gpt-4o": (1, 1)], toolCalls: ["slack": 1])
        #expect(throws: InvalidArgument.unknownModel("gpt-5")) {
            try catalog.price([.llm(model: "gpt-5", inputTokens: 1, outputTokens: 1)])
        }
        #expect(throws: InvalidArgument.unknownIntegration("notion")) {
            try catalog.price([.toolCall(integration: "slack", calls: 1), .toolCall(integration: "notion", calls: 1)])
        }
        #expect(InvalidArgument.unknownModel("gpt-5").reason == "UNKNOWN_MODEL")
        #expect(InvalidArgument.unknownIntegration("notion").reason == "UNKNOWN_INTEGRATION")
    }

    @Test func emptyDebitAndNegativeQuantitiesAreRefused() throws {
        let catalog = try Self.catalog(models: ["m": (1, 1)])
        #expect(throws: InvalidArgument.noLineItems) { try catalog.price([LineItem]()) }
        #expect(throws: InvalidArgument.negativeQuantity(field: "llm.output_tokens", value: -1)) {
            try catalog.price(.llm(model: "m", inputTokens: 1, outputTokens: -1))
        }
        // Validation comes before lookup: a negative quantity of an unknown model reports the quantity.
        #expect(throws: InvalidArgument.negativeQuantity(field: "llm.input_tokens", value: -1)) {
            try catalog.price(.llm(model: "nope", inputTokens: -1, outputTokens: 0))
        }
    }
}
