import ArgumentParser

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
}
