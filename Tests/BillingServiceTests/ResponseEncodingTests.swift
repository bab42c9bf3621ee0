import BillingCore
import BillingProto
@testable import BillingService
import Foundation
import SwiftProtobuf
import Testing

/// The hand-written response encoding writes exactly SwiftProtobuf's bytes.
@Suite struct ResponseEncodingTests {
    typealias Draw = RequestDecodingTests.Draw

    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func debitResponsesEncodeAsSwiftProtobufDoes(seed: UInt64) throws {
        var draw = Draw(rng: SplitMix64(seed: seed))
        for _ in 0..<2_000 {
            let response = draw.debitResponse()
            #expect(try response.handEncoded() == (try response.serializedBytes() as [UInt8]), "\(response)")
        }
        #expect(try Billing_V1_DebitResponse().handEncoded().isEmpty)
    }

    @Test(arguments: [5, 6, 7] as [UInt64])
    func batchResponsesEncodeAsSwiftProtobufDoes(seed: UInt64) throws {
        var draw = Draw(rng: SplitMix64(seed: seed))
        for _ in 0..<300 {
            var response = Billing_V1_DebitBatchResponse()
            // Up to 300 results, each's length of one or two varint bytes
            // (three: `theWriterGrowsFromAnyCapacity`).
            response.results = (0..<draw.int(0...300)).map { _ in draw.batchResult() }
            let expected: [UInt8] = try response.serializedBytes()
            #expect(try response.handEncoded() == expected)
            #expect(try Billing_V1_DebitBatchResponse(serializedBytes: try response.handEncoded()) == response)
        }
    }

    /// The writer starts from any capacity and grows as it writes;
    /// lengths of one, two and three varint bytes are widened in place.
    @Test func theWriterGrowsFromAnyCapacity() throws {
        var draw = Draw(rng: SplitMix64(seed: 9))
        for capacity in [0, 1, 16, 17, 100] {
            for round in 0..<200 {
                var response = draw.debitResponse()
                if round % 50 == 0 { response.catalogVersion = String(repeating: "v", count: 20_000 + round) }
                var out = ProtobufWriter(capacity: capacity)
                out.message(3) { out in response.write(to: &out) }
                var wrapper = Billing_V1_DebitResult()
                wrapper.accepted = response
                // DebitResult's field 1 is the response: the same bytes under field 3 differ in the first byte only.
                var expected: [UInt8] = try wrapper.serializedBytes()
                expected[0] = 3 << 3 | 2
                #expect(out.finish() == expected, "capacity \(capacity), round \(round)")
            }
        }
    }

    /// Unknown fields (not produced by this service, but possible in a
    /// message built from parsed bytes) go through SwiftProtobuf, kept.
    @Test func unknownFieldsAreKept() throws {
        var draw = Draw(rng: SplitMix64(seed: 8))
        var debit = draw.debitResponse()
        try debit.merge(serializedBytes: [0x98, 0x06, 0x05] as [UInt8])  // field 99, varint 5
        #expect(try debit.handEncoded() == (try debit.serializedBytes() as [UInt8]))
        var batch = Billing_V1_DebitBatchResponse()
        var result = Billing_V1_DebitResult()
        result.accepted = debit
        batch.results = [draw.batchResult(), result, draw.batchResult()]
        #expect(try batch.handEncoded() == (try batch.serializedBytes() as [UInt8]))
        try batch.merge(serializedBytes: [0x98, 0x06, 0x07] as [UInt8])
        #expect(try batch.handEncoded() == (try batch.serializedBytes() as [UInt8]))
    }
}

/// Responses drawn with `RequestDecodingTests.Draw`'s texts and amounts.
extension RequestDecodingTests.Draw {
    /// An amount, or a small one (a varint of one byte).
    mutating func responseAmount() -> Int64 {
        int(0...4) == 0 ? Int64(int(1...127)) : amount()
    }

    mutating func debitResponse() -> Billing_V1_DebitResponse {
        var response = Billing_V1_DebitResponse()
        response.entryID = responseAmount()
        response.lineItemAmountsMicros = (0..<int(0...20)).map { _ in responseAmount() }
        response.totalMicros = responseAmount()
        response.balanceAfterMicros = responseAmount()
        response.catalogVersion = text()
        response.coveredByCreditsMicros = responseAmount()
        response.overageMicros = responseAmount()
        response.debitedUnixSeconds = responseAmount()
        return response
    }

    mutating func batchResult() -> Billing_V1_DebitResult {
        var result = Billing_V1_DebitResult()
        switch int(0...5) {
        case 0:
            break  // no outcome set
        case 1:
            var refused = Billing_V1_Refusal()
            refused.code = 9
            refused.reason = "INSUFFICIENT_CREDITS"
            refused.message = text()
            refused.metadata = ["account": text()]
            result.refused = refused
        case 2:
            result.accepted = Billing_V1_DebitResponse()  // set, all defaults
        default:
            result.accepted = debitResponse()
        }
        return result
    }
}
