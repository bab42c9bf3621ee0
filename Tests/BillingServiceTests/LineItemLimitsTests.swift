import BillingCore
@testable import BillingLedger
import BillingProto
@testable import BillingService
import GRPC
import Testing

/// Each quantity of a line item is bounded (MeteringLimits): the largest is
/// accepted and priced, one more is QUANTITY_TOO_LARGE naming its field.
@Suite struct LineItemLimitsTests {
    static let catalog = try! PriceCatalog(
        version: "t", models: ["m": .init(inputMicrosPerMillionTokens: 1, outputMicrosPerMillionTokens: 1)],
        toolCallMicrosPerCall: [:], defaultToolCallMicrosPerCall: 1,
        storageMicrosPerGiB: [.knowledgeBase: 1, .traces: 1])

    static func llm(input: Int64, output: Int64) -> Billing_V1_LineItem {
        var item = Billing_V1_LineItem()
        item.llm.model = "m"
        item.llm.inputTokens = input
        item.llm.outputTokens = output
        return item
    }

    static func tool(_ calls: Int64) -> Billing_V1_LineItem {
        var item = Billing_V1_LineItem()
        item.toolCall.integration = "slack"
        item.toolCall.calls = calls
        return item
    }

    static func storage(_ bytes: Int64) -> Billing_V1_LineItem {
        var item = Billing_V1_LineItem()
        item.storage.kind = .traces
        item.storage.bytes = bytes
        return item
    }

    @Test func theLargestQuantitiesArePriced() throws {
        let items = [Self.llm(input: MeteringLimits.maxTokens, output: MeteringLimits.maxTokens),
                     Self.tool(MeteringLimits.maxToolCalls), Self.storage(MeteringLimits.maxStorageBytes)]
        let priced = try Self.catalog.price(items).priced
        // 2 × 10^12 tokens at $1 a million: 2,000,000 micros; 10^9 calls at
        // one micro; 10^15 bytes at one micro a GiB: 931,322.57… → 931,323.
        #expect(priced.lineItems.map(\.amount.micros) == [2_000_000, 1_000_000_000, 931_323])
    }

    @Test(arguments: [
        (llm(input: MeteringLimits.maxTokens + 1, output: 0), "line_items[1].llm.input_tokens"),
        (llm(input: 0, output: MeteringLimits.maxTokens + 1), "line_items[1].llm.output_tokens"),
        (llm(input: Int64.max, output: 1), "line_items[1].llm.input_tokens"),
        (tool(MeteringLimits.maxToolCalls + 1), "line_items[1].tool_call.calls"),
        (storage(MeteringLimits.maxStorageBytes + 1), "line_items[1].storage.bytes"),
        (storage(Int64.max), "line_items[1].storage.bytes"),
    ])
    func oneMoreIsRefusedNamingItsField(item: Billing_V1_LineItem, field: String) {
        do {
            _ = try Self.catalog.price([Self.tool(1), item])
            Issue.record("\(field) over its limit was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.errorInfo?.reason == "QUANTITY_TOO_LARGE")
            #expect(error.errorInfo?.metadata["field"] == field)
            #expect(error.message.hasPrefix("\(field) must be at most "))
        }
    }

    @Test func aNegativeQuantityIsStillNegative() {
        do {
            _ = try Self.catalog.price([Self.storage(-1)])
            Issue.record("a negative quantity was accepted")
        } catch {
            #expect(error.errorInfo?.reason == "NEGATIVE_QUANTITY")
        }
    }
}

/// A debit over a limit charged before the limits existed (session 28) is
/// answered from its key when retried, as a debit priced under a catalog
/// since changed is: refused as bad input, its caller would hear "nothing
/// charged" for a debit that was. A new key is refused.
@Suite struct LineItemLimitsRetryTests {
    @Test func aRetryOfADebitChargedBeforeTheLimitsIsAnsweredFromItsKey() async throws {
        try await withSQLiteLedger { ledger in
            let metering = MeteringService(ledger: ledger, catalog: LineItemLimitsTests.catalog)
            _ = try await ledger.createAccount(id: "acct", plan: .pro, actor: "t")
            let bytes = 2 * MeteringLimits.maxStorageBytes
            let items: [LineItem] = [.storage(kind: .traces, bytes: bytes)]
            // Charged as an older build did: no limit on the quantity.
            let command = DebitCommand(accountID: "acct", workspaceID: "w", agentID: "a", runID: "r", idempotencyKey: "big",
                                       priced: try LineItemLimitsTests.catalog.price(items),
                                       fingerprint: DebitCommand.fingerprint(workspaceID: "w", agentID: "a", runID: "r", items: items))
            let outcomes = try await ledger.debitBatch([(command, PriorLookup(entry: nil, generation: ledger.cache.generation))])
            guard case .accepted(let charged)? = outcomes.first else {
                Issue.record("not charged: \(outcomes)")
                return
            }
            var request = Billing_V1_DebitRequest()
            (request.accountID, request.workspaceID, request.agentID, request.runID) = ("acct", "w", "a", "r")
            request.idempotencyKey = "big"
            request.lineItems = [LineItemLimitsTests.storage(bytes)]
            let retried = try await metering.debit(request)
            #expect(retried.entryID == Billing_V1_DebitResponse(charged).entryID && retried.totalMicros == charged.accepted.totalMicros)
            let batch = try await metering.debitBatch(.with { $0.debits = [request] })
            #expect(batch.results.first?.accepted.entryID == retried.entryID)
            request.idempotencyKey = "new"
            do {
                _ = try await metering.debit(request)
                Issue.record("a new debit over the limit was accepted")
            } catch let status as GRPCStatus {
                #expect(status.errorInfo?.reason == "QUANTITY_TOO_LARGE")
            }
        }
    }
}
