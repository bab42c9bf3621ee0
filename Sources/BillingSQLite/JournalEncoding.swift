internal import BillingProto
internal import BillingLedger
import Foundation
internal import SwiftProtobuf

/// Encodes a journal entry for its row. Debits — nearly every entry — take a
/// hand-written path that writes the same protobuf bytes SwiftProtobuf
/// would (fields in number order, defaults omitted; checked byte for byte
/// by `JournalEncodingTests`) into one buffer, without the visitor's
/// size pass and per-field dispatch; everything else, and any message
/// carrying unknown fields, goes through SwiftProtobuf. A commit's debits
/// share rows (`rows`, 0005_debit_rows.sql).
enum JournalEncoding {
    static func bytes(_ entry: Billing_Journal_V1_Entry) throws -> [UInt8] {
        try row(JournalRecord(entry)).body
    }

    /// An entry's journal row: its indexed columns and its bytes (the
    /// record's event read in place).
    static func row(_ record: JournalRecord) throws -> (kind: JournalRow.Kind, accountID: String, body: [UInt8]) {
        guard record.isAccepted else {
            let row = try JournalRow(record)
            return (row.kind, row.accountID, try record.entry.serializedBytes())
        }
        if let body = hand(record) { return (.debitAccepted, record.accepted.accountID, body) }
        return (.debitAccepted, record.accepted.accountID, try record.entry.serializedBytes())
    }

    /// A row as the journal table stores it (see 0005_debit_rows.sql).
    struct Row {
        let seq: Int64
        let atUnixMicros: Int64
        let kind: JournalRow.Kind
        let accountID: String
        /// Entries in `body`: 1, or up to `JournalRow.debitsPerRow` in a debits row.
        let entries: Int
        let body: [UInt8]
    }

    /// The rows of a commit's entries: consecutive debits (accepted or
    /// refused) up to `JournalRow.debitsPerRow` to a row, each entry's
    /// bytes after their length, written straight into the row's buffer;
    /// every other entry a row of its own.
    static func rows(_ entries: [JournalRecord]) throws -> [Row] {
        var rows: [Row] = []
        var index = entries.startIndex
        while index < entries.endIndex {
            let first = entries[index]
            guard first.isDebit else {
                let row = try JournalRow(first)
                rows.append(Row(seq: first.seq, atUnixMicros: first.atUnixMicros, kind: row.kind, accountID: row.accountID,
                                entries: 1, body: try first.entry.serializedBytes()))
                index += 1
                continue
            }
            var out = ProtobufWriter(capacity: min(entries.endIndex - index, JournalRow.debitsPerRow) * 256)
            var count = 0
            while true {
                try writeDelimited(entries[index], into: &out)
                count += 1
                index += 1
                guard count < JournalRow.debitsPerRow, index < entries.endIndex, entries[index].isDebit else { break }
            }
            rows.append(Row(seq: first.seq, atUnixMicros: first.atUnixMicros, kind: .debits, accountID: "",
                            entries: count, body: out.finish()))
        }
        return rows
    }

    /// A debit entry after its length: by hand when it is an accepted debit
    /// without unknown fields, else SwiftProtobuf's bytes.
    private static func writeDelimited(_ record: JournalRecord, into out: inout ProtobufWriter) throws {
        if record.isAccepted, handEncodable(record) {
            out.delimited { out in write(record, &out) }
            return
        }
        let bytes: [UInt8] = try record.entry.serializedBytes()
        out.rawVarint(UInt64(bytes.count))
        out.raw(bytes)
    }

    /// Whether an accepted debit takes the hand-written path: no unknown
    /// fields anywhere in it, the record's own included (SwiftProtobuf
    /// writes those).
    private static func handEncodable(_ record: JournalRecord) -> Bool {
        record.unknownFields.data.isEmpty && record.accepted.unknownFields.data.isEmpty
            && record.accepted.lines.allSatisfy({ $0.unknownFields.data.isEmpty && $0.item.unknownFields.data.isEmpty })
    }

    /// An accepted debit's bytes written by hand, as a message of their own;
    /// nil when the entry carries unknown fields.
    private static func hand(_ record: JournalRecord) -> [UInt8]? {
        guard handEncodable(record) else { return nil }
        var out = ProtobufWriter(capacity: 160 + record.accepted.lines.count * 64 + record.accepted.accountID.utf8.count
            + record.accepted.idempotencyKey.utf8.count + record.accepted.runID.utf8.count
            + record.accepted.agentID.utf8.count + record.accepted.workspaceID.utf8.count)
        write(record, &out)
        return out.finish()
    }

    /// An accepted debit's fields in number order, defaults left out (each
    /// read through the record: a binding of the message would copy it).
    private static func write(_ record: JournalRecord, _ out: inout ProtobufWriter) {
        out.int64(1, record.seq)
        out.int64(2, record.atUnixMicros)
        out.message(12) { out in
            out.string(1, record.accepted.accountID)
            out.string(2, record.accepted.workspaceID)
            out.string(3, record.accepted.agentID)
            out.string(4, record.accepted.runID)
            out.string(5, record.accepted.idempotencyKey)
            out.bytes(6, record.accepted.requestHash)
            for line in record.accepted.lines {
                out.message(7) { out in
                    if line.hasItem { out.message(1) { out in lineItem(line.item, &out) } }
                    out.string(2, line.key)
                    out.int64(3, line.amountMicros)
                    out.int64(4, line.quantity)
                }
            }
            out.int64(8, record.accepted.totalMicros)
            out.int64(9, record.accepted.fromCreditsMicros)
            out.int64(10, record.accepted.overageMicros)
            out.string(11, record.accepted.catalogVersion)
            if record.accepted.newRun { out.varint(field: 12, 1) }
            out.int64(13, record.accepted.balanceAfterMicros)
        }
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
