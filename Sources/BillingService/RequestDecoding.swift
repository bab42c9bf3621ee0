import BillingProto
import GRPC

/// Hand-written decoding of the metering requests (Debit, DebitBatch,
/// Quote): their usual shape — known fields, right wire types, each line
/// item with one kind — read straight into the generated structs, without
/// SwiftProtobuf's generic field dispatch. Anything else (an unknown field
/// or enum value, a wrong wire type, a line item kind given twice, invalid
/// UTF-8, a truncated field) returns nil and the request goes through
/// SwiftProtobuf, which accepts or refuses it as it always has: a request
/// decodes here to exactly the message SwiftProtobuf would produce
/// (`RequestDecodingTests` compares them on random and mutated inputs).
/// The wire reader and the line-item decoder are the journal's
/// (`ProtobufReader`, `Billing_V1_LineItem.decoded(from:)` in BillingProto).
protocol HandDecodable {
    static func handDecoded(_ bytes: [UInt8]) -> Self?
}

extension Billing_V1_DebitRequest: HandDecodable {
    static func handDecoded(_ bytes: [UInt8]) -> Self? {
        bytes.withUnsafeBytes { buffer in
            var reader = ProtobufReader(buffer)
            return Self.read(&reader)
        }
    }

    fileprivate static func read(_ reader: inout ProtobufReader) -> Self? {
        var request = Self()
        while !reader.isAtEnd {
            guard let (field, wireType) = reader.tag(), wireType == 2 else { return nil }
            switch field {
            case 1: guard let value = reader.string() else { return nil }; request.accountID = value
            case 2: guard let value = reader.string() else { return nil }; request.workspaceID = value
            case 3: guard let value = reader.string() else { return nil }; request.agentID = value
            case 4: guard let value = reader.string() else { return nil }; request.runID = value
            case 5: guard let value = reader.string() else { return nil }; request.idempotencyKey = value
            case 6: guard let item = reader.lineItem() else { return nil }; append(item, to: &request.lineItems)
            default: return nil
            }
        }
        return request
    }
}

extension Billing_V1_QuoteRequest: HandDecodable {
    static func handDecoded(_ bytes: [UInt8]) -> Self? {
        bytes.withUnsafeBytes { buffer in
            var reader = ProtobufReader(buffer)
            var request = Self()
            while !reader.isAtEnd {
                guard let (field, wireType) = reader.tag(), wireType == 2 else { return nil }
                switch field {
                case 1: guard let value = reader.string() else { return nil }; request.accountID = value
                case 2: guard let value = reader.string() else { return nil }; request.workspaceID = value
                case 3: guard let value = reader.string() else { return nil }; request.agentID = value
                case 4: guard let item = reader.lineItem() else { return nil }; append(item, to: &request.lineItems)
                case 5: guard let value = reader.string() else { return nil }; request.runID = value
                default: return nil
                }
            }
            return request
        }
    }
}

extension Billing_V1_DebitBatchRequest: HandDecodable {
    static func handDecoded(_ bytes: [UInt8]) -> Self? {
        bytes.withUnsafeBytes { buffer in
            var reader = ProtobufReader(buffer)
            var request = Self()
            while !reader.isAtEnd {
                guard let (field, wireType) = reader.tag(), field == 1, wireType == 2,
                      var body = reader.submessage(), let debit = Billing_V1_DebitRequest.read(&body)
                else { return nil }
                request.debits.append(debit)
            }
            return request
        }
    }
}

extension ProtobufReader {
    /// A length-delimited line item, decoded by hand or nil.
    fileprivate mutating func lineItem() -> Billing_V1_LineItem? {
        guard var body = submessage() else { return nil }
        return Billing_V1_LineItem.decoded(from: &body)
    }
}

/// Appends a decoded line item, with room for four at the first: a debit
/// usually has two to four, and growing the array one item at a time cost
/// a reallocation per debit.
@inline(__always)
private func append(_ item: Billing_V1_LineItem, to items: inout [Billing_V1_LineItem]) {
    if items.isEmpty { items.reserveCapacity(4) }
    items.append(item)
}

/// Requests whose repeated fields are counted on the wire before anything
/// is decoded: a 4 MiB message of empty entries (two bytes each) would
/// otherwise decode into millions of structs — hundreds of MB — before the
/// count was checked. The limits and reasons are the handlers' own.
protocol WireCounted {
    static func checkCounts(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus)
}

extension Billing_V1_DebitRequest: WireCounted {
    static func checkCounts(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus) {
        try WireScan.count(ProtobufReader(bytes), field: 6, limit: MeteringLimits.maxLineItems, refusal: WireScan.tooManyLineItems)
    }
}

extension Billing_V1_QuoteRequest: WireCounted {
    static func checkCounts(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus) {
        try WireScan.count(ProtobufReader(bytes), field: 4, limit: MeteringLimits.maxLineItems, refusal: WireScan.tooManyLineItems)
    }
}

extension Billing_V1_DebitBatchRequest: WireCounted {
    static func checkCounts(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus) {
        var reader = ProtobufReader(bytes)
        var debits = 0
        while !reader.isAtEnd {
            guard let (field, wire) = reader.tag() else { return }
            guard field == 1, wire == 2 else {
                guard reader.skip(wire: wire) else { return }
                continue
            }
            guard let debit = reader.submessage() else { return }
            debits += 1
            guard debits <= MeteringLimits.maxBatch else { throw WireScan.batchTooLarge }
            try WireScan.count(debit, field: 6, limit: MeteringLimits.maxLineItems, refusal: WireScan.tooManyLineItems)
        }
    }
}

/// Counting on the wire (`ProtobufReader`'s tags and lengths only). Malformed
/// bytes end the count quietly: the decoder refuses them with its own status.
enum WireScan {
    static let tooManyLineItems = GRPCStatus(.invalidArgument, "at most \(MeteringLimits.maxLineItems) line items per request",
                                             reason: "TOO_MANY_LINE_ITEMS")
    static let batchTooLarge = GRPCStatus(.invalidArgument, "at most \(MeteringLimits.maxBatch) debits per batch",
                                          reason: "BATCH_TOO_LARGE")

    /// Throws `refusal` once `field` occurs more than `limit` times.
    static func count(_ message: ProtobufReader, field: Int, limit: Int, refusal: GRPCStatus) throws(GRPCStatus) {
        var reader = message
        var seen = 0
        while !reader.isAtEnd {
            guard let (found, wire) = reader.tag(), reader.skip(wire: wire) else { return }
            guard found == field else { continue }
            seen += 1
            guard seen <= limit else { throw refusal }
        }
    }
}
