/// Hand-written reading of the protobuf wire format for the hot decoders
/// (journal debits in BillingSQLite, metering requests in BillingService):
/// one reader and one line-item decoder for both. Not generated.

/// Field numbers below 32 met so far in one message.
package struct FieldsSeen {
    package init() {}

    private var bits: UInt32 = 0

    /// Records `field`; false if it was met before or is 32 or more (not
    /// one of the journal's).
    package mutating func first(_ field: Int) -> Bool {
        guard field < 32, !contains(field) else { return false }
        bits |= UInt32(1) << UInt32(field)
        return true
    }

    package func contains(_ field: Int) -> Bool { field < 32 && bits & (UInt32(1) << UInt32(field)) != 0 }
}

/// Reads the protobuf wire format, the little of it the journal and the
/// metering requests need (hand-written decoders on both paths);
/// every read returns nil rather than run past the end.
package struct ProtobufReader {
    private let buffer: UnsafeRawBufferPointer
    private var offset: Int
    private let end: Int

    package init(_ buffer: UnsafeRawBufferPointer) {
        self.buffer = buffer
        self.offset = 0
        self.end = buffer.count
    }

    private init(_ buffer: UnsafeRawBufferPointer, from offset: Int, to end: Int) {
        self.buffer = buffer
        self.offset = offset
        self.end = end
    }

    package var isAtEnd: Bool { offset >= end }

    /// At most ten bytes; nil past the end or for an overlong encoding.
    package mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < end, shift < 64 {
            let byte = buffer[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        return nil
    }

    package mutating func int64() -> Int64? { varint().map { Int64(bitPattern: $0) } }

    /// Field number and wire type; nil for field 0 or a number out of range.
    package mutating func tag() -> (field: Int, wire: Int)? {
        guard let key = varint(), key >> 3 > 0, key >> 3 < 1 << 29 else { return nil }
        return (Int(key >> 3), Int(key & 7))
    }

    /// A length-delimited field's body.
    private mutating func delimited() -> (start: Int, end: Int)? {
        guard let length = varint(), length <= UInt64(end - offset) else { return nil }
        let start = offset
        offset += Int(length)
        return (start, offset)
    }

    package mutating func submessage() -> ProtobufReader? {
        delimited().map { ProtobufReader(buffer, from: $0.start, to: $0.end) }
    }

    /// Nil for bytes that are not UTF-8 (SwiftProtobuf then reports it).
    /// ASCII — the usual id — needs no validation; anything else is
    /// checked scalar by scalar first, as SwiftProtobuf does
    /// (`String(validating:)` was a generic, unspecialized call: 3 % of replay).
    package mutating func string() -> String? {
        guard let (start, end) = delimited() else { return nil }
        let utf8 = UnsafeRawBufferPointer(rebasing: buffer[start..<end])
        if !utf8.allSatisfy({ $0 < 0x80 }) {
            var parser = Unicode.UTF8.ForwardParser()
            var bytes = utf8.makeIterator()
            while true {
                switch parser.parseScalar(from: &bytes) {
                case .valid: continue
                case .error: return nil
                case .emptyInput: return String(decoding: utf8, as: UTF8.self)
                }
            }
        }
        return String(decoding: utf8, as: UTF8.self)
    }

    package mutating func bytes() -> UnsafeRawBufferPointer? {
        delimited().map { UnsafeRawBufferPointer(rebasing: buffer[$0.start..<$0.end]) }
    }

    /// Passes over a field's value of wire type `wire`; false when it does
    /// not fit (or the wire type is a group's or unknown).
    package mutating func skip(wire: Int) -> Bool {
        switch wire {
        case 0: return varint() != nil
        case 1, 5:
            let size = wire == 1 ? 8 : 4
            guard end - offset >= size else { return false }
            offset += size
            return true
        case 2: return delimited() != nil
        default: return false
        }
    }
}

extension Billing_V1_LineItem {
    /// A line item's body in the usual shape: at most one kind, each field
    /// once, the expected wire types, a listed storage kind; nil for anything
    /// else (SwiftProtobuf's to decode).
    package static func decoded(from reader: inout ProtobufReader) -> Billing_V1_LineItem? {
        var item = Billing_V1_LineItem()
        // A oneof: one kind at most (two would be merged or replaced by SwiftProtobuf).
        guard !reader.isAtEnd else { return item }
        guard let (field, wire) = reader.tag(), wire == 2, var body = reader.submessage() else { return nil }
        var seen = FieldsSeen()
        switch field {
        case 1:
            var llm = Billing_V1_LlmUsage()
            while !body.isAtEnd {
                guard let (field, wire) = body.tag(), seen.first(field) else { return nil }
                switch (field, wire) {
                case (1, 2): guard let value = body.string() else { return nil }; llm.model = value
                case (2, 0): guard let value = body.int64() else { return nil }; llm.inputTokens = value
                case (3, 0): guard let value = body.int64() else { return nil }; llm.outputTokens = value
                default: return nil
                }
            }
            item.llm = llm
        case 2:
            var call = Billing_V1_ToolCallUsage()
            while !body.isAtEnd {
                guard let (field, wire) = body.tag(), seen.first(field) else { return nil }
                switch (field, wire) {
                case (1, 2): guard let value = body.string() else { return nil }; call.integration = value
                case (2, 0): guard let value = body.int64() else { return nil }; call.calls = value
                default: return nil
                }
            }
            item.toolCall = call
        case 3:
            var storage = Billing_V1_StorageUsage()
            while !body.isAtEnd {
                guard let (field, wire) = body.tag(), seen.first(field) else { return nil }
                switch (field, wire) {
                case (1, 0):
                    guard let value = body.int64(), let kind = Billing_V1_StorageKind(rawValue: Int(value)),
                          kind.rawValue >= 0, kind.rawValue <= 2 else { return nil }
                    storage.kind = kind
                case (2, 0): guard let value = body.int64() else { return nil }; storage.bytes = value
                default: return nil
                }
            }
            item.storage = storage
        default:
            return nil
        }
        return reader.isAtEnd ? item : nil
    }
}
