import ArgumentParser
import BillingAuth
import Foundation

@main
struct Billing: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing",
        abstract: "Billing service for the agent and workflow platform (gRPC over HTTP/2).",
        discussion: """
            Meters agent and workflow runs, debits prepaid credits from an in-process \
            ledger journaled to SQLite, and serves the workspace Billing tab. See README.md.
            """,
        subcommands: [Serve.self, Call.self, Load.self, Verify.self, Keys.self, Audit.self],
        defaultSubcommand: nil)

    /// ArgumentParser's own `main`, but an error it prints never shows a
    /// key or a token (`redactingSecrets`): the leaf commands refuse one
    /// given as an argument unshown (`UnknownOptions`), but `billing <key>`
    /// or `billing keys <key>` — no leaf command to take it — echoed it as
    /// an "Unexpected argument", and an option's value joined with `=`
    /// (`--db=bk_…`) in the message about it (session 31, two reviews).
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            let message = fullMessage(for: error)
            let shown = redactingSecrets(message)
            guard shown != message else { exit(withError: error) }
            FileHandle.standardError.write(Data((shown + "\n").utf8))
            Foundation.exit(exitCode(for: error).rawValue)
        }
    }
}
