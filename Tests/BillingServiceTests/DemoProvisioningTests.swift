import BillingAuth
import BillingCore
import BillingLedger
@testable import BillingService
import Testing

/// The demo is made once, whatever a first start stopped part-way through
/// left: its account, its credits (never twice, also when an older build
/// granted them without a key) and a key; a database where a key was ever
/// made, or another account exists, is not fresh.
@Suite struct DemoProvisioningTests {
    static func demoGranted(_ ledger: Ledger) async -> Int64 { await ledger.account("demo")?.granted ?? -1 }

    @Test func aFreshDatabaseGetsTheWholeDemoOnce() async throws {
        try await withSQLiteLedger { ledger in
            #expect(await DemoProvisioning.isFresh(ledger))
            try await DemoProvisioning.provision(ledger, key: ApiKeyMaterial.generate())
            let trial = LedgerConfiguration().trialCreditMicros
            #expect(await Self.demoGranted(ledger) == trial + DemoProvisioning.creditMicros)
            #expect(ledger.keyRing.all.count == 1)
            #expect(await !DemoProvisioning.isFresh(ledger))
        }
    }

    /// Stopped after the account, after the keyed grant, or (an older
    /// build) after a grant without a key: the next start makes the rest.
    @Test func aStartStoppedPartWayIsMadeWhole() async throws {
        for stoppedAfter in ["account", "keyed grant", "unkeyed grant"] {
            try await withSQLiteLedger { ledger in
                _ = try await ledger.createAccount(id: "demo", actor: "serve --demo")
                let trial = await Self.demoGranted(ledger)
                switch stoppedAfter {
                case "keyed grant":
                    _ = try await ledger.grantCredits(accountID: "demo", amountMicros: DemoProvisioning.creditMicros, kind: "promotional",
                                                      note: "demo credits", actor: "serve --demo", idempotencyKey: "demo-credits")
                case "unkeyed grant":
                    _ = try await ledger.grantCredits(accountID: "demo", amountMicros: DemoProvisioning.creditMicros, kind: "promotional",
                                                      note: "demo credits", actor: "serve --demo")
                default:
                    break
                }
                #expect(await DemoProvisioning.isFresh(ledger), "\(stoppedAfter)")
                try await DemoProvisioning.provision(ledger, key: ApiKeyMaterial.generate())
                #expect(await Self.demoGranted(ledger) == trial + DemoProvisioning.creditMicros, "\(stoppedAfter): credits granted once")
                #expect(ledger.keyRing.all.count == 1)
            }
        }
    }

    @Test func aKeyEverMadeOrAnotherAccountIsNotFresh() async throws {
        try await withSQLiteLedger { ledger in
            let material = ApiKeyMaterial.generate()
            _ = try await ledger.createApiKey(keyID: material.keyID, name: "ops", scopes: ["metering:read"], hash: material.hash,
                                              expiresUnix: 0, actor: "t")
            _ = try await ledger.revokeApiKey(keyID: material.keyID, actor: "t")
            #expect(await !DemoProvisioning.isFresh(ledger), "a revoked key: the demo's is not made again behind it")
        }
        try await withSQLiteLedger { ledger in
            _ = try await ledger.createAccount(id: "acme", actor: "t")
            #expect(await !DemoProvisioning.isFresh(ledger))
        }
    }
}
