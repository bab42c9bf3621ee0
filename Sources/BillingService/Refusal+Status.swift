import BillingLedger
import BillingProto
import GRPC
import Logging

/// The one place where business refusals and ledger failures become gRPC
/// statuses (with an ErrorInfo reason) or Refusal messages.
enum Refusals {
    /// Where failures that are not the caller's doing are logged: the
    /// caller gets a generic INTERNAL, the details go here only.
    static let logger = Logger(label: "billing.service")
    static func status(_ refused: Billing_Journal_V1_DebitRefused) -> GRPCStatus {
        GRPCStatus(GRPCStatus.Code(rawValue: Int(refused.code)) ?? .failedPrecondition, refused.message,
                   reason: refused.reason, metadata: ["account_id": refused.accountID])
    }

    static func message(_ refused: Billing_Journal_V1_DebitRefused) -> Billing_V1_Refusal {
        var refusal = Billing_V1_Refusal()
        refusal.code = refused.code
        refusal.reason = refused.reason
        refusal.message = refused.message
        refusal.metadata = ["account_id": refused.accountID]
        return refusal
    }

    static func keyReused(account: String, key: String) -> GRPCStatus {
        GRPCStatus(.alreadyExists,
                   "idempotency key \(key) was used for a different request; a new attempt needs a new key",
                   reason: "IDEMPOTENCY_KEY_REUSED", metadata: ["account_id": account])
    }

    static func message(_ status: GRPCStatus) -> Billing_V1_Refusal {
        var refusal = Billing_V1_Refusal()
        refusal.code = Int32(status.code.rawValue)
        refusal.reason = status.errorInfo?.reason ?? ""
        refusal.message = status.message
        refusal.metadata = status.errorInfo?.metadata ?? [:]
        return refusal
    }

    /// A batched debit's refusal, bounded: 8,192 refusals quoting 256-byte
    /// ids twice each (message and metadata) made a response past the 4 MiB
    /// a stock client takes, after the batch's debits were journaled. The
    /// message is cut to 200 bytes and each metadata value to 64; the debit
    /// is known by its position in the batch.
    static func batched(_ status: GRPCStatus) -> Billing_V1_Refusal {
        var refusal = message(status)
        refusal.message = GRPCStatus.cut(refusal.message, to: 200)
        refusal.metadata = refusal.metadata.mapValues { GRPCStatus.cut($0, to: 64) }
        return refusal
    }

    /// Runs `body`, turning whatever the ledger throws into a status.
    static func mapping<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw status(error)
        }
    }

    /// Anything the ledger throws, as a status. Unknown errors and the
    /// ledger's internal faults are bugs or I/O failures: logged here,
    /// INTERNAL to the caller (a generic message: no details leak).
    static func status(_ error: any Error) -> GRPCStatus {
        if let status = error as? GRPCStatus { return status }
        // The caller's deadline passed (it was answered): nothing was done.
        if error is CancellationError { return GRPCStatus(.cancelled, "call cancelled", reason: "CANCELLED") }
        if let refused = error as? AccountRequestRefused {
            return GRPCStatus(GRPCStatus.Code(rawValue: Int(refused.code.rawValue)) ?? .failedPrecondition, refused.message,
                              reason: refused.reason, metadata: refused.field.map { ["field": $0] } ?? [:])
        }
        if let unavailable = error as? GatewayUnavailable {
            return GRPCStatus(.unavailable, unavailable.message, reason: "PAYMENT_GATEWAY_UNAVAILABLE",
                              metadata: ["account_id": unavailable.accountID])
        }
        if let declined = error as? PaymentDeclined {
            let charge = declined.charge
            // What to do next: the key keeps this answer (session 29: "retry",
            // the gateway's word, and a retry under the key replayed the failure).
            let next = declined.idempotencyKey.isEmpty
                ? "pay again, or with another payment method"
                : "a retry under this idempotency key gets this answer again: try a new key (with another payment method, if this one keeps failing)"
            return GRPCStatus(.failedPrecondition, "the payment was declined: \(charge.failureMessage); \(next)", reason: "PAYMENT_DECLINED",
                              metadata: ["charge_id": charge.chargeID, "failure_reason": charge.failureReason, "account_id": charge.accountID])
        }
        let error = error as? LedgerError ?? LedgerError(storeError: error, "request failed")
        switch error {
        case .accountExists(let id):
            return GRPCStatus(.alreadyExists, "account \(id) already exists", reason: "ACCOUNT_EXISTS", metadata: ["account_id": id])
        case .accountNotFound(let id):
            return GRPCStatus(.notFound, "account \(id) does not exist", reason: "ACCOUNT_NOT_FOUND", metadata: ["account_id": id])
        case .grantKeyReused(let key):
            return GRPCStatus(.alreadyExists, "idempotency key \(key) was used for a different grant", reason: "IDEMPOTENCY_KEY_REUSED")
        case .keyNotFound(let id):
            return GRPCStatus(.notFound, "API key \(id) does not exist", reason: "API_KEY_NOT_FOUND", metadata: ["key_id": id])
        case .overloaded(let pending):
            return GRPCStatus(.resourceExhausted, "the ledger has \(pending) writes waiting; retry with backoff",
                              reason: "LEDGER_OVERLOADED")
        case .unavailable(let why):
            return GRPCStatus(.unavailable, "\(why); settle with GetDebit or retry with the same idempotency key",
                              reason: "LEDGER_UNAVAILABLE")
        case .invalid(let why):
            return GRPCStatus(.invalidArgument, why, reason: "AMOUNT_TOO_LARGE")
        case .storageUnavailable(let why):
            return storageUnavailable(why)
        case .internalFault(let why):
            return internalError(why)
        }
    }

    /// A read the store could not do now (busy, disk full, I/O): the same
    /// call may succeed in a moment. The details go to the log.
    static func storageUnavailable(_ error: Any) -> GRPCStatus {
        logger.warning("a ledger read failed", metadata: ["error": "\(error)"])
        return GRPCStatus(.unavailable, "the ledger's storage could not be read; retry", reason: "STORAGE_UNAVAILABLE")
    }

    static func internalError(_ error: Any) -> GRPCStatus {
        logger.error("request failed", metadata: ["error": "\(error)"])
        return GRPCStatus(.internal, "internal error")
    }
}

extension Billing_V1_DebitResponse {
    init(_ entry: Billing_Journal_V1_Entry, _ accepted: Billing_Journal_V1_DebitAccepted) {
        self.init(JournalRecord(seq: entry.seq, atUnixMicros: entry.atUnixMicros, event: .debitAccepted(accepted)))
    }

    /// The answer for an accepted debit's record (its fields read in place).
    init(_ record: JournalRecord) {
        self.init()
        entryID = record.seq
        lineItemAmountsMicros = record.accepted.lines.map(\.amountMicros)
        totalMicros = record.accepted.totalMicros
        balanceAfterMicros = record.accepted.balanceAfterMicros
        catalogVersion = record.accepted.catalogVersion
        coveredByCreditsMicros = record.accepted.fromCreditsMicros
        overageMicros = record.accepted.overageMicros
        debitedUnixSeconds = record.atUnixMicros / 1_000_000
    }
}
