import ArgumentParser
import BillingProto
import BillingSQLite
import BillingService
import Foundation

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the audit log: every admin action (accounts, credit grants, contracts, API keys, clock moves) and every plan, payment-method, purchase, period-close and invoice-payment change, with who did it.",
        discussion: "Reads only; safe beside a running server. Newest first.")

    @Option(help: "SQLite database file of the ledger.")
    var db: String = "var/billing.sqlite"

    @Option(help: "Only this account's entries.")
    var account: String = ""

    @Option(parsing: .unconditional, help: "At most this many entries (1...100000).")
    var limit: Int = 100

    @OptionGroup var unknown: UnknownOptions

    // (In `validate`, ArgumentParser shows this command's usage with the error.)
    func validate() throws {
        guard FileManager.default.fileExists(atPath: db) else { throw ValidationError("no database at \(db)") }
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be 1...100000") }
    }

    func run() throws {
        try DatabaseLock.requireOnePath(db)
        let store = try SQLiteLedgerStore(path: db, migrating: false)
        defer { store.close() }
        for entry in try store.auditEntries(accountID: account, sinceMicros: 0, beforeSeq: .max, limit: limit) {
            let line = AuditLine(entry)
            // Stored texts printed as they cannot move the cursor or break the line.
            print("\(line.seq)  \(line.time)  \(printable(line.actor))  \(line.action)  \(printable(line.details))")
        }
    }
}

/// One audit entry as a text line, from the same mapping the Admin
/// ListAuditLog RPC uses (`AuditEvent`).
struct AuditLine {
    let seq: Int64
    let time: String
    let actor: String
    let action: String
    let details: String

    init(_ entry: Billing_Journal_V1_Entry) {
        let event = AuditEvent.message(entry)
        seq = event.entryID
        time = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(event.atUnixSeconds)))
        actor = event.actor
        action = event.action
        let account = event.accountID.isEmpty ? [] : ["account=\(event.accountID)"]
        details = (account + event.details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
            .joined(separator: " ")
    }
}
