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
        if let body = hand(entry, debit) { return (.debitAccepted, debit.accountID, body) }
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
    /// bytes after their length, written straight into the row's buffer;
    /// every other entry a row of its own.
    static func rows(_ entries: [Billing_Journal_V1_Entry]) throws -> [Row] {
        var rows: [Row] = []
        var index = entries.startIndex
        // Each entry's event is taken out once (a copy per read), but for
        // the one that ends a row of debits, read again as the next row's.
        while index < entries.endIndex {
            let first = entries[index]
            var event = first.event
            guard isDebit(event) else {
                let row = try JournalRow(first)
                rows.append(Row(seq: first.seq, atUnixMicros: first.atUnixMicros, kind: row.kind, accountID: row.accountID,
                                entries: 1, body: try first.serializedBytes()))
                index += 1
                continue
            }
            var out = ProtobufWriter(capacity: min(entries.endIndex - index, JournalRow.debitsPerRow) * 256)
            var count = 0
            while true {
                try writeDelimited(entries[index], event, into: &out)
                count += 1
                index += 1
                guard count < JournalRow.debitsPerRow, index < entries.endIndex else { break }
                event = entries[index].event
                guard isDebit(event) else { break }
            }
            rows.append(Row(seq: first.seq, atUnixMicros: first.atUnixMicros, kind: .debits, accountID: "",
                            entries: count, body: out.finish()))
        }
        return rows
    }

    private static func isDebit(_ event: Billing_Journal_V1_Entry.OneOf_Event?) -> Bool {
        switch event {
        case .debitAccepted?, .debitRefused?: true
        default: false
        }
    }

    /// A debit entry after its length: by hand when it is an accepted debit
    /// without unknown fields, else SwiftProtobuf's bytes.
    private static func writeDelimited(_ entry: Billing_Journal_V1_Entry, _ event: Billing_Journal_V1_Entry.OneOf_Event?,
                                       into out: inout ProtobufWriter) throws {
        if case .debitAccepted(let debit)? = event, handEncodable(entry, debit) {
            out.delimited { out in write(entry, debit, &out) }
            return
        }
        let bytes: [UInt8] = try entry.serializedBytes()
        out.rawVarint(UInt64(bytes.count))
        out.raw(bytes)
    }

    /// Whether an accepted debit takes the hand-written path: no unknown
    /// fields anywhere in it (SwiftProtobuf writes those).
    private static func handEncodable(_ entry: Billing_Journal_V1_Entry, _ debit: Billing_Journal_V1_DebitAccepted) -> Bool {
        entry.unknownFields.data.isEmpty && debit.unknownFields.data.isEmpty
            && debit.lines.allSatisfy({ $0.unknownFields.data.isEmpty && $0.item.unknownFields.data.isEmpty })
    }

    /// An accepted debit's bytes written by hand, as a message of their own;
    /// nil when the entry carries unknown fields.
    private static func hand(_ entry: Billing_Journal_V1_Entry, _ debit: Billing_Journal_V1_DebitAccepted) -> [UInt8]? {
        guard handEncodable(entry, debit) else { return nil }
        var out = ProtobufWriter(capacity: 160 + debit.lines.count * 64 + debit.accountID.utf8.count
            + debit.idempotencyKey.utf8.count + debit.runID.utf8.count + debit.agentID.utf8.count + debit.workspaceID.utf8.count)
        write(entry, debit, &out)
        return out.finish()
    }

    /// An accepted debit's fields in number order, defaults left out.
    private static func write(_ entry: Billing_Journal_V1_Entry, _ debit: Billing_Journal_V1_DebitAccepted,
                              _ out: inout ProtobufWriter) {
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
