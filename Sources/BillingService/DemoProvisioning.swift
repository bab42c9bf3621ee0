import BillingAuth
import BillingLedger

/// What `billing serve` gives a fresh database so the Quick start works:
/// the demo account, its promotional credits and a service key with every
/// scope — each made once, so a first start stopped part-way through (a
/// failed commit, a kill between two of them) is made whole by the next.
public enum DemoProvisioning {
    public static let accountID = "demo"
    /// The demo's promotional credits ($100), granted under `creditsKey`.
    public static let creditMicros: Int64 = 100_000_000
    static let creditsKey = "demo-credits"
    static let actor = "serve --demo"

    /// Whether the database is fresh for the demo: no API key was ever made
    /// (a revoked or expired one counts: the demo's key is not made again
    /// behind a revocation), and no account but the demo's.
    public static func isFresh(_ ledger: Ledger) async -> Bool {
        guard ledger.keyRing.all.isEmpty else { return false }
        let accounts = await ledger.accountCount
        let demoExists = await ledger.hasAccount(accountID)
        return accounts == 0 || (accounts == 1 && demoExists)
    }

    /// Makes what is missing of the demo: the account, its credits (once:
    /// under `creditsKey`; an account that already holds them — granted by
    /// an older build without a key — is not granted again) and a service
    /// key with every scope, whose material is `key`.
    public static func provision(_ ledger: Ledger, key: (keyID: String, token: String, hash: [UInt8])) async throws {
        let existed = await ledger.hasAccount(accountID)
        if !existed {
            _ = try await ledger.createAccount(id: accountID, displayName: "Demo workspace", billingEmail: "demo@example.com",
                                               actor: actor)
        }
        // No key was ever made, so no Admin grant either: past the trial
        // credit, what the account was granted is the demo's credits.
        let granted = await ledger.account(accountID)?.granted ?? 0
        if !existed || granted < creditMicros {
            _ = try await ledger.grantCredits(accountID: accountID, amountMicros: creditMicros, kind: "promotional",
                                              note: "demo credits", actor: actor, idempotencyKey: creditsKey)
        }
        _ = try await ledger.createApiKey(keyID: key.keyID, name: "demo (all scopes)", scopes: Scope.allCases.map(\.rawValue).sorted(),
                                          hash: key.hash, expiresUnix: 0, actor: actor)
    }
}
