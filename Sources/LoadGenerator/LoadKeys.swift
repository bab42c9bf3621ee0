import Foundation

/// The names `billing load` makes up. An idempotency key is unique per run,
/// connection and call (a connection numbers its debits 1, 2, 3, …), so
/// concurrent connections and back-to-back runs never share one.
public enum LoadKeys {
    /// A run id unique per start: the time in milliseconds and 32 random bits,
    /// both base 36, so two loads started together do not share keys.
    public static func runID(millisSince1970: UInt64, random: UInt32) -> String {
        "load-\(String(millisSince1970, radix: 36))-\(String(random, radix: 36))"
    }

    /// A fresh run id from the wall clock and the system's random generator.
    public static func newRunID() -> String {
        runID(millisSince1970: UInt64(Date().timeIntervalSince1970 * 1000), random: .random(in: 0 ... .max))
    }

    /// The idempotency key of a connection's `sequence`-th debit (from 1).
    public static func key(runID: String, connection: Int, sequence: Int64) -> String {
        "\(runID)-c\(connection)-\(sequence)"
    }

    /// The agent run a connection's `sequence`-th debit belongs to: four debits per run.
    public static func run(runID: String, connection: Int, sequence: Int64) -> String {
        "\(runID)-c\(connection)-r\(sequence / 4)"
    }

    /// The `index`-th account the run provisions.
    public static func account(runID: String, index: Int) -> String {
        "\(runID)-a\(index)"
    }

    /// The run every account is given before the timed phase when the mix
    /// queries execution costs, and its debit's idempotency key: a cost query
    /// for an account this connection has not debited yet asks for it.
    public static func seedRun(account: String) -> String {
        "\(account)-seed-run"
    }

    public static func seedKey(account: String) -> String {
        "\(account)-seed"
    }

    /// The idempotency key of an account's credit grant.
    public static func creditGrant(account: String) -> String {
        "\(account)-credits"
    }
}
