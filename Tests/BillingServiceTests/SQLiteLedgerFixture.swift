import BillingCore
import BillingLedger
import BillingSQLite
import Foundation
import Logging

/// Runs `body` with a ledger on a fresh SQLite database (synchronous NORMAL)
/// in a temporary directory, closed and removed afterwards.
func withSQLiteLedger<T>(clock: any LedgerClock = SystemClock(), gateway: any PaymentGateway = TestPaymentGateway(),
                         configuration: LedgerConfiguration = LedgerConfiguration(),
                         _ body: (Ledger) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let store = try SQLiteLedgerStore(path: directory.appendingPathComponent("db.sqlite").path, synchronous: .normal)
    let ledger = try Ledger(store: store, plans: .default, clock: clock, configuration: configuration,
                            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), gateway: gateway)
    do {
        let result = try await body(ledger)
        await ledger.close()
        return result
    } catch {
        await ledger.close()
        throw error
    }
}
