internal import BillingProto
import Foundation
internal import SwiftProtobuf

/// Encodes a journal entry for its row. Debits — nearly every entry — take a
/// hand-written path that writes the same protobuf bytes SwiftProtobuf
/// would (fields in number order, defaults omitted; checked byte for byte
/// by `JournalEncodingTests`) into one buffer, without the visitor's
/// size pass and per-field dispatch; everything else, and any message
/// carrying unknown fields, goes through SwiftProtobuf.
enum JournalEncoding {
    static func bytes(_ entry: Billing_Journal_V1_Entry) throws -> [UInt8] {
        try row(entry).body
    }

    /// An entry's journal row: its indexed columns and its bytes. A debit's
    /// event is taken out of the entry once for both (each `entry.event`
    /// copies the whole debit: a retain and a release per text in it).
    static func row(_ entry: Billing_Journal_V1_Entry) throws -> (kind: JournalRow.Kind, accountID: String, body: [UInt8]) {
        guard case .debitAccepted(let debit) = entry.event else {
            let row = try JournalRow(entry)
            return (row.kind, row.accountID, try entry.serializedBytes())
        }
        return (.debitAccepted, debit.accountID, try bytes(entry, debit))
    }

    private static func bytes(_ entry: Billing_Journal_V1_Entry, _ debit: Billing_Journal_V1_DebitAccepted) throws -> [UInt8] {
        guard entry.unknownFields.data.isEmpty, debit.unknownFields.data.isEmpty,
              debit.lines.allSatisfy({ $0.unknownFields.data.isEmpty && $0.item.unknownFields.data.isEmpty })
        else { return try entry.serializedBytes() }
        var out = ProtobufWriter()
        out.bytes.reserveCapacity(160 + debit.lines.count * 64 + debit.accountID.utf8.count + debit.idempotencyKey.utf8.count
            + debit.runID.utf8.count + debit.agentID.utf8.count + debit.workspaceID.utf8.count)
        out.int64(1, entry.seq)
        out.int64(2, entry.atUnixMicros)
        out.message(12) { out in
            out.string(1, debit.accountID)
            out.string(2, debit.workspaceID)
            out.string(3, debit.agentID)
            out.string(4, debit.runID)
            out.string(5, debit.idempotencyKey)
            out.bytes(6, debit.requestHash)
            for line in debit.lines {
                out.message(7) { out in
                    if line.hasItem { out.message(1) { out in lineItem(line.item, &out) } }
                    out.string(2, line.key)
                    out.int64(3, line.amountMicros)
                    out.int64(4, line.quantity)
                }
            }
            out.int64(8, debit.totalMicros)
            out.int64(9, debit.fromCreditsMicros)
            out.int64(10, debit.overageMicros)
            out.string(11, debit.catalogVersion)
            if debit.newRun { out.varint(field: 12, 1) }
            out.int64(13, debit.balanceAfterMicros)
        }
        return out.bytes
    }

    private static func lineItem(_ item: Billing_V1_LineItem, _ out: inout ProtobufWriter) {
        switch item.kind {
        case .llm(let llm):
            out.message(1) { out in
                out.string(1, llm.model)
                out.int64(2, llm.inputTokens)
                out.int64(3, llm.outputTokens)
            }
        case .toolCall(let call):
            out.message(2) { out in
                out.string(1, call.integration)
                out.int64(2, call.calls)
            }
        case .storage(let storage):
            out.message(3) { out in
                out.int64(1, Int64(storage.kind.rawValue))
                out.int64(2, storage.bytes)
            }
        case nil:
            break
        }
    }
}

/// The protobuf wire format, the little of it the journal needs (proto3:
/// zero, empty and false are not written).
struct ProtobufWriter {
    var bytes: [UInt8] = []

    mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func varint(field: Int, _ value: UInt64) {
        rawVarint(UInt64(field) << 3)
        rawVarint(value)
    }

    /// int64 and enums: negative values take ten bytes (two's complement).
    mutating func int64(_ field: Int, _ value: Int64) {
        if value != 0 { varint(field: field, UInt64(bitPattern: value)) }
    }

    mutating func string(_ field: Int, _ value: String) {
        guard !value.isEmpty else { return }
        rawVarint(UInt64(field) << 3 | 2)
        var value = value
        value.withUTF8 { utf8 in
            rawVarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func bytes(_ field: Int, _ value: some Collection<UInt8>) {
        guard !value.isEmpty else { return }
        rawVarint(UInt64(field) << 3 | 2)
        rawVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// `Data` copied as one block (appending it as a collection goes
    /// through `Data`'s generic iteration: ~1 % of a debit's CPU).
    mutating func bytes(_ field: Int, _ value: Data) {
        guard !value.isEmpty else { return }
        rawVarint(UInt64(field) << 3 | 2)
        rawVarint(UInt64(value.count))
        value.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }

    /// A length-delimited submessage written in place: one byte is kept for
    /// its length and widened afterwards if the body needs more.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) throws -> Void) rethrows {
        rawVarint(UInt64(field) << 3 | 2)
        let lengthAt = bytes.count
        bytes.append(0)
        try body(&self)
        let length = bytes.count - lengthAt - 1
        guard length >= 0x80 else {
            bytes[lengthAt] = UInt8(length)
            return
        }
        // A longer length (a debit's body): the body moves up in place by
        // the extra varint bytes (`insert` or `replaceSubrange` on an array
        // go through unspecialized generic code).
        var extra = 1
        while length >> (7 * (extra + 1)) != 0 { extra += 1 }
        for _ in 0..<extra { bytes.append(0) }
        bytes.withUnsafeMutableBufferPointer { buffer in
            let body = buffer.baseAddress! + lengthAt + 1
            (body + extra).update(from: body, count: length)  // overlapping: copied from the end
            var rest = length
            for index in lengthAt...(lengthAt + extra) {
                buffer[index] = UInt8(truncatingIfNeeded: rest) | (index < lengthAt + extra ? 0x80 : 0)
                rest >>= 7
            }
        }
    }
}
