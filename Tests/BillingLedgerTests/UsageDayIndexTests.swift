import BillingCore
@testable import BillingLedger
import Synchronization
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

    /// A range holding more cells than the ledger reads in one turn is read
    /// a day at a time across turns (other work runs between them): the
    /// answer is the same as one turn's, and with debits landing meanwhile
    /// it is still one moment's — the days before today as they were, and
    /// today's cells all counting the same debits.
    @Test func aRangeReadAcrossTurnsIsOneMomentsAnswer() async throws {
        var configuration = Fixtures.configuration(checkpointEvery: 1_000)
        configuration.usageCellsPerTurn = 3
        let h = try Harness(configuration: configuration)
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000_000)
        for index in 0..<40 {
            if index % 2 == 0 { h.clock.advance(seconds: 86_400) }
            let items = [LineItem.toolCall(integration: "tool-\(index % 3)", calls: 1), .toolCall(integration: "other", calls: 2)]
            _ = try await h.debit(Fixtures.command(account: "acct", key: "k-\(index)", items: items))
        }
        let ledger = h.ledger
        let book = try #require(await ledger.snapshot.accounts["acct"])
        let days = book.usage.keys.map(\.day)
        let (first, today) = (days.min()!, days.max()!)
        #expect(await !ledger.usageFitsOneTurn(account: "acct", fromDay: .min, toDay: .max))
        #expect(await ledger.usageFitsOneTurn(account: "acct", fromDay: today, toDay: today))
        #expect(await ledger.usageFitsOneTurn(account: "nobody", fromDay: .min, toDay: .max))
        for (from, to) in [(first, today), (first + 3, first + 9), (today, today), (today + 1, today + 5), (Int64.min, Int64.max)] {
            let cells = try #require(try await ledger.committedUsage(account: "acct", fromDay: from, toDay: to))
            #expect(Dictionary(uniqueKeysWithValues: cells.map { ($0.key, $0.value) }) == Self.filtered(book, from, to))
        }
        #expect(try await ledger.committedUsage(account: "nobody", fromDay: .min, toDay: .max) == nil)

        // Today's debits while the whole range is read, again and again
        // (until the writer is done: a failed debit ends the reads too).
        let writing = Atomic(true)
        let writer = Task {
            defer { writing.store(false, ordering: .releasing) }
            for index in 0..<60 {
                let items = [LineItem.toolCall(integration: "now-a", calls: 1), .toolCall(integration: "now-b", calls: 1)]
                _ = try await ledger.frontEndDebit(Fixtures.command(account: "acct", key: "t-\(index)", items: items))
            }
        }
        let before = Self.filtered(book, .min, today - 1)
        var counted: [Int64] = []
        repeat {
            let read = try #require(try await ledger.committedUsage(account: "acct", fromDay: .min, toDay: .max))
            let answer = Dictionary(read.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
            #expect(answer.count == read.count, "a cell read twice")
            #expect(answer.filter { $0.key.day < today } == before)
            let a = answer.first { $0.key.lineKey == "tool_call:now-a" }?.value.quantity ?? 0
            let b = answer.first { $0.key.lineKey == "tool_call:now-b" }?.value.quantity ?? 0
            #expect(a == b, "today's cells from different moments")
            counted.append(a)
        } while counted.last! < 60 && writing.load(ordering: .acquiring)
        try await writer.value
        #expect(counted == counted.sorted())
        // Every debit counted once the writer is done.
        let final = try #require(try await ledger.committedUsage(account: "acct", fromDay: today, toDay: today))
        #expect(final.filter { $0.key.lineKey.hasPrefix("tool_call:now-") }.map(\.value.quantity) == [60, 60])
    }
}
