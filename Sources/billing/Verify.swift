import ArgumentParser
import BillingAuth
import BillingLedger
import BillingSQLite
import Foundation

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reconcile the ledger: recompute every balance, roll-up and run cost from the journal.",
        discussion: """
            Replays the whole journal from its first entry and checks that balances equal grants \
            minus debits, overage and usage roll-ups equal the debits, the newest checkpoint plus \
            the journal after it gives the same books, the key and run indexes hold exactly the \
            journal's debits, keys find their own entries (all of the first 100,000, then a \
            sample), no key is journaled twice, and invoices add up. Exits 0 when clean, 1 when a \
            difference is found, 2 when it cannot check (no database, an unreadable or older \
            schema, a failed read). Safe to run while the server is up: it only reads, and leaves a \
            checkpoint the server is writing alone. Memory does not grow with the journal.
            """)

    @Option(help: "SQLite database file of the ledger.")
    var db: String = "var/billing.sqlite"

    @Flag(help: "Print the report as JSON.")
    var json = false

    // Arguments it does not take are named — but never a key or token
    // (session 30: `billing verify bk_…` echoed the key).
    @OptionGroup var unknown: UnknownOptions  // (validated by ArgumentParser, as every option group)

    func run() throws {
        var audit: LedgerAudit
        do {
            try DatabaseLock.requireOnePath(db)
            let store = try SQLiteLedgerStore(path: db, synchronous: .normal, migrating: false)
            defer { store.close() }
            audit = try LedgerAudit.run(on: store)
            // A checkpoint start-up would pass over: a difference of its own.
            audit.problems += store.takeSkippedCheckpoints().map { "unreadable \($0)" }
        } catch {
            // Could not check at all: not the same as "differences found".
            FileHandle.standardError.write(Data(redactingSecrets("Error: \(error)\n").utf8))
            throw ExitCode(2)
        }
        if json {
            let report: [String: Any] = [
                "clean": audit.isClean, "entries": audit.entries, "accounts": audit.accounts,
                "accepted_debits": audit.acceptedDebits, "refused_debits": audit.refusedDebits,
                "pending_charges": audit.pendingCharges, "problems": audit.problems,
            ]
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("journal entries: \(audit.entries), accounts: \(audit.accounts), debits accepted: \(audit.acceptedDebits), refused: \(audit.refusedDebits)")
            if audit.pendingCharges > 0 {
                print("gateway charges started, outcome not yet journaled: \(audit.pendingCharges) (a running server records them at its next tick, within a second; on a test clock, at its next AdvanceClock or request of the account)")
            }
            if audit.isClean {
                print("clean: balances, roll-ups, run costs and indexes reconcile with the journal")
            } else {
                print("\(audit.problems.count) difference(s):")
                audit.problems.forEach { print("  - \($0)") }
            }
        }
        if !audit.isClean { throw ExitCode(1) }
    }
}
