internal import BillingProto
import Foundation
internal import SwiftProtobuf

/// Decodes a journal row's body. Debits — nearly every row — take a
/// hand-written path for exactly the shape `JournalEncoding` writes (each
/// known field at most once, the expected wire types, valid UTF-8, known
/// storage kinds), building the same message SwiftProtobuf would without
/// its per-field visitor dispatch (replay at start-up, `billing verify` and
/// old-key lookups read every entry through here). Anything else — another
/// event, an unknown or repeated field, a malformed byte — goes to
/// SwiftProtobuf, which keeps unknown fields and reports malformed input.
/// `JournalDecodingTests` checks both paths give equal messages.
enum JournalDecoding {
    static func entry(_ body: [UInt8]) throws -> Billing_Journal_V1_Entry {
        if let entry = debit(body) { return entry }
        return try Billing_Journal_V1_Entry(serializedBytes: body)
    }

    /// The hand-written path alone: nil when `body` is not a debit of the
    /// shape it reads.
    static func debit(_ body: [UInt8]) -> Billing_Journal_V1_Entry? {
        body.withUnsafeBytes { raw in
            var reader = ProtobufReader(raw)
            return debitEntry(&reader)
        }
    }

    private static func debitEntry(_ reader: inout ProtobufReader) -> Billing_Journal_V1_Entry? {
        var entry = Billing_Journal_V1_Entry()
        var seen = FieldsSeen()
        while !reader.isAtEnd {
            guard let (field, wire) = reader.tag(), seen.first(field) else { return nil }
            switch (field, wire) {
            case (1, 0): guard let value = reader.int64() else { return nil }; entry.seq = value
            case (2, 0): guard let value = reader.int64() else { return nil }; entry.atUnixMicros = value
            case (12, 2):
                guard var body = reader.submessage(), let debit = debitAccepted(&body) else { return nil }
                entry.debitAccepted = debit
            default: return nil
            }
        }
        return seen.contains(12) ? entry : nil
    }

    private static func debitAccepted(_ reader: inout ProtobufReader) -> Billing_Journal_V1_DebitAccepted? {
        var debit = Billing_Journal_V1_DebitAccepted()
        var seen = FieldsSeen()
        while !reader.isAtEnd {
            // Lines repeat; every other field comes once.
            guard let (field, wire) = reader.tag(), field == 7 || seen.first(field) else { return nil }
            switch (field, wire) {
            case (1, 2): guard let value = reader.string() else { return nil }; debit.accountID = value
            case (2, 2): guard let value = reader.string() else { return nil }; debit.workspaceID = value
            case (3, 2): guard let value = reader.string() else { return nil }; debit.agentID = value
            case (4, 2): guard let value = reader.string() else { return nil }; debit.runID = value
            case (5, 2): guard let value = reader.string() else { return nil }; debit.idempotencyKey = value
            case (6, 2): guard let value = reader.bytes() else { return nil }; debit.requestHash = Data(value)
            case (7, 2):
                guard var body = reader.submessage(), let line = pricedLine(&body) else { return nil }
                debit.lines.append(line)
            case (8, 0): guard let value = reader.int64() else { return nil }; debit.totalMicros = value
            case (9, 0): guard let value = reader.int64() else { return nil }; debit.fromCreditsMicros = value
            case (10, 0): guard let value = reader.int64() else { return nil }; debit.overageMicros = value
            case (11, 2): guard let value = reader.string() else { return nil }; debit.catalogVersion = value
            case (12, 0): guard let value = reader.varint() else { return nil }; debit.newRun = value != 0
            case (13, 0): guard let value = reader.int64() else { return nil }; debit.balanceAfterMicros = value
            default: return nil
            }
        }
        return debit
    }

    private static func pricedLine(_ reader: inout ProtobufReader) -> Billing_Journal_V1_PricedLine? {
        var line = Billing_Journal_V1_PricedLine()
        var seen = FieldsSeen()
        while !reader.isAtEnd {
            guard let (field, wire) = reader.tag(), seen.first(field) else { return nil }
            switch (field, wire) {
            case (1, 2):
                guard var body = reader.submessage(), let item = lineItem(&body) else { return nil }
                line.item = item
            case (2, 2): guard let value = reader.string() else { return nil }; line.key = value
            case (3, 0): guard let value = reader.int64() else { return nil }; line.amountMicros = value
            case (4, 0): guard let value = reader.int64() else { return nil }; line.quantity = value
            default: return nil
            }
        }
        return line
    }

    private static func lineItem(_ reader: inout ProtobufReader) -> Billing_V1_LineItem? {
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

/// Field numbers below 32 met so far in one message.
struct FieldsSeen {
    private var bits: UInt32 = 0

    /// Records `field`; false if it was met before or is 32 or more (not
    /// one of the journal's).
    mutating func first(_ field: Int) -> Bool {
        guard field < 32, !contains(field) else { return false }
        bits |= UInt32(1) << UInt32(field)
        return true
    }

    func contains(_ field: Int) -> Bool { field < 32 && bits & (UInt32(1) << UInt32(field)) != 0 }
}

/// Reads the protobuf wire format, the little of it the journal needs;
/// every read returns nil rather than run past the end.
struct ProtobufReader {
    private let buffer: UnsafeRawBufferPointer
    private var offset: Int
    private let end: Int

    init(_ buffer: UnsafeRawBufferPointer) {
        self.buffer = buffer
        self.offset = 0
        self.end = buffer.count
    }

    private init(_ buffer: UnsafeRawBufferPointer, from offset: Int, to end: Int) {
        self.buffer = buffer
        self.offset = offset
        self.end = end
    }

    var isAtEnd: Bool { offset >= end }

    /// At most ten bytes; nil past the end or for an overlong encoding.
    mutating func varint() -> UInt64? {
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

    mutating func int64() -> Int64? { varint().map { Int64(bitPattern: $0) } }

    /// Field number and wire type; nil for field 0 or a number out of range.
    mutating func tag() -> (field: Int, wire: Int)? {
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

    mutating func submessage() -> ProtobufReader? {
        delimited().map { ProtobufReader(buffer, from: $0.start, to: $0.end) }
    }

    /// Nil for bytes that are not UTF-8 (SwiftProtobuf then reports it).
    /// ASCII — the usual id — needs no validation; anything else is
    /// checked scalar by scalar first, as SwiftProtobuf does
    /// (`String(validating:)` was a generic, unspecialized call: 3 % of replay).
    mutating func string() -> String? {
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

    mutating func bytes() -> UnsafeRawBufferPointer? {
        delimited().map { UnsafeRawBufferPointer(rebasing: buffer[$0.start..<$0.end]) }
    }
}
