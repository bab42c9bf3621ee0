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

    private static func entry(_ raw: UnsafeRawBufferPointer) throws -> Billing_Journal_V1_Entry {
        var reader = ProtobufReader(raw)
        if let entry = debitEntry(&reader) { return entry }
        return try Billing_Journal_V1_Entry(serializedBytes: [UInt8](raw))
    }

    /// The `count` entries of a debits row (0005_debit_rows.sql): each after
    /// its length as a varint, `first`, `first` + 1... in order; corrupt
    /// when an entry is cut short, holds another seq or is not a debit, or
    /// the body holds another number of entries.
    static func forEachEntry(inDebitsRow body: [UInt8], first: Int64, count: Int64,
                             _ visit: (Billing_Journal_V1_Entry) throws -> Void) throws {
        let (end, overflow) = first.addingReportingOverflow(count)
        guard count >= 0, !overflow else { throw SQLiteStoreError.corrupt("journal row \(first) claims \(count) entries") }
        try body.withUnsafeBytes { raw in
            var reader = ProtobufReader(raw)
            for seq in first..<end {
                guard !reader.isAtEnd else {
                    throw SQLiteStoreError.corrupt("journal row \(first) ends before its entry \(seq)")
                }
                try visit(try entry(&reader, seq, row: first))
            }
            guard reader.isAtEnd else {
                throw SQLiteStoreError.corrupt("journal row \(first) holds more than its \(count) entries")
            }
        }
    }

    /// The entry `seq` of the debits row starting at `first` and holding
    /// `count`, decoding only that one (the ones before it are skipped by
    /// their lengths); corrupt as above.
    static func entry(_ seq: Int64, inDebitsRow body: [UInt8], first: Int64, count: Int64) throws -> Billing_Journal_V1_Entry {
        guard holds(seq, first: first, count: count) else {
            throw SQLiteStoreError.corrupt("journal row \(first) of \(count) entries does not hold entry \(seq)")
        }
        return try body.withUnsafeBytes { raw in
            var reader = ProtobufReader(raw)
            for skipped in first..<seq {
                guard reader.bytes() != nil else {
                    throw SQLiteStoreError.corrupt("journal row \(first) is cut short at entry \(skipped)")
                }
            }
            return try entry(&reader, seq, row: first)
        }
    }

    /// Whether a row of `count` entries from `first` holds `seq` (read from a
    /// database that may be damaged: no sum that could overflow).
    static func holds(_ seq: Int64, first: Int64, count: Int64) -> Bool {
        let (distance, overflow) = seq.subtractingReportingOverflow(first)
        return seq >= first && !overflow && distance < count
    }

    /// The next entry of a debits row: it must be there, whole, be `seq`
    /// and be a debit (accepted or refused).
    private static func entry(_ reader: inout ProtobufReader, _ seq: Int64, row first: Int64) throws -> Billing_Journal_V1_Entry {
        guard let bytes = reader.bytes() else {
            throw SQLiteStoreError.corrupt("journal row \(first) is cut short at entry \(seq)")
        }
        let entry = try entry(bytes)
        guard entry.seq == seq else {
            throw SQLiteStoreError.corrupt("journal row \(first) holds entry \(entry.seq) where \(seq) belongs")
        }
        switch entry.event {
        case .debitAccepted, .debitRefused: return entry
        default: throw SQLiteStoreError.corrupt("journal row \(first) holds entry \(seq), which is not a debit")
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
                guard var body = reader.submessage(), let item = Billing_V1_LineItem.decoded(from: &body) else { return nil }
                line.item = item
            case (2, 2): guard let value = reader.string() else { return nil }; line.key = value
            case (3, 0): guard let value = reader.int64() else { return nil }; line.amountMicros = value
            case (4, 0): guard let value = reader.int64() else { return nil }; line.quantity = value
            default: return nil
            }
        }
        return line
    }
}
