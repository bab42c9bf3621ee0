@testable import BillingLedger
import BillingProto
import Testing

/// Admin grants under an idempotency key: a retry grants once; the key with
/// another amount or another note (the reason the audit log shows) is a
/// different grant, refused — also once the key comes from a checkpoint.
@Suite struct GrantKeyTests {
    static func grant(_ h: Harness, _ micros: Int64, note: String) async throws -> (seq: Int64, balance: Int64) {
        try await h.ledger.grantCredits(accountID: "acct", amountMicros: micros, kind: "promotional", note: note,
                                        actor: "test", idempotencyKey: "g-1")
    }

    @Test func aGrantKeyWithAnotherAmountOrNoteIsRefusedBeforeAndAfterARestartFromACheckpoint() async throws {
        var h = try Harness()
        try await h.openAccount("acct", plan: "pro")
        let first = try await Self.grant(h, 500, note: "goodwill")
        for restart in 0..<2 {
            let retry = try await Self.grant(h, 500, note: "goodwill")
            #expect(retry.seq == first.seq && retry.balance == 500, "after \(restart) restarts")
            await #expect(throws: LedgerError.grantKeyReused("g-1")) { try await Self.grant(h, 500, note: "another reason") }
            await #expect(throws: LedgerError.grantKeyReused("g-1")) { try await Self.grant(h, 600, note: "goodwill") }
            await h.ledger.close()  // (writes a checkpoint)
            let store = h.store.restart()
            h = try Harness(store: store, clock: h.clock, ledger: Ledger.open(on: store, clock: h.clock, configuration: Fixtures.configuration()))
            #expect(await h.ledger.loadedCheckpointSeq >= first.seq)  // the key comes from the checkpoint written at close
        }
        #expect(await h.balance("acct") == 500)
        #expect(h.journal().filter { if case .creditsGranted? = $0.event { true } else { false } }.count == 1)
        await h.ledger.close()
    }

    /// A checkpoint written before notes were kept has none: a retry's note
    /// is then not compared (its amount still is).
    @Test func aKeyFromACheckpointWithoutNotesComparesTheAmountOnly() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro")
        let first = try await Self.grant(h, 500, note: "goodwill")
        await h.ledger.close()
        let store = h.store.restart()
        var checkpoint = try #require(try store.latestCheckpoint())
        for index in checkpoint.accounts.indices {
            for key in checkpoint.accounts[index].grantKeys.indices { checkpoint.accounts[index].grantKeys[key].clearNote() }
        }
        h.disk.replaceLatestCheckpoint(checkpoint)
        // `billing verify` finds such a checkpoint's books the journal's (the note is unknown, not different).
        #expect(try LedgerAudit.run(on: store, plans: Fixtures.plans).problems == [])
        let old = try Harness(store: store, clock: h.clock, ledger: Ledger.open(on: store, clock: h.clock))
        #expect(await old.ledger.account("acct")?.grantKeys["g-1"]?.note == nil)
        #expect(try await Self.grant(old, 500, note: "another reason").seq == first.seq)
        await #expect(throws: LedgerError.grantKeyReused("g-1")) { try await Self.grant(old, 600, note: "goodwill") }
        #expect(await old.balance("acct") == 500)
        await old.ledger.close()
        #expect(try LedgerAudit.run(on: old.store.restart(), plans: Fixtures.plans).problems == [])
    }
}
