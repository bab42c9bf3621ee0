import Foundation
import BillingCore
@testable import BillingLedger
import BillingProto
import Testing
import Synchronization

/// The key filter, the in-memory generations and the hashes they share with
/// the store's indexes.
@Suite struct KeyIndexTests {
    @Test func theFilterNeverForgetsAKeyAndRarelyClaimsANewOne() {
        let filter = KeyFilter(bytes: 64 << 10)  // 1,024 blocks
        #expect(filter.bytes == 64 << 10)
        var rng = SplitMix64(seed: 7)
        let inserted = (0..<50_000).map { _ in Int64(bitPattern: rng.next()) }
        for hash in inserted { filter.insert(hash) }
        #expect(inserted.allSatisfy(filter.mightContain), "no false negatives")
        let others = (0..<100_000).map { _ in Int64(bitPattern: rng.next()) }
        let falsePositives = others.filter(filter.mightContain).count
        // 10.5 bits per key: a split-block filter answers "maybe" for ~1 % of new keys.
        #expect(falsePositives < 3_000, "\(falsePositives) of 100,000 new keys looked seen")
        #expect(falsePositives > 0, "a full filter of this size cannot be exact")
        #expect(KeyFilter(bytes: 100).bytes == 64)
        #expect(KeyFilter(bytes: (16 << 20) + 5).bytes == 16 << 20)
        // From 2 MiB up the words are 2 MiB-aligned memory advised for huge pages.
        let large = KeyFilter(bytes: 4 << 20)
        #expect(large.wordsAreHugePageAligned)
        for hash in inserted.prefix(1_000) { large.insert(hash) }
        #expect(inserted.prefix(1_000).allSatisfy(large.mightContain))
        #expect(others.prefix(10_000).filter(large.mightContain).count < 10, "4 MiB for 1,000 keys: nearly exact")
        #expect(large.contents().count == 4 << 20)
    }

    /// The estimate the logs report agrees with the measured rate, from the
    /// live filter and from its stored copy, as the filter fills up.
    @Test func theEstimatedFalsePositiveRateMatchesTheMeasuredOne() {
        let filter = KeyFilter(bytes: 64 << 10)
        #expect(filter.falsePositiveRate() == 0)
        var rng = SplitMix64(seed: 11)
        for keys in [20_000, 60_000, 200_000] {
            while filter.insertions < keys { filter.insert(Int64(bitPattern: rng.next())) }
            let measured = Double((0..<100_000).filter { _ in filter.mightContain(Int64(bitPattern: rng.next())) }.count) / 100_000
            let estimate = filter.falsePositiveRate()
            #expect(abs(estimate - measured) <= max(0.002, 0.15 * measured), "\(keys) keys: estimate \(estimate), measured \(measured)")
            #expect(KeyFilter.falsePositiveRate(of: filter.contents()) == estimate)
        }
        #expect(filter.falsePositiveRate() > 0.05, "200,000 keys in 64 KiB saturate it")
        #expect(KeyFilter.percent(0.0032) == "0.32%" && KeyFilter.percent(0.05) == "5.00%" && KeyFilter.percent(0.12346) == "12.35%")
    }

    @Test func hashesAreStableAcrossProcesses() {
        // Stored in SQLite: a change here orphans every index row written before it.
        #expect(JournalKeyHash.debit(account: "acct-1", key: "k1") == KeyIndexTests.pinnedDebitHash)
        #expect(JournalKeyHash.run(account: "acct-1", run: "k1") == KeyIndexTests.pinnedRunHash)
        // Length-prefixed fields: moving a byte between account and key changes the hash.
        #expect(JournalKeyHash.debit(account: "ab", key: "c") != JournalKeyHash.debit(account: "a", key: "bc"))
        #expect(JournalKeyHash.debit(account: "a", key: "b") != JournalKeyHash.run(account: "a", run: "b"))
    }

    // FNV-1a 64 over (domain byte, u32-LE length, UTF-8, ...) then SplitMix64's
    // finalizer, computed independently (Python) for ("acct-1", "k1").
    static let pinnedDebitHash: Int64 = 6_552_773_656_225_997_593
    static let pinnedRunHash: Int64 = 3_708_804_579_418_589_061

    @Test func generationsLeaveMemoryOnlyOnceIndexed() {
        let cache = IdempotencyCache()
        let first = Self.debit(1, key: "k1", run: "r1")
        cache.insert(first)
        #expect(cache.lookup(account: "acct", key: "k1").record?.entry == first)
        let rows = cache.seal(atSeq: 1)
        #expect(rows.keys == [.init(hash: JournalKeyHash.debit(account: "acct", key: "k1"), seq: 1)])
        #expect(rows.runs == [.init(hash: JournalKeyHash.run(account: "acct", run: "r1"), seq: 1)])
        let second = Self.debit(2, key: "k2", run: "r1")
        cache.insert(second)
        _ = cache.seal(atSeq: 2)
        let generation = cache.lookup(account: "acct", key: "k1").generation
        // Sealed but not yet stored: both stay, whatever happens to later ones.
        #expect(cache.runEntries(account: "acct", run: "r1").map(\.entry) == [first, second])
        cache.indexed(through: 1)
        #expect(cache.lookup(account: "acct", key: "k1").record?.entry == first, "the newest indexed generation stays as a hot set")
        cache.indexed(through: 2)
        let after = cache.lookup(account: "acct", key: "k1")
        #expect(after.record == nil && after.generation != generation, "dropped, and the drop is visible")
        #expect(cache.lookup(account: "acct", key: "k2").record?.entry == second)
        #expect(cache.runEntries(account: "acct", run: "r1").map(\.entry) == [second])
        #expect(cache.count == 1)
    }

    /// Runs chained through one generation's positions: every run's debits
    /// in seq order, across interleaved runs, refusals (no run), a key
    /// whose hash is taken (kept apart, found by its strings) and sealed
    /// generations; each key's lookup finds its own entry.
    @Test func runsAndKeysOfManyInterleavedDebitsAreFoundInOrder() {
        let cache = IdempotencyCache()
        var rng = SplitMix64(seed: 7)
        var byRun: [String: [Billing_Journal_V1_Entry]] = [:]
        var byKey: [String: Billing_Journal_V1_Entry] = [:]
        for seq in Int64(1)...600 {
            let key = "k-\(seq)"
            let entry: Billing_Journal_V1_Entry
            if rng.next() % 5 == 0 {
                var refused = Billing_Journal_V1_DebitRefused()
                refused.accountID = "acct"
                refused.idempotencyKey = key
                var e = Billing_Journal_V1_Entry()
                e.seq = seq
                e.event = .debitRefused(refused)
                entry = e
            } else {
                let run = "r-\(rng.next() % 17)"
                entry = Self.debit(seq, key: key, run: run)
                byRun[run, default: []].append(entry)
            }
            if seq == 300 {
                // Inserted under k-1's hash: a collision, kept apart.
                cache.insert(entry, keyHash: JournalKeyHash.debit(account: "acct", key: "k-1"))
            } else {
                cache.insert(entry)
            }
            byKey[key] = entry
            if seq % 250 == 0 { _ = cache.seal(atSeq: seq) }
        }
        #expect(cache.count == 600)
        for (run, entries) in byRun {
            #expect(cache.runEntries(account: "acct", run: run).map(\.entry) == entries, "run \(run)")
        }
        for (key, entry) in byKey {
            let hash = key == "k-300" ? JournalKeyHash.debit(account: "acct", key: "k-1") : JournalKeyHash.debit(account: "acct", key: key)
            #expect(cache.lookup(account: "acct", key: key, hash: hash).record?.entry == entry, "key \(key)")
        }
        #expect(cache.runEntries(account: "acct", run: "r-17").isEmpty)
    }

    @Test func aHitIsCheckedAgainstTheEntrysOwnKey() {
        let cache = IdempotencyCache()
        let entry = Self.debit(1, key: "k1", run: "r1")
        let hash = cache.insert(entry)!
        // Another key arriving with k1's hash (a collision) is not k1.
        #expect(cache.lookup(account: "acct", key: "other", hash: hash).record == nil)
        #expect(cache.lookup(account: "acct", key: "k1", hash: hash).record?.entry == entry)
        #expect(cache.runEntries(account: "acct", run: "r2").isEmpty)
    }

    @Test func aNewKeyReachesTheStoreOnlyWhenTheFilterCannotRuleItOut() async throws {
        let h = try Harness(configuration: Fixtures.configuration(checkpointEvery: 10))
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        let first = try Fixtures.command(account: "acct", key: "k-0", micros: 5)
        let original = try await h.debit(first)
        for index in 1..<200 {
            _ = try await h.debit(Fixtures.command(account: "acct", key: "k-\(index)", micros: 5, run: "run-\(index)"))
        }
        #expect(h.disk.keyLookups == 0, "every new key was ruled out in memory")
        try await h.ledger.checkpoint()
        #expect(h.ledger.cache.lookup(account: "acct", key: "k-0").record == nil, "k-0 left memory")
        // A retry of an old key: one read of the index finds it.
        #expect(try await h.debit(first).entry == original.entry)
        #expect(h.disk.keyLookups == 1)
        await h.ledger.close()
    }

    /// The key filter is stored with the first checkpoint of a process and
    /// every `keyFilterEveryCheckpoints`-th after it: a restart loads the
    /// stored copy and reads only the key hashes indexed after it (and
    /// replays the rest); a filter of another size is rebuilt from the whole
    /// index instead. Either way no key is forgotten.
    @Test func aRestartLoadsTheStoredFilterAndTheKeysIndexedAfterIt() async throws {
        var configuration = Fixtures.configuration(checkpointEvery: 1_000)
        configuration.keyFilterEveryCheckpoints = 3
        let h = try Harness(configuration: configuration)
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        let keys = (0..<90).map { "k-\($0)" }
        func debit(_ range: Range<Int>, on harness: Harness) async throws {
            for key in keys[range] { _ = try await harness.debit(Fixtures.command(account: "acct", key: key, micros: 5)) }
        }
        try await debit(0..<50, on: h)
        try await h.ledger.checkpoint()  // the process's first: the filter is stored
        #expect(h.disk.keyFiltersStored == 1)
        try await debit(50..<70, on: h)
        try await h.ledger.checkpoint()
        try await debit(70..<80, on: h)
        try await h.ledger.checkpoint()
        #expect(h.disk.keyFiltersStored == 1, "not with the next two")
        try await debit(80..<90, on: h)  // journaled, not indexed: replayed
        let read = h.disk.keyHashesRead

        let restarted = try await h.restarted()
        #expect(h.disk.keyHashesRead - read == 30, "the keys of the two generations after the stored filter")
        for key in keys {
            #expect(restarted.ledger.keyFilter.mightContain(JournalKeyHash.debit(account: "acct", key: key)), "\(key)")
        }
        let lookups = h.disk.keyLookups
        for index in 90..<130 {
            _ = try await restarted.debit(Fixtures.command(account: "acct", key: "k-\(index)", micros: 5))
        }
        #expect(h.disk.keyLookups == lookups, "new keys are ruled out by the loaded filter")
        try await restarted.ledger.checkpoint()
        #expect(h.disk.keyFiltersStored == 2, "the restarted process's first checkpoint")

        var resized = configuration
        resized.keyFilterBytes = 128 << 10
        let beforeResize = h.disk.keyHashesRead
        let rebuilt = try await restarted.restarted(configuration: resized)
        #expect(h.disk.keyHashesRead - beforeResize == 130, "another size: every indexed key read")
        for index in 0..<130 {
            #expect(rebuilt.ledger.keyFilter.mightContain(JournalKeyHash.debit(account: "acct", key: "k-\(index)")))
        }
        try await rebuilt.ledger.checkpoint()
        #expect(h.disk.keyFiltersStored == 3, "the rebuilt process's first checkpoint")
        _ = try await rebuilt.debit(Fixtures.command(account: "acct", key: "k-last", micros: 5))
        let checkpoints = h.disk.checkpointStatistics.written
        await rebuilt.ledger.close()
        #expect(h.disk.keyFiltersStored == 4, "and its last, at close, though not due")
        #expect(h.disk.checkpointStatistics.written == checkpoints + 1)
    }

    /// A close (or an idle restart's) at a seq already checkpointed writes
    /// no checkpoint again: the rewrite deleted the stored one first, and a
    /// crash then left only the one before. The key filter still goes with
    /// the last one, unless it is stored at that seq already.
    @Test func aCloseAtACheckpointedSeqRewritesNoCheckpoint() async throws {
        let h = try Harness(configuration: Fixtures.configuration(checkpointEvery: 1_000))
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        for index in 0..<5 { _ = try await h.debit(Fixtures.command(account: "acct", key: "k-\(index)", micros: 5)) }
        try await h.ledger.checkpoint()
        let (checkpoints, filters) = (h.disk.checkpointStatistics.written, h.disk.keyFiltersStored)
        let configuration = Fixtures.configuration(checkpointEvery: 1_000)
        await h.ledger.close()  // a clean close at the checkpointed seq
        #expect(h.disk.checkpointStatistics.written == checkpoints)
        #expect(h.disk.keyFiltersStored == filters)  // the checkpoint() stored one at this seq already
        let idle = try Ledger.open(on: h.store.restart(), clock: h.clock, configuration: configuration)
        await idle.close()  // an idle restart: nothing new
        #expect(h.disk.checkpointStatistics.written == checkpoints)
        let busy = try Ledger.open(on: h.store.restart(), clock: h.clock, configuration: configuration)
        _ = try await busy.frontEndDebit(Fixtures.command(account: "acct", key: "k-new", micros: 5))
        await busy.close()
        #expect(h.disk.checkpointStatistics.written == checkpoints + 1)
    }

    /// The key filter is written after the checkpoint it rides with (~16
    /// one-MiB transactions at full size): meanwhile the checkpoint already
    /// counts as written for the journal's pacing (the lag falls), while
    /// `checkpoint()` returns only once the filter is stored too.
    @Test func aFilterBeingStoredHoldsBackNeitherPacingNorACheckpointsWaiters() async throws {
        let h = try Harness(configuration: Fixtures.configuration(checkpointEvery: 1_000))
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        for index in 0..<20 { _ = try await h.debit(Fixtures.command(account: "acct", key: "k-\(index)", micros: 5)) }
        #expect(h.ledger.checkpointLag.entries > 20)
        let entered = Mutex(false)
        let release = DispatchSemaphore(value: 0)
        h.disk.keyFilterGate.withLock { gate in
            gate = {
                entered.withLock { $0 = true }
                release.wait()
            }
        }
        let returned = Mutex(false)
        let checkpointed = Task { () async throws -> Int in
            try await h.ledger.checkpoint()
            returned.withLock { $0 = true }
            return h.disk.keyFiltersStored
        }
        #expect(await eventually { entered.withLock { $0 } }, "the process's first checkpoint stores the filter")
        #expect(h.ledger.checkpointLag.entries == 0, "the checkpoint counts as written while its filter is being stored")
        // A checkpoint asked for now, at the same seq, waits too: the mark
        // it waits on moves only after the filter write (the checkpoint's
        // own `indexedSeq` already covers it).
        let secondReturned = Mutex(false)
        let second = Task {
            try await h.ledger.checkpoint()
            secondReturned.withLock { $0 = true }
        }
        // Both are resolved by the thread held in the filter write, so neither
        // can have returned: both are registered and waiting (a waiter
        // resolved at registration would never be counted).
        #expect(await eventually { h.ledger.committer.checkpointWaiterCount == 2 }, "both checkpoint() calls wait")
        #expect(!returned.withLock { $0 }, "checkpoint() is still waiting for the filter")
        #expect(!secondReturned.withLock { $0 }, "so is one asked for while the filter is written")
        #expect(h.disk.keyFiltersStored == 0)
        h.disk.keyFilterGate.withLock { $0 = nil }
        release.signal()
        #expect(try await checkpointed.value == 1, "checkpoint() returned only once the filter was stored")
        try await second.value
        await h.ledger.close()
    }

    /// `billing verify` compares the stored indexes with the journal: a
    /// missing key row, a missing run row and a row pointing elsewhere are
    /// each reported.
    @Test func verifyFindsIndexRowsMissingOrWrong() async throws {
        let h = try Harness(configuration: Fixtures.configuration(checkpointEvery: 1_000))
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        for index in 0..<20 {
            _ = try await h.debit(Fixtures.command(account: "acct", key: "k-\(index)", micros: 5, run: "run-\(index % 3)"))
        }
        try await h.ledger.checkpoint()
        await h.ledger.close()
        #expect(try LedgerAudit.run(on: h.store, plans: Fixtures.plans).problems == [])
        let victim = try #require(h.debitEntries(key: "k-7").first)

        h.disk.dropIndexRow(seq: victim.seq, runs: false)
        var problems = try LedgerAudit.run(on: h.store, plans: Fixtures.plans).problems
        #expect(problems.contains { $0.contains("key k-7: the index finds nothing") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("the key index holds 19 rows; the journal has 20 debits") }, "\(problems)")
        h.disk.addIndexRow(.init(hash: JournalKeyHash.debit(account: "acct", key: "k-7"), seq: victim.seq), runs: false)
        #expect(try LedgerAudit.run(on: h.store, plans: Fixtures.plans).problems == [])

        h.disk.dropIndexRow(seq: victim.seq, runs: true)
        problems = try LedgerAudit.run(on: h.store, plans: Fixtures.plans).problems
        #expect(problems.contains { $0.hasPrefix("the run index holds 19 rows") }, "\(problems)")
        #expect(problems.contains { $0.contains("run run-1: run cost") }, "\(problems)")
        // Same count, other contents: the row names another run.
        h.disk.addIndexRow(.init(hash: JournalKeyHash.run(account: "acct", run: "elsewhere"), seq: victim.seq), runs: true)
        problems = try LedgerAudit.run(on: h.store, plans: Fixtures.plans).problems
        #expect(problems.contains { $0 == "the run index holds 20 rows; the journal has 20 accepted debits up to seq \(victim.seq + 12), with other contents" }, "\(problems)")
    }

    /// `billing verify` checks the stored key filter holds every debit key
    /// journaled up to its seq (one that lacked keys would let a retry of an
    /// old key be charged again after a restart).
    @Test func verifyFindsKeysMissingFromTheStoredFilter() async throws {
        let h = try Harness(configuration: Fixtures.configuration(checkpointEvery: 1_000))
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        for index in 0..<20 {
            _ = try await h.debit(Fixtures.command(account: "acct", key: "k-\(index)", micros: 5))
        }
        await h.ledger.close()  // the last checkpoint stores the filter
        let stored = try #require(try h.store.latestKeyFilter())
        #expect(try LedgerAudit.run(on: h.store, plans: Fixtures.plans).problems == [])

        h.disk.replaceKeyFilter(Data(count: stored.contents.count), seq: stored.seq)  // emptied
        let problems = try LedgerAudit.run(on: h.store, plans: Fixtures.plans).problems
        #expect(problems.contains { $0.contains("key k-0 (seq") && $0.hasSuffix("is missing from the key filter stored at seq \(stored.seq)") },
                "\(problems)")
        #expect(problems.contains("20 debit keys in all are missing from the stored key filter"), "\(problems)")

        h.disk.replaceKeyFilter(Data(count: 100), seq: stored.seq)
        #expect(try LedgerAudit.run(on: h.store, plans: Fixtures.plans).problems
            == ["the stored key filter (seq \(stored.seq)) has 100 bytes, not a filter's size"])
    }

    /// The stored filter is only a shortcut: when it cannot be read,
    /// start-up reads every key hash from the index, and `billing verify`
    /// reports it instead of stopping.
    @Test func anUnreadableStoredFilterMeansReadingTheWholeIndex() async throws {
        let h = try Harness(configuration: Fixtures.configuration(checkpointEvery: 1_000))
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        for index in 0..<30 {
            _ = try await h.debit(Fixtures.command(account: "acct", key: "k-\(index)", micros: 5))
        }
        try await h.ledger.checkpoint()
        h.disk.damageKeyFilter()
        let read = h.disk.keyHashesRead
        let restarted = try await h.restarted()
        #expect(h.disk.keyHashesRead - read == 30, "every indexed key")
        for index in 0..<30 {
            #expect(restarted.ledger.keyFilter.mightContain(JournalKeyHash.debit(account: "acct", key: "k-\(index)")))
        }
        let problems = try LedgerAudit.run(on: restarted.store, plans: Fixtures.plans).problems
        #expect(problems.contains { $0.hasPrefix("the stored key filter cannot be read") }, "\(problems)")
        await restarted.ledger.close()
    }

    static func debit(_ seq: Int64, key: String, run: String) -> Billing_Journal_V1_Entry {
        var accepted = Billing_Journal_V1_DebitAccepted()
        accepted.accountID = "acct"
        accepted.idempotencyKey = key
        accepted.runID = run
        var entry = Billing_Journal_V1_Entry()
        entry.seq = seq
        entry.event = .debitAccepted(accepted)
        return entry
    }
}
