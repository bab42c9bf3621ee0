import BillingProto

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
