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
protocol HandDecodable {
    static func handDecoded(_ bytes: [UInt8]) -> Self?
}

extension Billing_V1_DebitRequest: HandDecodable {
    static func handDecoded(_ bytes: [UInt8]) -> Self? {
        bytes.withUnsafeBytes { buffer in
            var reader = WireReader(buffer)
            return Self.read(&reader)
        }
    }

    fileprivate static func read(_ reader: inout WireReader) -> Self? {
        var request = Self()
        while !reader.isAtEnd {
            guard let (field, wireType) = reader.tag(), wireType == 2 else { return nil }
            switch field {
            case 1: guard let value = reader.string() else { return nil }; request.accountID = value
            case 2: guard let value = reader.string() else { return nil }; request.workspaceID = value
            case 3: guard let value = reader.string() else { return nil }; request.agentID = value
            case 4: guard let value = reader.string() else { return nil }; request.runID = value
            case 5: guard let value = reader.string() else { return nil }; request.idempotencyKey = value
            case 6: guard let item = reader.lineItem() else { return nil }; request.lineItems.append(item)
            default: return nil
            }
        }
        return request
    }
}

extension Billing_V1_QuoteRequest: HandDecodable {
    static func handDecoded(_ bytes: [UInt8]) -> Self? {
        bytes.withUnsafeBytes { buffer in
            var reader = WireReader(buffer)
            var request = Self()
            while !reader.isAtEnd {
                guard let (field, wireType) = reader.tag(), wireType == 2 else { return nil }
                switch field {
                case 1: guard let value = reader.string() else { return nil }; request.accountID = value
                case 2: guard let value = reader.string() else { return nil }; request.workspaceID = value
                case 3: guard let value = reader.string() else { return nil }; request.agentID = value
                case 4: guard let item = reader.lineItem() else { return nil }; request.lineItems.append(item)
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
            var reader = WireReader(buffer)
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

/// The protobuf wire format, read forward; every method returns nil at
/// anything it does not expect (the caller then falls back).
private struct WireReader {
    let buffer: UnsafeRawBufferPointer
    var offset = 0

    init(_ buffer: UnsafeRawBufferPointer) {
        self.buffer = buffer
    }

    var isAtEnd: Bool { offset >= buffer.count }

    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < buffer.count, shift < 64 {
            let byte = buffer[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 {
                // The tenth byte may only carry the top bit.
                return shift == 63 && byte > 1 ? nil : value
            }
            shift += 7
        }
        return nil
    }

    mutating func tag() -> (field: Int, wireType: Int)? {
        guard let key = varint(), key >> 3 != 0, key >> 3 <= 536_870_911 else { return nil }
        return (Int(key >> 3), Int(key & 7))
    }

    mutating func int64() -> Int64? { varint().map { Int64(bitPattern: $0) } }

    /// A length-delimited field's bytes as a reader of their own.
    mutating func submessage() -> WireReader? {
        guard let length = varint(), length <= UInt64(buffer.count - offset) else { return nil }
        let start = offset
        offset += Int(length)
        return WireReader(UnsafeRawBufferPointer(rebasing: buffer[start..<offset]))
    }

    mutating func string() -> String? {
        guard let body = submessage() else { return nil }
        // ASCII (ids, nearly always) needs no validation; `String(validating:)`
        // is slow (generic metadata looked up per call) and kept for the rest.
        if !body.buffer.contains(where: { $0 >= 0x80 }) { return String(decoding: body.buffer, as: UTF8.self) }
        return String(validating: body.buffer, as: UTF8.self)
    }

    mutating func lineItem() -> Billing_V1_LineItem? {
        guard var body = submessage() else { return nil }
        var item = Billing_V1_LineItem()
        var seen = false
        while !body.isAtEnd {
            // One kind, once: a second (a merge, or another kind) is SwiftProtobuf's to settle.
            guard !seen, let (field, wireType) = body.tag(), wireType == 2, var usage = body.submessage() else { return nil }
            seen = true
            switch field {
            case 1:
                var llm = Billing_V1_LlmUsage()
                while !usage.isAtEnd {
                    guard let (field, wireType) = usage.tag() else { return nil }
                    switch (field, wireType) {
                    case (1, 2): guard let value = usage.string() else { return nil }; llm.model = value
                    case (2, 0): guard let value = usage.int64() else { return nil }; llm.inputTokens = value
                    case (3, 0): guard let value = usage.int64() else { return nil }; llm.outputTokens = value
                    default: return nil
                    }
                }
                item.llm = llm
            case 2:
                var call = Billing_V1_ToolCallUsage()
                while !usage.isAtEnd {
                    guard let (field, wireType) = usage.tag() else { return nil }
                    switch (field, wireType) {
                    case (1, 2): guard let value = usage.string() else { return nil }; call.integration = value
                    case (2, 0): guard let value = usage.int64() else { return nil }; call.calls = value
                    default: return nil
                    }
                }
                item.toolCall = call
            case 3:
                var storage = Billing_V1_StorageUsage()
                while !usage.isAtEnd {
                    guard let (field, wireType) = usage.tag() else { return nil }
                    switch (field, wireType) {
                    case (1, 0):
                        // Known kinds only: an unknown value is kept by SwiftProtobuf as UNRECOGNIZED.
                        guard let raw = usage.int64(), let kind = Billing_V1_StorageKind(rawValue: Int(raw)),
                              raw >= 0, raw <= 2 else { return nil }
                        storage.kind = kind
                    case (2, 0): guard let value = usage.int64() else { return nil }; storage.bytes = value
                    default: return nil
                    }
                }
                item.storage = storage
            default:
                return nil
            }
        }
        return item
    }
}
