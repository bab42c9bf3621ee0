import BillingCore
import Testing

@Suite struct LineItemTests {
    @Test(arguments: [
        (LineItem.llm(model: "gpt-4o", inputTokens: 1, outputTokens: 2), "llm:gpt-4o", QuantityUnit.tokens),
        (.toolCall(integration: "slack", calls: 1), "tool_call:slack", .calls),
        (.storage(kind: .traces, bytes: 1), "storage:traces", .bytes),
        (.storage(kind: .knowledgeBase, bytes: 1), "storage:knowledge_base", .bytes),
    ])
    func keyAndUnit(_ item: LineItem, _ key: String, _ unit: QuantityUnit) {
        #expect(item.key == key)
        #expect(item.unit == unit)
    }

    @Test(arguments: [
        (LineItem.llm(model: "gpt-4o", inputTokens: -1, outputTokens: 0),
         InvalidArgument.negativeQuantity(field: "llm.input_tokens", value: -1)),
        (.llm(model: "gpt-4o", inputTokens: 0, outputTokens: .min),
         .negativeQuantity(field: "llm.output_tokens", value: .min)),
        (.llm(model: "", inputTokens: 1, outputTokens: 1), .missingField("llm.model")),
        (.llm(model: "gpt-4o", inputTokens: .max, outputTokens: 1),
         .quantityTooLarge(field: "llm.input_tokens + llm.output_tokens")),
        (.toolCall(integration: "slack", calls: -5), .negativeQuantity(field: "tool_call.calls", value: -5)),
        (.toolCall(integration: "", calls: 1), .missingField("tool_call.integration")),
        (.storage(kind: .traces, bytes: -1), .negativeQuantity(field: "storage.bytes", value: -1)),
    ])
    func refusesInvalidItems(_ item: LineItem, _ expected: InvalidArgument) {
        #expect(throws: expected) { try item.validate() }
        #expect(expected.code == .invalidArgument)
    }

    @Test(arguments: [
        LineItem.llm(model: "gpt-4o", inputTokens: 0, outputTokens: 0),
        .llm(model: "gpt-4o", inputTokens: .max, outputTokens: 0),
        .llm(model: "gpt-4o", inputTokens: .max - 1, outputTokens: 1),
        .toolCall(integration: "slack", calls: 0),
        .storage(kind: .knowledgeBase, bytes: 0),
    ])
    func acceptsZeroAndLargestQuantities(_ item: LineItem) {
        #expect(throws: Never.self) { try item.validate() }
    }

    @Test func messagesNameTheField() {
        #expect(InvalidArgument.negativeQuantity(field: "tool_call.calls", value: -5).message
            == "tool_call.calls must not be negative (got -5)")
        #expect(InvalidArgument.unknownModel("gpt-9").message.contains("\"gpt-9\""))
        #expect(InvalidArgument.unknownIntegration("notion").message.contains("\"notion\""))
        #expect(InvalidArgument.amountTooLarge(key: "llm:gpt-4o").message.contains("llm:gpt-4o"))
    }
}
