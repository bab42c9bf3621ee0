import BillingProto
import SwiftProtobuf

/// A checkpoint as the store keeps it: a serialized `Billing_Journal_V1_Checkpoint`.
public struct EncodedCheckpoint: Sendable {
    public let seq: Int64
    public let writtenUnixMicros: Int64
    public let accounts: Int
    public let bytes: [UInt8]

    public init(seq: Int64, writtenUnixMicros: Int64, accounts: Int, bytes: [UInt8]) {
        self.seq = seq
        self.writtenUnixMicros = writtenUnixMicros
        self.accounts = accounts
        self.bytes = bytes
    }
}

extension LedgerState {
    /// `checkpoint(writtenAtMicros:)`'s message, serialized straight from
    /// the books: each account's fields are written as they are read, with
    /// no `AccountState`, `UsageRollup` or run-hash array built first (at
    /// 10,000 accounts building the message and then encoding it was ~6 %
    /// of the CPU of a metering load, on the checkpoint thread). The small,
    /// rarely filled parts (lifecycle, payment methods, charges, request
    /// keys, invoices, plans, API keys) go through SwiftProtobuf. The bytes
    /// decode to exactly `checkpoint(writtenAtMicros:)` (`CheckpointBytesTests`,
    /// `LifecycleLedgerTests`, the simulation);
    /// fields are in number order, so they are SwiftProtobuf's bytes too.
    public func encodedCheckpoint(writtenAtMicros: Int64) throws -> EncodedCheckpoint {
        // Room for the bulk up front (run hashes and usage cells are most of
        // a checkpoint at scale), so a buffer of tens of MB is not regrown
        // step by step (lifecycle data beyond 512 bytes an account can still
        // make it grow once).
        let estimate = accounts.values.reduce(4_096) { $0 + 512 + $1.runsInPeriod.count * 8 + $1.usage.count * 96 }
        var out = ProtobufWriter(capacity: estimate)
        out.int64(1, lastSeq)
        out.int64(2, writtenAtMicros)
        for id in accounts.keys.sorted() {
            guard let index = accounts.index(forKey: id) else { continue }
            try out.message(3) { out in try Self.writeAccount(accounts.values[index], &out) }
        }
        let rest = checkpointRest()
        for key in rest.apiKeys { out.bytes(4, try key.serializedBytes() as [UInt8], always: true) }
        for invoice in rest.invoices { out.bytes(5, try invoice.serializedBytes() as [UInt8], always: true) }
        out.int64(6, rest.testClockUnix)
        out.bytes(7, try rest.plans.serializedBytes() as [UInt8], always: true)
        out.int64(9, Int64(Self.rulesVersion))  // (8, the key filter, is stored apart)
        for pending in rest.pendingCharges { out.bytes(10, try pending.serializedBytes() as [UInt8], always: true) }
        if rest.testClockMoved { out.varint(field: 11, 1) }
        return EncodedCheckpoint(seq: lastSeq, writtenUnixMicros: writtenAtMicros, accounts: accounts.count, bytes: out.finish())
    }

    /// One `AccountState`, fields in number order (7, the run names of old
    /// checkpoints, is never written).
    private static func writeAccount(_ book: borrowing AccountBook, _ out: inout ProtobufWriter) throws {
        out.string(1, book.accountID)
        out.string(2, book.plan)
        out.int64(3, book.periodAnchor)
        out.int64(4, book.balance)
        out.int64(5, book.overage)
        out.int64(6, book.periodStart)
        for workspace in book.workspaces.sorted() { out.string(8, workspace, always: true) }
        for (key, cell) in sortedUsage(book) {
            out.message(9) { out in
                out.int64(1, key.day)
                out.string(2, key.agentID)
                out.string(3, key.lineKey)
                out.int64(4, cell.amount)
                out.int64(5, cell.quantity)
                out.int64(6, cell.inputTokens)
                out.int64(7, cell.outputTokens)
            }
        }
        out.int64(10, book.granted)
        out.int64(11, book.debitedFromCredits)
        for key in book.grantKeys.keys.sorted() {
            let grant = book.grantKeys[key]!
            out.message(12) { out in
                out.string(1, key)
                out.int64(2, grant.seq)
                out.int64(3, grant.amount)
                if let note = grant.note { out.string(4, note, always: true) }
            }
        }
        out.string(13, book.displayName)
        out.string(14, book.billingEmail)
        out.int64(15, book.createdUnix)
        out.bytes(16, try lifecycleState(book).serializedBytes() as [UInt8], always: true)
        if let method = book.paymentMethod { out.bytes(17, try method.serializedBytes() as [UInt8], always: true) }
        if let pending = book.pendingPaymentMethod { out.bytes(18, try pending.serializedBytes() as [UInt8], always: true) }
        for charge in book.charges { out.bytes(19, try charge.serializedBytes() as [UInt8], always: true) }
        for request in requestKeyRecords(book) { out.bytes(20, try request.serializedBytes() as [UInt8], always: true) }
        if !book.invoiceSequences.isEmpty {
            out.message(21) { out in
                for sequence in book.invoiceSequences { out.rawVarint(UInt64(bitPattern: sequence)) }
            }
        }
        // Packed sfixed64: one length, then eight little-endian bytes each.
        if !book.runsInPeriod.isEmpty {
            out.rawVarint(22 << 3 | 2)
            out.rawVarint(UInt64(book.runsInPeriod.count * 8))
            for hash in RadixSort.sorted(book.runsInPeriod) { out.fixed64(hash) }
        }
        out.int64(23, book.overageAfterPeriodEnd)
    }
}
