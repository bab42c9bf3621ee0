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
        var out = ProtobufWriter(capacity: 160 + debit.lines.count * 64 + debit.accountID.utf8.count
            + debit.idempotencyKey.utf8.count + debit.runID.utf8.count + debit.agentID.utf8.count + debit.workspaceID.utf8.count)
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
