@testable import BillingLedger
import BillingCore
import Synchronization
import Testing

/// An account whose due work fails on its own (its entry refused by the
/// books: only a bug or damaged data does that) holds up no other account:
/// the others' periods and trials go on at every tick, clock move and
/// start-up, and the failing one stays due and is tried again.
@Suite struct TransitionFailureTests {
    static let day: Int64 = 86_400

    /// Fails the due work of `ids` as the books would refuse an entry.
    static func refusing(_ ids: Set<String>) -> @Sendable (String) -> (any Error)? {
        { ids.contains($0) ? LedgerError.internalFault("cannot apply: the books refuse it") : nil }
    }

    /// Pro accounts "a", "b", "c" (ids in the order their ties are taken) on a good card.
    static func threeProAccounts(on ledger: Ledger) async throws {
        for id in ["a", "b", "c"] {
            _ = try await ledger.createAccount(id: id, plan: .pro, actor: "test")
            _ = try await ledger.setPaymentMethod(accountID: id, method: LifecycleLedgerTests.good, actor: "test")
        }
    }

    static func closed(_ transitions: [ClockTransition]) -> [String] {
        transitions.filter { $0.kind == "PERIOD_CLOSED" }.map(\.accountID).sorted()
    }

    @Test func theTickGoesOnPastAnAccountWhoseTransitionFails() async throws {
        let h = try LifecycleEdgeTests.ledger(gateway: TestPaymentGateway())
        try await Self.threeProAccounts(on: h.ledger)
        h.clock.advance(seconds: 32 * Self.day)
        await h.ledger.injectTransitionFault(Self.refusing(["a"]))  // due first: ties by id
        let made = try await h.ledger.tick()
        #expect(Self.closed(made) == ["b", "c"])
        #expect(made.filter { $0.kind == "PAYMENT_SUCCEEDED" }.count == 2, "\(made.map(\.kind))")
        #expect(await h.ledger.failingTransitions.keys.sorted() == ["a"])
        #expect(h.ledger.accountsFailingTransitions.load(ordering: .relaxed) == 1)
        let now = h.clock.nowMicros() / 1_000_000
        var state = await h.ledger.snapshot
        #expect(state.accounts["a"]?.lifecycle.nextDueTransition(now: now) != nil)
        #expect(state.accounts["b"]?.lifecycle.nextDueTransition(now: now) == nil)
        // Tried again at the next tick, still failing: nothing else happens.
        #expect(try await h.ledger.tick().isEmpty)
        // Once it goes through, it is caught up and no longer counted.
        await h.ledger.injectTransitionFault(nil)
        #expect(Self.closed(try await h.ledger.tick()) == ["a"])
        #expect(await h.ledger.failingTransitions.isEmpty)
        #expect(h.ledger.accountsFailingTransitions.load(ordering: .relaxed) == 0)
        state = await h.ledger.snapshot
        #expect(state.accounts.values.allSatisfy { $0.lifecycle.nextDueTransition(now: now) == nil })
        #expect(state.scheduleIsCurrent)
        await h.ledger.close()
    }

    /// The ledger's own failures (the journal, a full queue) are not an
    /// account's: they stop the sweep, which the next tick starts again.
    @Test func aFailureOfTheLedgerStopsTheSweep() async throws {
        let h = try LifecycleEdgeTests.ledger(gateway: TestPaymentGateway())
        try await Self.threeProAccounts(on: h.ledger)
        h.clock.advance(seconds: 32 * Self.day)
        await h.ledger.injectTransitionFault { $0 == "a" ? LedgerError.overloaded(pending: 1) : nil }
        await #expect(throws: LedgerError.overloaded(pending: 1)) { try await h.ledger.tick() }
        #expect(await h.ledger.failingTransitions.isEmpty)
        await h.ledger.injectTransitionFault(nil)
        #expect(Self.closed(try await h.ledger.tick()) == ["a", "b", "c"])
        await h.ledger.close()
    }

    @Test func aStartUpCatchesUpTheOtherAccounts() async throws {
        let h = try LifecycleEdgeTests.ledger(gateway: TestPaymentGateway())
        try await Self.threeProAccounts(on: h.ledger)
        let store = h.store.restart()
        await h.ledger.close()
        h.clock.advance(seconds: 32 * Self.day)
        let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: h.clock, configuration: Fixtures.configuration(),
                                logger: Fixtures.logger, gateway: TestPaymentGateway())
        await ledger.injectTransitionFault(Self.refusing(["b"]))
        // (It used to throw: one such account and the server could not start.)
        let (count, first, _) = try await ledger.start(plans: Fixtures.plans, actor: "serve")
        #expect(Self.closed(first) == ["a", "c"])
        #expect(first.filter { $0.kind == "TRANSITION_FAILED" }.map(\.accountID) == ["b"])
        #expect(count == first.count - 1)  // a failure is reported, not counted as made
        #expect(await ledger.failingTransitions.keys.sorted() == ["b"])
        await ledger.close()
    }

    @Test func aTestClockMovePassesOverTheFailingAccount() async throws {
        let (_, clock, ledger) = try DurabilityTests.onATestClock()
        let start = DurabilityTests.clockStart
        try await Self.threeProAccounts(on: ledger)
        await ledger.injectTransitionFault(Self.refusing(["c"]))
        let moved = try await ledger.advanceClock(to: start + 40 * Self.day, actor: "t")
        #expect(moved.now == start + 40 * Self.day)
        #expect(clock.nowMicros() == (start + 40 * Self.day) * 1_000_000)
        #expect(Self.closed(moved.transitions) == ["a", "b"])
        #expect(moved.transitions.filter { $0.kind == "TRANSITION_FAILED" }.map(\.accountID) == ["c"])
        // Still due: the next move tries it again, at its own instant.
        await ledger.injectTransitionFault(nil)
        let next = try await ledger.advanceClock(to: start + 41 * Self.day, actor: "t")
        #expect(Self.closed(next.transitions) == ["c"])
        #expect(await ledger.failingTransitions.isEmpty)
        await ledger.close()
    }
}
