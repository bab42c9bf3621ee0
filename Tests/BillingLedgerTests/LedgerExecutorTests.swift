@testable import BillingLedger
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

/// A thread that runs the ledger's jobs and, between them, plain closures:
/// what an event loop is to the ledger in `billing serve` (a socket
/// callback there runs outside any job, like `run`'s closures here).
final class ThreadLedgerExecutor: LedgerExecutor, @unchecked Sendable {
    private let work = Mutex<[@Sendable () -> Void]>([])
    private let ready = DispatchSemaphore(value: 0)
    private let owner = Mutex<pthread_t?>(nil)
    private let started = DispatchSemaphore(value: 0)

    init() {
        Thread { [self] in
            owner.withLock { $0 = pthread_self() }
            started.signal()
            while true {
                ready.wait()
                let next = work.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                next?()
            }
        }.start()
        started.wait()
    }

    /// Runs `body` on the executor's thread, outside any job.
    func run(_ body: @escaping @Sendable () -> Void) {
        work.withLock { $0.append(body) }
        ready.signal()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        run { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
    }

    var isCurrent: Bool {
        guard let thread = owner.withLock({ $0 }) else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    /// Work handed over through `execute` from other threads so far.
    let handOffs = Atomic<Int>(0)

    func execute(_ body: @escaping @Sendable () -> Void) {
        if !isCurrent { handOffs.wrappingAdd(1, ordering: .relaxed) }
        run(body)
    }
}

/// What `debitNow` in these tests answers when its completion runs off the executor.
struct AnsweredOffTheExecutor: Error {}

/// The ledger on an executor of the caller's choosing, entered
/// synchronously on that executor's thread (`whenOnExecutor`, `debitNow`).
@Suite struct LedgerExecutorTests {
    let executor = ThreadLedgerExecutor()
    let h: Harness

    init() throws {
        let store = InMemoryLedgerStore()
        let clock = ManualClock(year: 2026, month: 1, day: 31, hour: 9, minute: 30)
        let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: clock,
                                configuration: Fixtures.configuration(maxBatch: 1_024), logger: Fixtures.logger, executor: executor)
        h = Harness(store: store, clock: clock, ledger: ledger)
    }

    /// `body`, run on the executor's thread outside a job; its value.
    func onExecutor<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            executor.run { continuation.resume(returning: body()) }
        }
    }

    /// Debits `command` through `debitNow` on the executor's thread; the
    /// answer lands in the returned box. Also says whether it was answered
    /// before `debitNow` returned.
    func debitNow(_ command: DebitCommand) async throws -> (Answer<DebitOutcome>, answeredAtOnce: Bool) {
        let answer = Answer<DebitOutcome>()
        let prior = try h.ledger.priorLookup(command)
        let ledger = h.ledger
        let executor = self.executor
        let atOnce = await onExecutor {
            let entered: Void? = ledger.whenOnExecutor {
                $0.debitNow(command, prior: prior) { result in
                    // Answers come on the executor's thread, never the journal's.
                    answer.set(executor.isCurrent ? result : .failure(AnsweredOffTheExecutor()))
                }
            }
            precondition(entered != nil, "whenOnExecutor did not enter on its executor's thread")
            return answer.result != nil
        }
        return (answer, atOnce)
    }

    @Test func whenOnExecutorEntersOnlyOnTheExecutorsThread() async throws {
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        // Here (a test task, not the executor's thread): not entered.
        #expect(h.ledger.whenOnExecutor { $0.account("acct")?.balance } == nil)
        let ledger = h.ledger
        let there = await onExecutor { ledger.whenOnExecutor { $0.account("acct")?.balance } }
        #expect(there == .some(.some(1_000)))
        // Awaited from elsewhere, the actor's jobs run on that thread too.
        #expect(await ledger.account("acct")?.balance == 1_000)
        await ledger.close()
    }

    @Test func aLedgerOnItsOwnQueueIsNeverEnteredSynchronouslyFromOutside() async throws {
        let other = try Harness()
        #expect(other.ledger.whenOnExecutor { $0.lastSeq } == nil)
        #expect(other.ledger.executor is QueueLedgerExecutor)
        await other.ledger.close()
    }

    /// Debits entered one call at a time during one turn of the executor
    /// (an event loop's sockets) reach the journal in one commit: the
    /// journal is woken after the turn, not by the turn's first entry.
    @Test(.timeLimit(.minutes(1))) func aTurnsDebitsShareOneCommit() async throws {
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        for round in 0..<5 {
            try await h.journalSleeps()
            let calls = h.disk.appendCallCount
            let handOffs = executor.handOffs.load(ordering: .relaxed)
            let commands = try (0..<200).map { try Fixtures.command(account: "acct", key: "t-\(round)-\($0)", micros: 5) }
            let priors = try commands.map { try h.ledger.priorLookup($0) }
            let answers = commands.map { _ in Answer<DebitOutcome>() }
            let ledger = h.ledger
            await onExecutor {
                for index in commands.indices {
                    _ = ledger.whenOnExecutor { $0.debitNow(commands[index], prior: priors[index]) { answers[index].set($0) } }
                }
            }
            #expect(await eventually { answers.allSatisfy { $0.result != nil } })
            #expect(answers.allSatisfy { if case .success(.accepted)? = $0.result { true } else { false } })
            #expect(h.disk.appendCallCount == calls + 1, "round \(round): the turn took \(h.disk.appendCallCount - calls) commits")
            // The commit's 200 answers came back to the executor in one hop.
            #expect(executor.handOffs.load(ordering: .relaxed) == handOffs + 1)
        }
        await h.ledger.close()
    }

    /// The answer waits for the commit: nothing while the store holds it.
    @Test(.timeLimit(.minutes(1))) func debitNowAnswersOnceTheCommitIsDurable() async throws {
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let entered = AsyncLatch()
        let release = DispatchSemaphore(value: 0)
        h.disk.script(.block(entered: entered, release: release, thenFail: false))
        let (answer, atOnce) = try await debitNow(Fixtures.command(account: "acct", key: "k1", micros: 100))
        #expect(!atOnce)
        await entered.wait()
        #expect(answer.result == nil)
        release.signal()
        #expect(await eventually { answer.result != nil })
        guard case .success(.accepted(let entry))? = answer.result else {
            Issue.record("expected an accepted debit, got \(String(describing: answer.result))")
            return
        }
        #expect(h.debitEntries(key: "k1").map(\.seq) == [entry.seq])
        #expect(await h.balance("acct") == 900)
        await h.ledger.close()
    }

    /// The commit fails: the caller hears UNAVAILABLE and nothing is charged.
    @Test(.timeLimit(.minutes(1))) func debitNowWhoseCommitFailsAnswersUnavailable() async throws {
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let entered = AsyncLatch()
        let release = DispatchSemaphore(value: 0)
        h.disk.script(.block(entered: entered, release: release, thenFail: true))
        let (answer, _) = try await debitNow(Fixtures.command(account: "acct", key: "lost", micros: 100))
        await entered.wait()
        release.signal()
        #expect(await eventually { answer.result != nil })
        guard case .failure(let error as LedgerError)? = answer.result, error.isUnavailable else {
            Issue.record("expected UNAVAILABLE, got \(String(describing: answer.result))")
            return
        }
        #expect(h.debitEntries(key: "lost").isEmpty)
        #expect(await eventually { await h.balance("acct") == 1_000 })
        await h.ledger.close()
    }

    /// A retry of a durable debit is answered before `debitNow` returns,
    /// with the original entry.
    @Test(.timeLimit(.minutes(1))) func aRetryOfADurableDebitIsAnsweredAtOnce() async throws {
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let command = try Fixtures.command(account: "acct", key: "k1", micros: 100)
        let first = try await h.debit(command)
        let (answer, atOnce) = try await debitNow(command)
        #expect(atOnce)
        guard case .success(.accepted(let entry))? = answer.result else {
            Issue.record("expected the original acceptance, got \(String(describing: answer.result))")
            return
        }
        #expect(entry.seq == first.entry?.seq)
        #expect(await h.balance("acct") == 900)
        await h.ledger.close()
    }
}
