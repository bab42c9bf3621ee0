import BillingCore
@testable import BillingLedger
import Testing

/// A batch's entries are queued in one actor turn and the journal thread is
/// woken once, after the last: woken at the first, it shared the ledger's
/// core and committed them a few at a time.
@Suite struct JournalWakeTests {
    @Test(.timeLimit(.minutes(1))) func aBatchReachesTheJournalInOneCommit() async throws {
        let h = try Harness(configuration: Fixtures.configuration(maxBatch: 1_024, checkpointEvery: 100_000))
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        for round in 0..<5 {
            try await h.journalSleeps()
            let calls = h.disk.appendCallCount
            let commands = try (0..<300).map {
                try Fixtures.command(account: "acct", key: "k-\(round)-\($0)", micros: 5, run: "run-\($0 % 3)")
            }
            let generation = h.ledger.cache.generation
            let outcomes = try await h.ledger.debitBatch(commands.map { ($0, PriorLookup(entry: nil, generation: generation)) })
            #expect(outcomes.allSatisfy { if case .accepted = $0 { true } else { false } })
            #expect(h.disk.appendCallCount == calls + 1, "round \(round): the batch took \(h.disk.appendCallCount - calls) commits")
        }
    }
}
