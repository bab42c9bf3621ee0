import ArgumentParser
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

    /// ArgumentParser's own `main`, but an error it words never shows an
    /// argument holding a key or a token (`looksSecret`): the leaf commands
    /// refuse one unshown (`UnknownOptions`); `billing <key>` or `billing
    /// keys <key>` — no leaf command to take it — echoed it as an
    /// "Unexpected argument" (session 31, a review of the README).
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            let secrets = arguments.filter(looksSecret)
            var message = fullMessage(for: error)
            guard secrets.contains(where: { message.contains($0) }) else { exit(withError: error) }
            for secret in secrets {
                message = message.replacingOccurrences(of: secret, with: "(not shown: it holds an API key or a user token)")
            }
            FileHandle.standardError.write(Data((message + "\n").utf8))
            Foundation.exit(exitCode(for: error).rawValue)
        }
    }
}
