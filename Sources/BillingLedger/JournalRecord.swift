public import BillingProto
public import SwiftProtobuf

/// A journal entry as the ledger holds it in memory from the moment it is
/// appended: in the journal's queue, in the idempotency cache and in the
/// outcome handed back to the caller. One object shared by all of them.
///
/// Not the protobuf `Billing_Journal_V1_Entry`, whose event lives behind a
/// computed property: every read of `entry.event` copies the whole event out
/// of the message's storage (a debit's carries a dozen texts and line items:
/// a retain and a release apiece), and the journal's encoder, the cache and
/// the response each read it. Binding an enum's payload, or unwrapping an
/// optional, copies it too (measured: ~1 % of a DebitBatch each), so an
/// accepted debit — nearly every entry — is kept in a plain stored property,
/// `accepted`, whose fields are read in place (`record.accepted.lines`: one
/// retain, of the lines). `event` and `entry` rebuild the rest where they
/// are needed (refusals, retries, GetDebit, tools, tests).
public final class JournalRecord: Sendable, Equatable {
    public let seq: Int64
    public let atUnixMicros: Int64
    /// Whether the event is an accepted debit (then in `accepted`).
    public let isAccepted: Bool
    /// Whether the event is a debit, accepted or refused.
    public let isDebit: Bool
    /// The accepted debit when `isAccepted`; else an empty message.
    public let accepted: Billing_Journal_V1_DebitAccepted
    /// Any other event (nil for an accepted debit).
    private let otherEvent: Billing_Journal_V1_Entry.OneOf_Event?
    /// Fields of the entry message this build does not know (only in
    /// records of entries read back from a journal a newer build wrote):
    /// kept, so that `entry` is the entry read.
    public let unknownFields: UnknownStorage

    public init(seq: Int64, atUnixMicros: Int64, event: consuming Billing_Journal_V1_Entry.OneOf_Event?,
                unknownFields: UnknownStorage = UnknownStorage()) {
        self.seq = seq
        self.atUnixMicros = atUnixMicros
        self.unknownFields = unknownFields
        switch consume event {
        case .debitAccepted(let accepted)?:
            (isAccepted, isDebit) = (true, true)
            self.accepted = accepted
            otherEvent = nil
        case let other:
            if case .debitRefused? = other { (isAccepted, isDebit) = (false, true) } else { (isAccepted, isDebit) = (false, false) }
            accepted = Billing_Journal_V1_DebitAccepted()
            otherEvent = other
        }
    }

    /// The record of an entry read back from the store (all of it).
    public convenience init(_ entry: Billing_Journal_V1_Entry) {
        self.init(seq: entry.seq, atUnixMicros: entry.atUnixMicros, event: entry.event, unknownFields: entry.unknownFields)
    }

    /// The event (a copy).
    public var event: Billing_Journal_V1_Entry.OneOf_Event? {
        isAccepted ? .debitAccepted(accepted) : otherEvent
    }

    /// Same seq, time and event (and unknown fields).
    public static func == (lhs: JournalRecord, rhs: JournalRecord) -> Bool {
        lhs.seq == rhs.seq && lhs.atUnixMicros == rhs.atUnixMicros && lhs.isAccepted == rhs.isAccepted
            && lhs.accepted == rhs.accepted && lhs.otherEvent == rhs.otherEvent && lhs.unknownFields == rhs.unknownFields
    }

    /// The entry as a protobuf message (a copy of the event).
    public var entry: Billing_Journal_V1_Entry {
        var entry = Billing_Journal_V1_Entry()
        entry.seq = seq
        entry.atUnixMicros = atUnixMicros
        entry.event = event
        entry.unknownFields = unknownFields
        return entry
    }
}
