import ArgumentParser
import BillingAuth
import BillingCore
import BillingLedger
import BillingService
import BillingSQLite
import Foundation
import Logging

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke service API keys on a stopped server's database.",
        discussion: """
            Keys carry scopes: metering:write (Debit, DebitBatch), metering:read (Quote, \
            GetExecutionCost, GetDebit, GetUsage), accounts:admin (the Admin service, and every \
            Accounts and Payments method on any account: creating accounts, plan changes, \
            purchases, payment methods, invoices). A key is shown once, at creation; only its SHA-256 is stored. While the \
            server runs, use the Admin API (CreateApiKey, ListApiKeys, RevokeApiKey) instead: \
            these commands refuse to write a database a server has open.
            """,
        subcommands: [Create.self, List.self, Revoke.self])

    struct Database: ParsableArguments {
        @Option(name: .customLong("db"), help: "SQLite database file of the ledger (default: var/billing.sqlite). create: made if missing and named here, e.g. before a first `serve --no-demo`.")
        var named: String?

        var db: String { named ?? "var/billing.sqlite" }

        /// `list` and `revoke` need the database; `create` makes it.
        func requireExisting() throws {
            guard FileManager.default.fileExists(atPath: db) else { throw ValidationError("no database at \(db)") }
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print it (once).")
        // First: an unknown option is named, not taken for a missing --db.
        @OptionGroup var unknown: UnknownOptions
        @OptionGroup var database: Database
        @Option(help: "Name to recognise the key by.")
        var name: String
        @Option(help: "A scope; repeat for several: metering:write, metering:read, accounts:admin.")
        var scope: [String]

        func validate() throws {
            guard !name.isEmpty, name.utf8.count <= 128 else { throw ValidationError("--name is required, at most 128 bytes") }
            // As CreateApiKey checks it: `keys list` prints names one per line.
            do {
                try requireID(name, "--name")
            } catch {
                throw ValidationError(error.message)
            }
            guard !looksSecret(name) else {
                throw ValidationError("--name holds an API key or a user token (not shown): it would be stored and listed in the clear")
            }
            guard !scope.isEmpty else { throw ValidationError("give at least one --scope") }
            for s in scope where Scope(rawValue: s) == nil {
                throw ValidationError("unknown scope \(s); scopes are metering:write, metering:read, accounts:admin")
            }
            // Made only where --db says: the default path, relative to the
            // current directory, from the wrong one would make a ledger no
            // server reads, and a key it does not know. (Checked here, not
            // in `run`: refused with this command's usage — session 31, it
            // showed the top-level one.)
            if database.named == nil && !FileManager.default.fileExists(atPath: database.db) {
                throw ValidationError("no database at \(database.db) (run from the directory the server runs in, or give --db; a database named by --db is made if it is missing)")
            }
        }

        func run() throws {
            let material = ApiKeyMaterial.generate()
            let scopes = Array(Set(scope)).sorted()
            // A first key for a production server (`serve --no-demo` makes
            // none): the database is made here if it is missing (session 28:
            // refused, "no database", and `serve --no-demo` then "in use":
            // the only way was start, stop, create, start).
            let creating = !FileManager.default.fileExists(atPath: database.db)
            try withLedger(database.db, creating: true) { ledger in
                try blockingAwait {
                    _ = try await ledger.createApiKey(keyID: material.keyID, name: name, scopes: scopes, hash: material.hash,
                                                      expiresUnix: 0, actor: "cli")
                }
            }
            if creating { FileHandle.standardError.write(Data("created a new, empty ledger at \(DatabaseLock.resolved(database.db))\n".utf8)) }
            print("key_id: \(material.keyID)\nscopes: \(scopes.joined(separator: " "))\nsecret (shown once): \(material.token)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never their secrets): id, state (active, expired, revoked), scopes, name, creator, expiry.")
        // First: an unknown option is named, not taken for a missing --db.
        @OptionGroup var unknown: UnknownOptions

        static func date(_ unix: Int64) -> String {
            ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(unix)))
        }
        @OptionGroup var database: Database
        @Flag(help: "Include revoked keys.")
        var includeRevoked = false

        func validate() throws { try database.requireExisting() }

        func run() throws {
            try withLedger(database.db, write: false) { ledger in
                let now = ledger.currentUnix
                for key in ledger.keyRing.all where includeRevoked || key.revokedUnix == 0 {
                    let state = key.revokedUnix != 0 ? "revoked"
                        : key.expiresUnix != 0 && key.expiresUnix <= now ? "expired" : "active"
                    let expires = key.expiresUnix == 0 ? "" : "  expires=\(Self.date(key.expiresUnix))"
                    print("\(key.keyID)  \(state)  \(key.scopes.joined(separator: ","))  \(printable(key.name))"
                          + "  created_by=\(printable(key.createdBy))\(expires)")
                }
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by id.")
        @OptionGroup var database: Database
        @Argument(help: "The key id (the part after bk_ up to the next _).")
        var keyID: String
        // Whatever follows (`Bearer bk_…` pasted unquoted: the key is the
        // second argument), taken here so it is refused unshown, not echoed
        // by ArgumentParser as an unexpected argument.
        @Argument(parsing: .allUnrecognized, help: .hidden)
        var rest: [String] = []

        func validate() throws {
            // An option this command lacks is named, not taken for a missing
            // database or a bad key id (ArgumentParser reports it only once
            // `validate` passed; `rest` takes arguments, not options). Read
            // from the command line; a key is never an option, nothing
            // secret is echoed.
            let known: Set = ["--db", "-h", "--help"]
            if let option = CommandLine.arguments.dropFirst().prefix(while: { $0 != "--" }).first(where: {
                $0.hasPrefix("-") && !known.contains($0) && !$0.hasPrefix("--db=") && !$0.contains("bk_") && $0.count <= 40
            }) {
                throw ValidationError("Unknown option '\(option)'")
            }
            try database.requireExisting()
            guard rest.isEmpty else {
                throw ValidationError("give one key id: the 12 characters after bk_ up to the next _ (not the whole key; what was given is not shown here)")
            }
            // Anything but a key id — a whole key pasted here, with a "Bearer "
            // or a space or quotes in front — is refused unshown (it was
            // echoed in the "no key" message, secret and all).
            guard ApiKeyToken.isKeyID(keyID) else {
                throw ValidationError("give the key id: the 12 characters after bk_ up to the next _ (not the whole key; it is not shown here)")
            }
        }

        func run() throws {
            do {
                try withLedger(database.db) { ledger in
                    _ = try blockingAwait { try await ledger.revokeApiKey(keyID: keyID, actor: "cli") }
                }
            } catch LedgerError.keyNotFound {
                throw CLIError("no key \(printable(keyID)) (see `billing keys list --include-revoked`)")
            }
            print("revoked \(keyID)")
        }
    }
}

/// Opens the ledger of `path` for an offline command (holding the database
/// lock when it writes), runs `body`, and closes it.
/// `creating`: a missing database is made (a writing command only), unless
/// its lock file says one was opened there (moved or deleted).
func withLedger(_ path: String, write: Bool = true, creating: Bool = false, _ body: (Ledger) throws -> Void) throws {
    if creating && write {
        try DatabaseLock.requireNotMovedAway(path)
    } else {
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError("no database at \(path)") }
    }
    let lock = write ? try DatabaseLock(database: path) : nil
    defer { _ = lock }
    if !write { try DatabaseLock.requireOnePath(path) }
    let store = try SQLiteLedgerStore(path: path, owner: write, migrating: write)
    lock?.markOpened()
    defer { store.close() }
    var logger = Logger(label: "billing")
    logger.logLevel = .warning
    var configuration = LedgerConfiguration()
    configuration.periodicCheckpoints = false  // none queued by its append either
    let ledger = try Ledger(store: store, plans: .default, clock: SystemClock(), configuration: configuration, logger: logger)
    // No checkpoint on close, even after a write: the key's entry is durable
    // in the journal already, and a checkpoint here would store a key
    // filter of this command's default size over the server's own (one
    // `serve --key-filter-mib` other than 16 would then rebuild its filter
    // from the whole index at its next start). A reader beside a running
    // server writes nothing anyway.
    defer { try? blockingAwait { await ledger.close(checkpoint: false) } }
    try body(ledger)
}
