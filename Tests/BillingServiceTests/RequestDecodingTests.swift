import BillingCore
import BillingProto
@testable import BillingService
import GRPC
import SwiftProtobuf
import Testing

/// The hand-written request decoding against SwiftProtobuf's: whatever it
/// decodes, SwiftProtobuf decodes to the same message; what it declines
/// (nil) goes to SwiftProtobuf, which settles it.
@Suite struct RequestDecodingTests {
    struct Draw {
        var rng: SplitMix64

        mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }

        mutating func text() -> String {
            let alphabet = Array("abcXYZ-_.0123456789") + ["é", "€", "😀", " ", "'", "\""]
            return String((0..<int(0...12)).map { _ in alphabet[int(0...alphabet.count - 1)] })
        }

        mutating func amount() -> Int64 {
            switch int(0...4) {
            case 0: 0
            case 1: Int64.max
            case 2: Int64.min
            case 3: -Int64(int(1...1000))
            default: Int64(int(1...1_000_000_000))
            }
        }

        mutating func item() -> Billing_V1_LineItem {
            var item = Billing_V1_LineItem()
            switch int(0...3) {
            case 0:
                var llm = Billing_V1_LlmUsage()
                llm.model = text()
                llm.inputTokens = amount()
                llm.outputTokens = amount()
                item.llm = llm
            case 1:
                var call = Billing_V1_ToolCallUsage()
                call.integration = text()
                call.calls = amount()
                item.toolCall = call
            case 2:
                var storage = Billing_V1_StorageUsage()
                storage.kind = [.unspecified, .knowledgeBase, .traces][int(0...2)]
                storage.bytes = amount()
                item.storage = storage
            default:
                break  // no kind
            }
            return item
        }

        mutating func debit() -> Billing_V1_DebitRequest {
            var request = Billing_V1_DebitRequest()
            request.accountID = text()
            request.workspaceID = text()
            request.agentID = text()
            request.runID = text()
            request.idempotencyKey = text()
            request.lineItems = (0..<int(0...4)).map { _ in item() }
            return request
        }

        mutating func quote() -> Billing_V1_QuoteRequest {
            var request = Billing_V1_QuoteRequest()
            request.accountID = text()
            request.workspaceID = text()
            request.agentID = text()
            request.runID = text()
            request.lineItems = (0..<int(0...4)).map { _ in item() }
            return request
        }

        mutating func batch() -> Billing_V1_DebitBatchRequest {
            var request = Billing_V1_DebitBatchRequest()
            request.debits = (0..<int(0...5)).map { _ in debit() }
            return request
        }

        /// `bytes` with one random change: a byte replaced, a cut, bytes
        /// inserted, or an unknown field appended.
        mutating func mutated(_ bytes: [UInt8]) -> [UInt8] {
            var bytes = bytes
            switch int(0...3) {
            case 0 where !bytes.isEmpty: bytes[int(0...bytes.count - 1)] = UInt8(int(0...255))
            case 1 where !bytes.isEmpty: bytes.removeLast(int(1...bytes.count))
            case 2: bytes.insert(contentsOf: (0..<int(1...3)).map { _ in UInt8(int(0...255)) }, at: int(0...bytes.count))
            default: bytes += [0x78, UInt8(int(0...127))]  // field 15, varint
            }
            return bytes
        }
    }

    /// Every well-formed request decodes by hand, to SwiftProtobuf's message.
    func agrees<M: Message & HandDecodable & Equatable>(_ message: M) throws {
        let bytes: [UInt8] = try message.serializedBytes()
        let hand = try #require(M.handDecoded(bytes), "declined a well-formed \(M.self): \(message)")
        #expect(hand == (try M(serializedBytes: bytes)))
        #expect(hand == message)
    }

    /// A mutated request: decoded by hand only if SwiftProtobuf decodes it
    /// to the same message. Returns whether it was.
    func agreesOrDeclines<M: Message & HandDecodable & Equatable>(_ type: M.Type, _ bytes: [UInt8]) -> Bool {
        guard let hand = M.handDecoded(bytes) else { return false }
        let swift = try? M(serializedBytes: bytes)
        #expect(swift == hand, "hand-decoded \(bytes) as \(hand), SwiftProtobuf as \(String(describing: swift))")
        return true
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func wellFormedRequestsDecodeToSwiftProtobufsMessage(seed: UInt64) throws {
        var draw = Draw(rng: SplitMix64(seed: seed))
        for _ in 0..<500 {
            try agrees(draw.debit())
            try agrees(draw.quote())
            try agrees(draw.batch())
        }
    }

    @Test(arguments: [4, 5, 6] as [UInt64])
    func mutatedRequestsAreDecodedAsSwiftProtobufDoesOrDeclined(seed: UInt64) throws {
        var draw = Draw(rng: SplitMix64(seed: seed))
        var decodedByHand = 0
        for _ in 0..<2_000 {
            if agreesOrDeclines(Billing_V1_DebitRequest.self, draw.mutated(try draw.debit().serializedBytes())) { decodedByHand += 1 }
            if agreesOrDeclines(Billing_V1_QuoteRequest.self, draw.mutated(try draw.quote().serializedBytes())) { decodedByHand += 1 }
            if agreesOrDeclines(Billing_V1_DebitBatchRequest.self, draw.mutated(try draw.batch().serializedBytes())) { decodedByHand += 1 }
        }
        // Many mutations still decode (a changed character, a cut at a field's end): the comparison ran.
        #expect(decodedByHand > 500)
    }

    @Test func whatItDeclinesSwiftProtobufSettles() throws {
        var debit = Billing_V1_DebitRequest()
        debit.accountID = "acct"
        let good: [UInt8] = try debit.serializedBytes()
        // An unknown field: declined; SwiftProtobuf keeps it aside.
        #expect(Billing_V1_DebitRequest.handDecoded(good + [0x78, 0x01]) == nil)
        #expect((try? Billing_V1_DebitRequest(serializedBytes: good + [0x78, 0x01]))?.accountID == "acct")
        // Invalid UTF-8 in a string: declined; SwiftProtobuf refuses it.
        let badText: [UInt8] = [0x0A, 0x02, 0xC3, 0x28]
        #expect(Billing_V1_DebitRequest.handDecoded(badText) == nil)
        #expect((try? Billing_V1_DebitRequest(serializedBytes: badText)) == nil)
        // A storage kind the schema does not list: declined; SwiftProtobuf keeps it as UNRECOGNIZED.
        let oddKind: [UInt8] = [0x32, 0x04, 0x1A, 0x02, 0x08, 0x07]
        #expect(Billing_V1_DebitRequest.handDecoded(oddKind) == nil)
        #expect((try Billing_V1_DebitRequest(serializedBytes: oddKind)).lineItems.first?.storage.kind == .UNRECOGNIZED(7))
        // Two kinds in one line item: declined; SwiftProtobuf keeps the last.
        let twoKinds: [UInt8] = [0x32, 0x04, 0x0A, 0x00, 0x12, 0x00]
        #expect(Billing_V1_DebitRequest.handDecoded(twoKinds) == nil)
        #expect((try Billing_V1_DebitRequest(serializedBytes: twoKinds)).lineItems.first?.toolCall == Billing_V1_ToolCallUsage())
        // A truncated field: declined; SwiftProtobuf refuses it.
        #expect(Billing_V1_DebitRequest.handDecoded(Array(good.dropLast())) == nil)
        #expect((try? Billing_V1_DebitRequest(serializedBytes: Array(good.dropLast()))) == nil)
    }
}

/// Repeated fields are counted on the wire before decoding: a 4 MiB request
/// of two-byte empty entries would decode into millions of structs first.
@Suite struct WireCountTests {
    static func reason(_ type: any WireCounted.Type, _ bytes: [UInt8]) -> String? {
        do {
            try bytes.withUnsafeBytes { try type.checkCounts($0) }
            return nil
        } catch {
            return (error as? GRPCStatus)?.errorInfo?.reason
        }
    }

    @Test func aBatchPastItsLimitIsRefusedBeforeDecoding() {
        let emptyDebit: [UInt8] = [0x0A, 0x00]
        #expect(Self.reason(Billing_V1_DebitBatchRequest.self, Array(repeating: emptyDebit, count: 8_192).flatMap { $0 }) == nil)
        #expect(Self.reason(Billing_V1_DebitBatchRequest.self, Array(repeating: emptyDebit, count: 8_193).flatMap { $0 })
            == "BATCH_TOO_LARGE")
        let huge = Array(repeating: emptyDebit, count: 2_000_000).flatMap { $0 }  // 4 MB
        #expect(Self.reason(Billing_V1_DebitBatchRequest.self, huge) == "BATCH_TOO_LARGE")
    }

    @Test func lineItemsPastTheLimitAreRefusedInADebitAQuoteAndADebitOfABatch() throws {
        let emptyItems = { (field: UInt8, count: Int) in Array(repeating: [field << 3 | 2, 0x00] as [UInt8], count: count).flatMap { $0 } }
        #expect(Self.reason(Billing_V1_DebitRequest.self, emptyItems(6, 256)) == nil)
        #expect(Self.reason(Billing_V1_DebitRequest.self, emptyItems(6, 257)) == "TOO_MANY_LINE_ITEMS")
        #expect(Self.reason(Billing_V1_QuoteRequest.self, emptyItems(4, 257)) == "TOO_MANY_LINE_ITEMS")
        // Other fields between the items do not hide them.
        var debit = Billing_V1_DebitRequest()
        debit.accountID = "a"
        debit.lineItems = Array(repeating: Billing_V1_LineItem(), count: 257)
        debit.runID = "r"
        #expect(Self.reason(Billing_V1_DebitRequest.self, try debit.serializedBytes()) == "TOO_MANY_LINE_ITEMS")
        var batch = Billing_V1_DebitBatchRequest()
        debit.lineItems.removeLast()
        batch.debits = [debit, debit]
        #expect(Self.reason(Billing_V1_DebitBatchRequest.self, try batch.serializedBytes()) == nil)
        debit.lineItems.append(Billing_V1_LineItem())
        batch.debits.append(debit)
        // In a batch, a debit of 257 is refused on its own by the handler, not the batch here...
        #expect(Self.reason(Billing_V1_DebitBatchRequest.self, try batch.serializedBytes()) == nil)
        // ...which counts the line items of all its debits together.
        let emptyDebitOfItems = { (count: Int) -> [UInt8] in
            let body = emptyItems(6, count)
            var length = body.count
            var prefix: [UInt8] = [0x0A]
            while length >= 0x80 { prefix.append(UInt8(length & 0x7F) | 0x80); length >>= 7 }
            return prefix + [UInt8(length)] + body
        }
        let perDebit = WireScan.maxBatchLineItems / 4
        #expect(Self.reason(Billing_V1_DebitBatchRequest.self, Array(repeating: emptyDebitOfItems(perDebit), count: 4).flatMap { $0 }) == nil)
        #expect(Self.reason(Billing_V1_DebitBatchRequest.self, Array(repeating: emptyDebitOfItems(perDebit), count: 4).flatMap { $0 }
            + emptyDebitOfItems(1)) == "BATCH_TOO_LARGE")
    }

    /// GetUsage's `group_by`, packed or not: a 4 MiB packed run decoded to
    /// ~64 MB before the caller's account was checked.
    @Test func groupByPastThreeIsRefusedPackedOrNot() throws {
        var usage = Billing_V1_GetUsageRequest()
        usage.accountID = "a"
        usage.groupBy = [.day, .agent, .lineItem]
        let three: [UInt8] = try usage.serializedBytes()  // (packed: SwiftProtobuf's proto3 default)
        #expect(three.contains(0x22))
        #expect(Self.reason(Billing_V1_GetUsageRequest.self, three) == nil)
        usage.groupBy.append(.day)
        #expect(Self.reason(Billing_V1_GetUsageRequest.self, try usage.serializedBytes()) == "INVALID_FIELD")
        // Two packed runs and an unpacked value add up; values of several bytes count once each.
        let packed = { (values: [UInt8]) in [0x22, UInt8(values.count)] + values }
        #expect(Self.reason(Billing_V1_GetUsageRequest.self, packed([1, 2]) + [0x20, 0x03]) == nil)
        #expect(Self.reason(Billing_V1_GetUsageRequest.self, packed([1, 2]) + [0x20, 0x03] + packed([1])) == "INVALID_FIELD")
        #expect(Self.reason(Billing_V1_GetUsageRequest.self, packed([0x81, 0x01, 0x82, 0x01, 0x83, 0x01])) == nil)
        #expect(Self.reason(Billing_V1_GetUsageRequest.self, packed([0x81, 0x01, 0x82, 0x01, 0x83, 0x01, 0x01])) == "INVALID_FIELD")
        let huge = [0x0A, 0x01, 0x61, 0x22, 0x80, 0x80, 0x80, 0x02] + Array(repeating: UInt8(1), count: 4 << 20)
        #expect(Self.reason(Billing_V1_GetUsageRequest.self, huge) == "INVALID_FIELD")
        // The field with a wire type it is not decoded from is an unknown field, not counted.
        let fixed32: [UInt8] = [0x25, 0, 0, 0, 0]
        let unknown = packed([1, 2, 3]) + fixed32
        #expect(Self.reason(Billing_V1_GetUsageRequest.self, unknown) == nil)
        #expect(try Billing_V1_GetUsageRequest(serializedBytes: unknown).groupBy.count == 3)
    }

    @Test func anAPIKeysScopesAndAContractsCustomLinesAreCountedToo() throws {
        var key = Billing_V1_CreateApiKeyRequest()
        key.scopes = Array(repeating: "metering:read", count: 16)
        #expect(Self.reason(Billing_V1_CreateApiKeyRequest.self, try key.serializedBytes()) == nil)
        key.scopes.append("metering:read")
        #expect(Self.reason(Billing_V1_CreateApiKeyRequest.self, try key.serializedBytes()) == "INVALID_FIELD")
        // The handler refuses the same 17 (decoded by SwiftProtobuf, not counted here).
        #expect(throws: GRPCStatus.self) { try KeysService.scopes(key.scopes) }
        #expect(try KeysService.scopes(Array(key.scopes.dropLast())) == ["metering:read"])
        // A scopes field of another wire type is no scope.
        #expect(Self.reason(Billing_V1_CreateApiKeyRequest.self, Array(repeating: [0x10, 0x01] as [UInt8], count: 40).flatMap { $0 }) == nil)
        var contract = Billing_V1_SetEnterpriseContractRequest()
        contract.contract.customInvoiceLines = Array(repeating: Billing_V1_CustomInvoiceLine(), count: 20)
        let twenty: [UInt8] = try contract.serializedBytes()
        #expect(Self.reason(Billing_V1_SetEnterpriseContractRequest.self, twenty) == nil)
        // A second `contract` field merges into the first: its lines count with them.
        var one = Billing_V1_SetEnterpriseContractRequest()
        one.contract.customInvoiceLines = [Billing_V1_CustomInvoiceLine()]
        #expect(Self.reason(Billing_V1_SetEnterpriseContractRequest.self, twenty + (try one.serializedBytes())) == "INVALID_CONTRACT")
        #expect(try Billing_V1_SetEnterpriseContractRequest(serializedBytes: twenty + (try one.serializedBytes()))
            .contract.customInvoiceLines.count == 21)
        // Named as every INVALID_CONTRACT is (session 28).
        #expect(Billing_V1_SetEnterpriseContractRequest.tooManyCustomLines.errorInfo?.metadata["field"] == "contract.custom_invoice_lines")
    }

    @Test func malformedBytesAreLeftToTheDecoder() {
        #expect(Self.reason(Billing_V1_DebitBatchRequest.self, [0x0A, 0x05, 0x01]) == nil)  // cut short
        #expect(Self.reason(Billing_V1_DebitBatchRequest.self, [0xFF, 0xFF, 0xFF]) == nil)  // an unfinished varint
        // A group (no request has one; SwiftProtobuf would keep it as unknown) cannot hide what follows.
        #expect(Self.reason(Billing_V1_DebitRequest.self, [0x0B]) == "MALFORMED_MESSAGE")
        #expect(Self.reason(Billing_V1_DebitBatchRequest.self, [0x13, 0x14] + Array(repeating: [0x0A, 0x00] as [UInt8], count: 9_000).flatMap { $0 })
            == "MALFORMED_MESSAGE")
    }
}
