import BillingProto
import SwiftProtobuf

/// Hand-written encoding of the metering responses a debit returns
/// (`DebitResponse`, and `DebitBatchResponse` of them): SwiftProtobuf's
/// size pass and per-field visitor dispatch were ~4 % of a `DebitBatch`
/// call. The bytes are SwiftProtobuf's (fields in number order, defaults
/// left out, repeated int64 packed), checked byte for byte by
/// `ResponseEncodingTests`; a refusal in a batch, and any message carrying
/// unknown fields, is encoded by SwiftProtobuf.
protocol HandEncodable {
    func handEncoded() throws -> [UInt8]
}

extension Billing_V1_DebitResponse: HandEncodable {
    func handEncoded() throws -> [UInt8] {
        guard unknownFields.data.isEmpty else { return try serializedBytes() }
        var out = ProtobufWriter(capacity: 64 + catalogVersion.utf8.count + lineItemAmountsMicros.count * 10)
        write(to: &out)
        return out.finish()
    }

    func write(to out: inout ProtobufWriter) {
        out.int64(1, entryID)
        if !lineItemAmountsMicros.isEmpty {
            out.message(2) { out in
                for amount in lineItemAmountsMicros { out.rawVarint(UInt64(bitPattern: amount)) }
            }
        }
        out.int64(3, totalMicros)
        out.int64(4, balanceAfterMicros)
        out.string(5, catalogVersion)
        out.int64(6, coveredByCreditsMicros)
        out.int64(7, overageMicros)
        out.int64(8, debitedUnixSeconds)
    }
}

extension Billing_V1_DebitBatchResponse: HandEncodable {
    func handEncoded() throws -> [UInt8] {
        guard unknownFields.data.isEmpty else { return try serializedBytes() }
        var out = ProtobufWriter(capacity: 16 + results.count * 72)
        for result in results {
            guard result.unknownFields.data.isEmpty else {
                out.bytes(1, try result.serializedBytes() as [UInt8])
                continue
            }
            switch result.outcome {
            case .accepted(let accepted) where accepted.unknownFields.data.isEmpty:
                out.message(1) { out in out.message(1) { out in accepted.write(to: &out) } }
            case .accepted, .refused:
                out.bytes(1, try result.serializedBytes() as [UInt8])
            case nil:
                out.message(1) { _ in }
            }
        }
        return out.finish()
    }
}
