import BillingCore
@testable import BillingLedger
import BillingProto
import Synchronization
import Dispatch
import Testing

/// One ledger on an in-memory store with a manual clock, for focused tests.
struct Harness: Sendable {
    let store: InMemoryLedgerStore
    let clock: ManualClock
    let ledger: Ledger

    var disk: SimulatedDisk { store.disk }

    /// Starts on 2026-01-31 09:30 UTC: the next period of an account opened
    /// then starts on 2026-02-28 (the anchor's day does not exist in February).
    init(plans: PlanCatalog = Fixtures.plans, configuration: LedgerConfiguration = Fixtures.configuration()) throws {
        store = InMemoryLedgerStore()
        clock = ManualClock(year: 2026, month: 1, day: 31, hour: 9, minute: 30)
        ledger = try Ledger.open(on: store, clock: clock, plans: plans, configuration: configuration)
    }

    init(store: InMemoryLedgerStore, clock: ManualClock, ledger: Ledger) {
        self.store = store
        self.clock = clock
        self.ledger = ledger
    }

    /// Crashes (the old ledger's journal thread is stopped, its writes refused)
    /// and opens a new ledger on the same disk.
    func restarted(configuration: LedgerConfiguration = Fixtures.configuration()) async throws -> Harness {
        let store = store.restart()
        await ledger.close()
        return Harness(store: store, clock: clock, ledger: try Ledger.open(on: store, clock: clock, configuration: configuration))
    }

    /// Holds the next commit on the disk: `entered` opens once it is under
    /// way (its entries applied in memory), and it goes on — failing if
    /// `thenFail` — when `release` is signalled.
    func holdNextCommit(thenFail: Bool) -> (entered: AsyncLatch, release: DispatchSemaphore) {
        let entered = AsyncLatch()
        let release = DispatchSemaphore(value: 0)
        disk.script(.block(entered: entered, release: release, thenFail: thenFail))
        return (entered, release)
    }

    func openAccount(_ id: String, plan: String, credits: Int64 = 0) async throws {
        _ = try await ledger.createAccount(id: id, plan: plan, actor: "test")
        if credits > 0 {
            _ = try await ledger.grantCredits(accountID: id, amountMicros: credits, kind: "promotional", note: "", actor: "test")
        }
    }

    func debit(_ command: DebitCommand) async throws -> DebitOutcome {
        try await ledger.frontEndDebit(command)
    }

    func balance(_ id: String) async -> Int64? { await ledger.account(id)?.balance }

    /// Returns once the journal thread sleeps (it does once its queue is empty).
    func journalSleeps() async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !ledger.journalIsSleeping {
            try #require(ContinuousClock.now < deadline, "the journal thread never slept")
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    func journal() -> [Entry] { disk.journal() }

    /// The books a replay of the whole journal computes (`Fixtures.plans`).
    func replayedJournal() throws -> LedgerState {
        var replayed = LedgerState(plans: Fixtures.plans)
        for entry in journal() { try replayed.apply(entry) }
        return replayed
    }

    /// Closes the ledger and checks that the journal replays to the books it
    /// had: every decision is journaled, and replay computes the same books.
    func expectJournalReplaysToLiveBooks(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let live = await ledger.snapshot
        await ledger.close()
        #expect(try replayedJournal() == live, sourceLocation: sourceLocation)
    }

    /// Debit entries (accepted or refused) recorded under `key`.
    func debitEntries(key: String) -> [Entry] {
        journal().filter { SimulatedDisk.debitKey($0)?.key == key }
    }
}

/// Polls `condition`, yielding between tries, for what another thread or
/// task does next (a reload after a journal failure).
///
/// `atLeast`: a wall-clock bound as well — it gives up only once both are
/// spent. The ledger runs on a dispatch queue of its own, so under a busy
/// test run a number of yields can pass before its work is scheduled: the
/// default waits 10 s (only a failing condition waits that long).
func eventually(tries: Int = 200_000, atLeast: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + atLeast
    var tried = 0
    while true {
        if try await condition() { return true }
        tried += 1
        if tried >= tries {
            guard ContinuousClock.now < deadline else { return false }
            do { try await Task.sleep(for: .milliseconds(1)) } catch { return false }  // cancelled: give up
        } else {
            await Task.yield()
        }
    }
}

/// The outcome of a call started in a task, readable without awaiting it.
final class Answer<T: Sendable>: Sendable {
    private let value = Mutex<Result<T, any Error>?>(nil)

    func set(_ result: Result<T, any Error>) { value.withLock { $0 = result } }

    /// Sets what `body` returns or throws.
    func settle(_ body: () async throws -> T) async {
        do { set(.success(try await body())) } catch { set(.failure(error)) }
    }

    var result: Result<T, any Error>? { value.withLock { $0 } }
}

extension LedgerError {
    var isUnavailable: Bool {
        if case .unavailable = self { true } else { false }
    }
}
