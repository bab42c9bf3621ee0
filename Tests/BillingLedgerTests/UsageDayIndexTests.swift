import BillingCore
@testable import BillingLedger
import Testing

/// GetUsage reads only the days it asks for (`AccountBook.usageDays`), kept
/// where cells are created and rebuilt when a checkpoint is loaded: the
/// answer is the same as filtering every cell, live and after a restart.
@Suite struct UsageDayIndexTests {
    static func filtered(_ book: AccountBook, _ from: Int64, _ to: Int64) -> [UsageKey: UsageCell] {
        book.usage.filter { $0.key.day >= from && $0.key.day <= to }
    }

    @Test func aRangeOfDaysReadsWhatAFilterOfEveryCellReads() async throws {
        let h = try Harness(configuration: Fixtures.configuration(checkpointEvery: 7))
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        var rng = SplitMix64(seed: 19)
        for index in 0..<60 {
            h.clock.advance(seconds: Int64(rng.next() % 3) * 86_400 + 3_600)
            let items = (0..<Int(rng.next() % 3 + 1)).map { _ in LineItem.toolCall(integration: "tool-\(rng.next() % 4)", calls: 1) }
            _ = try await h.debit(Fixtures.command(account: "acct", key: "k-\(index)", agent: "agent-\(rng.next() % 3)", items: items))
        }
        for ledger in [h.ledger, try await h.restarted().ledger] {
            let book = try #require(await ledger.snapshot.accounts["acct"])
            #expect(book.usageDays.count == book.usage.count)
            let days = book.usage.keys.map(\.day)
            let (first, last) = (days.min()!, days.max()!)
            for (from, to) in [(first, last), (first, first), (last, last), (first + 5, first + 20), (last + 1, last + 9),
                               (first - 9, first - 1), (Int64.min, Int64.max)] {
                #expect(try await ledger.usage(account: "acct", fromDay: from, toDay: to) == Self.filtered(book, from, to))
            }
            await ledger.close()
        }
    }
}
