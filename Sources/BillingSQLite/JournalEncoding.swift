internal import BillingProto
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
        if let body = try hand(entry, debit, { out, write in write(&out) }) { return (.debitAccepted, debit.accountID, body) }
        return (.debitAccepted, debit.accountID, try entry.serializedBytes())
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
    /// bytes after their length; every other entry a row of its own.
    static func rows(_ entries: [Billing_Journal_V1_Entry]) throws -> [Row] {
        var rows: [Row] = []
        var group: [UInt8] = []
        var grouped = 0
        var first = (seq: Int64(0), atUnixMicros: Int64(0))
        func closeGroup() {
            guard grouped > 0 else { return }
            rows.append(Row(seq: first.seq, atUnixMicros: first.atUnixMicros, kind: .debits, accountID: "",
                            entries: grouped, body: group))
            group = []
            grouped = 0
        }
        for entry in entries {
            let event = entry.event  // taken out once (a copy per read)
            let delimited: [UInt8]
            switch event {
            case .debitAccepted(let debit)?:
                delimited = try hand(entry, debit, { out, write in out.delimited(write) })
                    ?? Self.delimited(try entry.serializedBytes())
            case .debitRefused?:
                delimited = Self.delimited(try entry.serializedBytes())
            default:
                closeGroup()
                let row = try JournalRow(entry)
                rows.append(Row(seq: entry.seq, atUnixMicros: entry.atUnixMicros, kind: row.kind, accountID: row.accountID,
                                entries: 1, body: try entry.serializedBytes()))
                continue
            }
            if grouped == 0 {
                first = (entry.seq, entry.atUnixMicros)
                group.reserveCapacity(min(entries.count, JournalRow.debitsPerRow) * 256)
            }
            group.append(contentsOf: delimited)
            grouped += 1
            if grouped == JournalRow.debitsPerRow { closeGroup() }
        }
        closeGroup()
        return rows
    }

    /// `bytes` after their length as a varint.
    private static func delimited(_ bytes: [UInt8]) -> [UInt8] {
        var out = ProtobufWriter(capacity: bytes.count + 10)
        out.rawVarint(UInt64(bytes.count))
        out.raw(bytes)
        return out.finish()
    }

    /// An accepted debit's bytes written by hand (`place` writes them as they
    /// are, or after their length); nil when the entry carries unknown
    /// fields (SwiftProtobuf writes those).
    private static func hand(
        _ entry: Billing_Journal_V1_Entry, _ debit: Billing_Journal_V1_DebitAccepted,
        _ place: (inout ProtobufWriter, (inout ProtobufWriter) -> Void) -> Void
    ) throws -> [UInt8]? {
        guard entry.unknownFields.data.isEmpty, debit.unknownFields.data.isEmpty,
              debit.lines.allSatisfy({ $0.unknownFields.data.isEmpty && $0.item.unknownFields.data.isEmpty })
        else { return nil }
        var out = ProtobufWriter(capacity: 160 + debit.lines.count * 64 + debit.accountID.utf8.count
            + debit.idempotencyKey.utf8.count + debit.runID.utf8.count + debit.agentID.utf8.count + debit.workspaceID.utf8.count)
        place(&out) { out in
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
        }
        return out.finish()
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
