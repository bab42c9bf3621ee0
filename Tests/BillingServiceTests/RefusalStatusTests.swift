import BillingLedger
import GRPC
@testable import BillingService
import Testing

/// How the ledger's errors reach a caller: the caller's mistakes with their
/// reason, the ledger's own faults as a generic INTERNAL.
@Suite struct RefusalStatusTests {
    struct DiskFull: Error {}

    @Test func aLedgerFaultIsInternalAndTellsTheCallerNothingMore() {
        let status = Refusals.status(LedgerError.internalFault("cannot apply: outOfOrder(expected: 7, got: 9)"))
        #expect(status.code == .internal)
        #expect(status.message == "internal error")
        #expect(status.errorInfo == nil)
    }

    @Test func anUnknownErrorIsInternalToo() {
        let status = Refusals.status(DiskFull())
        #expect(status.code == .internal)
        #expect(status.message == "internal error")
    }

    struct StoreRead: LedgerStoreError {
        var isTransient: Bool
        var leavesDiskStateUnknown: Bool { false }
    }

    /// A read the store could not do now (busy, disk full, an I/O error) is
    /// UNAVAILABLE — retry — without the store's words; one it can never do
    /// is INTERNAL.
    @Test func aTransientStoreReadFailureIsUnavailableNotInternal() {
        let status = Refusals.status(StoreRead(isTransient: true))
        #expect(status.code == .unavailable)
        #expect(status.errorInfo?.reason == "STORAGE_UNAVAILABLE")
        #expect(Refusals.status(StoreRead(isTransient: false)).code == .internal)
    }

    @Test func anAmountTheLedgerCannotKeepIsTheCallersMistake() {
        let status = Refusals.status(LedgerError.invalid("the balance would overflow"))
        #expect(status.code == .invalidArgument)
        #expect(status.errorInfo?.reason == "AMOUNT_TOO_LARGE")
    }

    /// The journal's queue full: the caller is told to back off and retry
    /// (nothing was recorded), not that the service failed.
    @Test func aFullJournalQueueIsResourceExhaustedWithItsReason() {
        let status = Refusals.status(LedgerError.overloaded(pending: 65_536))
        #expect(status.code == .resourceExhausted)
        #expect(status.errorInfo?.reason == "LEDGER_OVERLOADED")
        #expect(status.message.contains("65536 writes waiting"))
    }
}
