internal import BillingProto
import Foundation
internal import SwiftProtobuf

/// Encodes a checkpoint for its parts. What makes a checkpoint large — each
/// account's usage roll-ups and run hashes, and the key filter — is written
/// here by hand (one pass, no intermediate size pass or per-field visitor
/// dispatch: at 10,000 accounts SwiftProtobuf spent ~0.3 s of the core per
/// checkpoint on them); everything else by SwiftProtobuf. The bytes decode
/// to the same message (`CheckpointEncodingTests`): the hand-written fields
/// come after the others, an order protobuf parsers accept.
enum CheckpointEncoding {
    static func bytes(_ checkpoint: Billing_Journal_V1_Checkpoint) throws -> [UInt8] {
        var out = ProtobufWriter(capacity: checkpoint.keyFilter.count + checkpoint.accounts.count * 1_024 + 4_096)
        for account in checkpoint.accounts {
            try out.message(3) { out in try accountState(account, &out) }
        }
        var rest = checkpoint
        rest.accounts = []
        rest.keyFilter = Data()
        out.raw(try rest.serializedBytes() as [UInt8])
        out.bytes(8, checkpoint.keyFilter)
        return out.finish()
    }

    private static func accountState(_ account: Billing_Journal_V1_AccountState, _ out: inout ProtobufWriter) throws {
        var rest = account
        rest.usage = []
        rest.runHashes = []
        out.raw(try rest.serializedBytes() as [UInt8])
        for rollup in account.usage {
            guard rollup.unknownFields.data.isEmpty else {
                out.bytes(9, try rollup.serializedBytes() as [UInt8])
                continue
            }
            out.message(9) { out in
                out.int64(1, rollup.day)
                out.string(2, rollup.agentID)
                out.string(3, rollup.lineKey)
                out.int64(4, rollup.amountMicros)
                out.int64(5, rollup.quantity)
                out.int64(6, rollup.inputTokens)
                out.int64(7, rollup.outputTokens)
            }
        }
        // Packed sfixed64: one length, then eight little-endian bytes each.
        if !account.runHashes.isEmpty {
            out.rawVarint(22 << 3 | 2)
            out.rawVarint(UInt64(account.runHashes.count * 8))
            for hash in account.runHashes { out.fixed64(hash) }
        }
    }
}
