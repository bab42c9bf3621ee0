public import BillingCore
import Synchronization
public import BillingProto

/// A refused account or payment request: nothing was recorded. The service
/// maps it to FAILED_PRECONDITION (or the code given) with `reason`.
public struct AccountRequestRefused: Error, Sendable, Equatable {
    public var code: StatusCode
    public var reason: String
    public var message: String
    /// The request field at fault, when one is (ErrorInfo `field`).
    public var field: String?

    public init(_ code: StatusCode = .failedPrecondition, reason: String, message: String, field: String? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.field = field
    }

    init(_ refusal: AccountRefusal) {
        self.init(refusal.code, reason: refusal.reason, message: refusal.message)
    }
}

/// A payment the gateway declined; the failed charge is recorded.
public struct PaymentDeclined: Error, Sendable {
    public var charge: Billing_V1_Charge
    /// The request's idempotency key ("" without one): what a retry can do.
    public var idempotencyKey: String
}

/// One due transition or payment processed while time moved on.
public struct ClockTransition: Sendable, Equatable {
    public var at: Int64
    public var accountID: String
    public var kind: String
    public var description: String
}

/// Outcome of a plan change.
public struct PlanChangeResult: Sendable {
    public var effect: Billing_V1_PlanChangeEffect
    public var invoice: Billing_V1_Invoice?
    public var charge: Billing_V1_Charge?
}

/// Outcome of a credit purchase.
public struct PurchaseResult: Sendable {
    public var charge: Billing_V1_Charge
    public var invoice: Billing_V1_Invoice
    public var balance: Int64
}

// MARK: Serializing lifecycle work

extension Ledger {
    /// Takes the lifecycle turn, waiting for it in order. A caller whose
    /// task is cancelled first — its call passed its deadline and was
    /// answered DEADLINE_EXCEEDED — gets `CancellationError` holding
    /// nothing, and does nothing: it used to wait on, then charge a card or
    /// change a plan the caller had been told nothing about (a buyer trying
    /// again under a new key paid twice), holding its connection's handler
    /// slot all the while (session 27).
    func acquireLifecycle() async throws {
        try Task.checkCancellation()
        if !lifecycleBusy {
            lifecycleBusy = true
            return
        }
        let id = nextLifecycleWaiterID
        nextLifecycleWaiterID += 1
        // Ownership is handed over by `releaseLifecycle`.
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { lifecycleWaiters.append((id, $0)) }
        } onCancel: {
            Task { await self.cancelLifecycleWaiter(id) }
        }
        // Handed the turn as the task was cancelled: given on at once.
        if Task.isCancelled {
            releaseLifecycle()
            throw CancellationError()
        }
    }

    /// A waiter whose task was cancelled leaves the queue (one already
    /// handed the turn gives it on itself, `acquireLifecycle`).
    func cancelLifecycleWaiter(_ id: UInt64) {
        guard let index = lifecycleWaiters.firstIndex(where: { $0.id == id }) else { return }
        lifecycleWaiters.remove(at: index).continuation.resume(throwing: CancellationError())
    }

    /// `body` in the lifecycle's turn (taken, then given up however it ends).
    func inLifecycleTurn<T>(_ body: () async throws -> T) async throws -> T {
        try await acquireLifecycle()
        defer { releaseLifecycle() }
        return try await body()
    }

    func releaseLifecycle() {
        if lifecycleWaiters.isEmpty {
            lifecycleBusy = false
        } else {
            lifecycleWaiters.removeFirst().continuation.resume()
        }
    }

    /// Lifecycle time: the clock, but never before a transition already
    /// applied (a clock set back across a restart cannot replay the past).
    var nowUnix: Int64 { max(clock.nowMicros() / 1_000_000, state.testClockUnix) }

    /// The gateway's idempotency key for a credit purchase: the account id's
    /// length first, so no two (account, key) pairs share one ("acme-eu" +
    /// "1" and "acme" + "eu-1" both read "purchase-acme-eu-1" without it,
    /// and the gateway would answer the second with the first's charge);
    /// the amount last, so a retry of a key whose first charge was never
    /// journaled (a crash in between) with another amount is a charge of
    /// its own, never the first one's outcome credited at another amount.
    static func purchaseGatewayKey(account: String, key: String, amountMicros: Int64) -> String {
        "purchase:\(account.utf8.count):\(account):\(key):\(amountMicros)"
    }

    /// The gateway's idempotency key for an attempt to pay an invoice: the
    /// account (its length first, as above) and the amount in it, not only
    /// the invoice id and attempt — invoice ids are a journal-wide sequence,
    /// which a database restored from a backup, or one that lost its
    /// unsynced tail (`--synchronous normal`), or a second instance on the
    /// same gateway account would issue again, and the gateway would answer
    /// another account's invoice with the first one's outcome. (Keys of
    /// attempts started before session 20 keep their journaled form.)
    static func paymentGatewayKey(account: String, invoiceID: String, attempt: Int64, amountMicros: Int64) -> String {
        "invoice:\(account.utf8.count):\(account):\(invoiceID):\(attempt):\(amountMicros)"
    }

    func book(_ id: String) throws -> AccountBook {
        try requireServing()
        guard let book = state.accounts[id] else { throw LedgerError.accountNotFound(id) }
        return book
    }

    func lifecycleEvent(_ accountID: String, at: Int64, actor: String, key: String = "",
                        _ event: Billing_Journal_V1_LifecycleEvent.OneOf_Event) -> Billing_Journal_V1_Entry.OneOf_Event {
        var lifecycle = Billing_Journal_V1_LifecycleEvent()
        lifecycle.accountID = accountID
        lifecycle.atUnix = at
        lifecycle.actor = actor
        lifecycle.idempotencyKey = key
        lifecycle.event = event
        // This build's rules: a contract moving an account to Enterprise
        // mid-period is prorated (`AccountEvent.enterpriseContractSet`).
        if case .enterpriseContract = event { lifecycle.contractProrated = true }
        // And invoices in cents (`LedgerState.issueInvoice`), with the
        // closed period's contract reference on its usage's invoice.
        lifecycle.invoiceLinesInCents = true
        lifecycle.referenceClosedContract = true
        return .lifecycle(lifecycle)
    }
}

// MARK: Time: due transitions and owed payments

extension Ledger {
    /// Start-up: the transitions that fell due while the server was down
    /// (and payments a crash interrupted), under the plan terms of their
    /// time, then the plan terms the server starts with journaled if they
    /// differ (the other order billed a period that ended during the
    /// downtime, or a trial that ended then, at the new terms).
    /// `graceSeconds`: the grace after a failed payment for every account
    /// (journaled with the terms when it differs from the last journaled).
    /// A downtime that owes more transitions than one call takes
    /// (`stepsPerTurn`) is caught up in several turns, each committing its
    /// own: a server is never stopped by the catch-up's bound. Returns how
    /// many transitions were made and the first `keptTransitions` of them
    /// (all of them would hold millions in memory after a long downtime).
    public func start(plans: PlanCatalog, graceSeconds: Int64? = nil, actor: String,
                      stepsPerTurn: Int = Ledger.maxTransitionsPerCall)
        async throws -> (caughtUp: Int, first: [ClockTransition], plansChanged: Bool) {
        precondition(stepsPerTurn > 0, "a turn makes at least one transition")
        // In time order across accounts (nothing else runs yet).
        var (count, first) = (0, [ClockTransition]())
        // Accounts whose due work failed are passed over in every later turn
        // too (they would take a step each turn, and never let it finish).
        var failed: Set<String> = []
        while true {
            let keep = Self.keptTransitions - first.count
            let steps = try await inLifecycleTurn {
                try await processDueSteps(upTo: nowUnix, only: nil, maxSteps: stepsPerTurn, keeping: keep, skipping: failed)
            }
            count += steps.count
            first += steps.transitions
            failed = steps.failed
            if steps.finished { break }
        }
        return (count, first, try await configurePlans(plans, graceSeconds: graceSeconds, actor: actor))
    }

    /// Processes every transition due by now and every payment attempt owed
    /// (also those a crash interrupted). The server calls it every second
    /// (start-up runs one time-ordered sweep itself, `start`), so each
    /// period end is processed exactly once (the journal records each).
    ///
    /// One account at a time, the lifecycle turn given up between accounts:
    /// a request waiting for it (a plan change, a purchase) runs between two
    /// accounts' closes and their gateway charges, not after the whole sweep
    /// (thousands of accounts created together close together, each charged
    /// at the gateway). An account is taken once per tick, so the sweep
    /// ends: work a request between two turns leaves for an account already
    /// taken (an owed payment whose attempt could not be journaled) waits
    /// for the next tick, and the others are still reached.
    @discardableResult
    public func tick() async throws -> [ClockTransition] {
        let now = nowUnix
        var transitions: [ClockTransition] = []
        var taken: Set<String> = []
        while let id = nextAccountWithWorkDue(upTo: now, skipping: taken) {
            taken.insert(id)
            do {
                transitions += try await inLifecycleTurn { try await processDue(upTo: now, only: id) }
            } catch where isAccountFault(error) {
                // That account's alone: the others' periods and trials go on.
                transitionFailed(id, error)
            }
        }
        return transitions
    }

    /// An account not in `skipping` that `processDue` has work for by
    /// `limit`: the oldest charge left pending, else an invoice owed a
    /// payment attempt, else the account of the earliest transition due
    /// (ties by id, as `earliestDue`; an account's turn leaves nothing due by
    /// `limit` unless it failed, and a failed one is passed over).
    func nextAccountWithWorkDue(upTo limit: Int64, skipping: Set<String> = []) -> String? {
        let pending = state.pendingCharges.values.filter { !skipping.contains($0.started.accountID) }
        if let oldest = pending.min(by: { $0.seq < $1.seq }) { return oldest.started.accountID }
        let owed = state.schedule.owedInvoices.compactMap { state.invoices[$0].map { ($0.invoice.sequence, $0.invoice.accountID) } }
            .filter { !skipping.contains($0.1) }
        if let first = owed.min(by: { $0.0 < $1.0 }) { return first.1 }
        return earliestDue(upTo: limit, only: nil, skipping: skipping)?.0
    }

    /// Whether `error`, from an account's due work, is that account's own
    /// (its entry could not be applied: `internalFault`, `invalid`, a
    /// refusal) rather than the ledger's — the journal failing, a reload
    /// pending, a full queue, cancellation —, which stops the whole sweep.
    func isAccountFault(_ error: any Error) -> Bool {
        guard isServing, !recovering, !closed, !(error is CancellationError) else { return false }
        if let refused = error as? AccountRequestRefused, refused.code == .resourceExhausted { return false }
        switch error as? LedgerError {
        case .overloaded?, .unavailable?, .storageUnavailable?: return false
        default: return true
        }
    }

    /// Notes that `id`'s due work failed (`isAccountFault`).
    func transitionFailed(_ id: String, _ error: any Error) {
        // Compared by what failed, not by the words (a gateway taken as down
        // says how many seconds are left: each tick would log again).
        let reason = error is GatewayUnavailable ? "the payment gateway gives no outcome" : "\(error)"
        guard failingTransitions.updateValue(reason, forKey: id) != reason else { return }
        accountsFailingTransitions.store(failingTransitions.count, ordering: .relaxed)
        logger.error("an account's due work (a transition, a payment) failed; it stays due and is tried again, the other accounts go on", metadata: [
            "account_id": "\(id)", "error": "\(reason)", "accounts_failing": "\(failingTransitions.count)"])
    }

    /// Notes that `id`'s due work went through (after failing, if it had).
    func transitionsApplied(_ id: String) {
        guard failingTransitions.removeValue(forKey: id) != nil else { return }
        accountsFailingTransitions.store(failingTransitions.count, ordering: .relaxed)
        logger.notice("an account's due transitions went through again", metadata: ["account_id": "\(id)"])
    }

    /// Moves the test clock forward to `target` (unix seconds), processing
    /// every due transition in time order at its own instant.
    public func advanceClock(to target: Int64, actor: String) async throws -> (previous: Int64, now: Int64, transitions: [ClockTransition]) {
        try await advanceClock(actor: actor) { _ in target }
    }

    /// Moves the test clock `seconds` forward from where it stands when
    /// this call's turn comes, to `latestUnix` at most (`INVALID_FIELD`).
    /// A target computed before the turn could already be passed by a
    /// concurrent advance: it was refused as backwards, or two advances of
    /// a day moved the clock one day (session 27).
    public func advanceClock(by seconds: Int64, latestUnix: Int64, actor: String)
        async throws -> (previous: Int64, now: Int64, transitions: [ClockTransition]) {
        try await advanceClock(actor: actor) { previous in
            let (target, overflow) = previous.addingReportingOverflow(seconds)
            guard !overflow, target <= latestUnix else {
                throw AccountRequestRefused(.invalidArgument, reason: "INVALID_FIELD",
                                            message: "the test clock goes no later than unix \(latestUnix) (now \(previous))")
            }
            return target
        }
    }

    private func advanceClock(actor: String, target: (_ previous: Int64) throws -> Int64)
        async throws -> (previous: Int64, now: Int64, transitions: [ClockTransition]) {
        guard testClock != nil else {
            throw AccountRequestRefused(reason: "TEST_CLOCK_DISABLED", message: "the server runs on the real clock; start it with --test-clock")
        }
        try requireServing()
        try await acquireLifecycle()
        defer { releaseLifecycle() }
        // Again in the turn: after a failed commit, before the reload, the
        // books may hold a clock move that was never journaled (a previous
        // advance's): UNAVAILABLE, not an answer from that time.
        try requireServing()
        let previous = nowUnix
        let target = try target(previous)
        guard target >= previous else {
            throw AccountRequestRefused(.invalidArgument, reason: "CLOCK_BACKWARDS",
                                        message: "the test clock only moves forward (now \(previous), asked \(target))")
        }
        let transitions = try await processDue(upTo: target, only: nil)
        if target > previous {
            var set = Billing_Journal_V1_ClockSet()
            set.nowUnix = target
            set.actor = actor
            // (Session 27: the clock moved after the commit, and an account
            // created while it committed was dated before the move.)
            try await commit(.clockSet(set), movingTestClockTo: target)
        }
        return (previous, target, transitions)
    }

    /// The earliest transition due by `limit`: (account, transition), ties
    /// broken by account id so the order is the same on every replay.
    /// `skipping`: accounts passed over (their due work failed in this sweep).
    func earliestDue(upTo limit: Int64, only: String?, skipping: Set<String> = []) -> (String, DueTransition)? {
        if let only {
            guard !skipping.contains(only), let due = state.accounts[only]?.lifecycle.nextDueTransition(now: limit) else { return nil }
            return (only, due)
        }
        while let (id, at) = state.schedule.earliest(upTo: limit, skipping: skipping) {
            if let due = state.accounts[id]?.lifecycle.nextDueTransition(now: limit), due.at == at { return (id, due) }
            // The schedule disagrees with the books (not expected): it is
            // corrected from them, which moves this entry, and asked again.
            state.reschedule(id)
        }
        return nil
    }

    /// Transitions one call (an AdvanceClock, a request's catch-up)
    /// applies at most: every loop is bounded.
    public static let maxTransitionsPerCall = 1_000_000
    /// Transitions of a start-up's catch-up kept to return (the rest counted).
    public static let keptTransitions = 10_000

    /// Applies due transitions up to `limit`, each at its due instant, and
    /// attempts the payments they owe (`charging`; a read passes false: it
    /// applies the transitions and leaves the payments to the ticker — a
    /// read never waits on the payment gateway, nor holds the lifecycle turn
    /// while it does). Holds the lifecycle lock. More than
    /// `maxTransitionsPerCall` due: those are committed, the rest wait for
    /// the next call (RESOURCE_EXHAUSTED, TOO_MANY_TRANSITIONS).
    func processDue(upTo limit: Int64, only: String?, charging: Bool = true) async throws -> [ClockTransition] {
        let steps = try await processDueSteps(upTo: limit, only: only, maxSteps: Self.maxTransitionsPerCall, charging: charging)
        guard steps.finished else {
            // The transitions so far are committed; the rest wait for the next advance.
            throw AccountRequestRefused(.resourceExhausted, reason: "TOO_MANY_TRANSITIONS",
                                        message: "more than a million transitions are due at once; advance the clock in smaller steps")
        }
        return steps.transitions
    }

    /// `processDue` for at most `maxSteps` transitions; `finished` false
    /// when more are due (those applied are committed).
    ///
    /// An account whose payments the gateway cannot take now (taken as
    /// down, nothing of the account's pending) has them deferred, reported
    /// as `PAYMENT_DEFERRED`: its transitions go on uncharged.
    ///
    /// Across accounts (`only` nil: an AdvanceClock, a start-up's catch-up)
    /// an account whose due work fails on its own (`isAccountFault`: its
    /// entry cannot be applied — only a bug or damaged data does that —, or
    /// the payment gateway gives no outcome) is logged, reported as a
    /// `TRANSITION_FAILED` transition and passed over for the rest of the
    /// sweep (`failed`, which a caller making several calls carries from one
    /// to the next: `skipping`), and the others' periods and trials go on
    /// (before, one such account stopped every later one's, and a start-up
    /// with one could not start). Its work stays due and is tried again by
    /// the next sweep. For one account (`only`), the error is the caller's.
    func processDueSteps(upTo limit: Int64, only: String?, maxSteps: Int, keeping kept: Int = .max, charging: Bool = true,
                         skipping: Set<String> = [])
        async throws -> (transitions: [ClockTransition], count: Int, finished: Bool, failed: Set<String>) {
        // The first `kept` transitions are returned, all are counted (a
        // start-up's catch-up keeps a few, not millions).
        var transitions: [ClockTransition] = []
        var count = 0
        func add(_ more: [ClockTransition]) {
            count += more.count
            transitions += more.prefix(max(0, kept - transitions.count))
        }
        var failed = skipping
        // Accounts whose payments wait (the gateway taken as down before any
        // charge of theirs started: nothing pending): their transitions go
        // on, uncharged, as a read's do — a catch-up during an outage closes
        // every period under the terms of its time, and the ticker charges
        // the invoices once the gateway answers.
        var deferred: Set<String> = []
        func fail(_ id: String, at: Int64, _ error: any Error) throws {
            if error is GatewayUnavailable, !hasPendingCharge(id) {
                deferred.insert(id)
                transitionFailed(id, error)
                if transitions.count < kept {
                    transitions.append(ClockTransition(at: at, accountID: id, kind: "PAYMENT_DEFERRED",
                                                       description: "the payment gateway gives no outcome now: this account's "
                                                           + "payments wait for it, its periods and trials go on"))
                }
                return
            }
            guard only == nil, isAccountFault(error) else { throw error }
            failed.insert(id)
            transitionFailed(id, error)
            if transitions.count < kept {  // (not counted: nothing was made)
                transitions.append(ClockTransition(at: at, accountID: id, kind: "TRANSITION_FAILED",
                                                   description: "this account's due transition or payment could not be applied "
                                                       + "(the server log says why); it stays due and is tried again"))
            }
        }
        if !charging {
            // A read: nothing that could change what a pending charge
            // records goes ahead of it, and nothing is charged.
            if let only, hasPendingCharge(only) { return ([], 0, true, failed) }
        } else if only != nil {
            add(try await settlePendingCharges(only: only))
        } else {
            // Account by account (the oldest pending charge first): one
            // whose gateway gives no outcome is passed over, not everyone.
            var accounts: [String] = []
            var seen: Set<String> = []
            for charge in state.pendingCharges.values.sorted(by: { $0.seq < $1.seq })
            where !failed.contains(charge.started.accountID) && seen.insert(charge.started.accountID).inserted {
                accounts.append(charge.started.accountID)
            }
            for id in accounts {
                do {
                    add(try await settlePendingCharges(only: id))
                    transitionsApplied(id)
                } catch {
                    try fail(id, at: nowUnix, error)
                }
            }
        }
        if charging {
            for (id, owed) in owedInvoicesByAccount(only: only) where !failed.contains(id) && !deferred.contains(id) {
                do {
                    try await attemptOwedPayments(owed, add)
                } catch {
                    try fail(id, at: nowUnix, error)
                }
            }
        }
        // Bounded: each step moves an account's next transition forward or
        // passes it over.
        for _ in 0..<maxSteps {
            guard let (id, due) = earliestDue(upTo: limit, only: only, skipping: failed) else {
                // Nothing left due: whatever of it failed before went through
                // (a read: if nothing is pending or owed either).
                if let only, charging, !deferred.contains(only) { transitionsApplied(only) }
                if let only, !charging { noteIfCaughtUp(only) }
                return (transitions, count, true, failed)
            }
            do {
                // What it made is reported even if its payment then fails:
                // the close is committed (a diff review: it was reported as
                // TRANSITION_FAILED, "stays due", and never again).
                let charges = charging && !deferred.contains(id)
                try await applyDue(due, of: id, charging: charges, add)
                if charges { transitionsApplied(id) }  // (a read's transitions say nothing of its payments)
            } catch {
                try fail(id, at: due.at, error)
            }
        }
        return (transitions, count, earliestDue(upTo: limit, only: only, skipping: failed) == nil, failed)
    }

    /// Applies `account`'s due transition `due` at its instant (`add`ing
    /// what it made as it is committed), then attempts the payments it owes
    /// (`charging`).
    private func applyDue(_ due: DueTransition, of id: String, charging: Bool, _ add: ([ClockTransition]) -> Void) async throws {
        if let fault = transitionFaultForTests?(id) { throw fault }
        let book = try book(id)
        let event: Billing_Journal_V1_LifecycleEvent.OneOf_Event
        let kind: String
        let description: String
        switch due {
        case .trialEnd:
            var ended = Billing_Journal_V1_TrialEnded()
            let lifecycle = book.lifecycle
            ended.continuedWithoutPaymentMethod = lifecycle.trialEndContinuesWithoutPaymentMethod(state.plans)
            event = .trialEnded(ended)
            kind = "TRIAL_ENDED"
            description = lifecycle.hasPaymentMethod || lifecycle.pendingChange != nil || ended.continuedWithoutPaymentMethod
                ? "the trial ended; the subscription starts" : "the trial ended without a payment method; new runs are paused"
        case .graceEnd:
            event = .graceExpired(Billing_Journal_V1_GraceExpired())
            kind = "GRACE_ENDED"
            description = "the grace period of a past-due invoice ended; new runs are paused"
        case .periodEnd(let period):
            var ended = Billing_Journal_V1_PeriodEnded()
            ended.periodStartUnix = period.start
            ended.periodEndUnix = period.end
            // Debits made after the period's end are billed with the next one.
            ended.overageMicros = book.overage - book.overageAfterPeriodEnd
            event = .periodEnded(ended)
            kind = "PERIOD_CLOSED"
            description = "period \(CivilDate(unixSeconds: period.start)) to \(CivilDate(unixSeconds: period.end)) closed"
        }
        let before = book.lifecycle
        try await commit(lifecycleEvent(id, at: due.at, actor: "system", event), movingTestClockTo: due.at)
        add([ClockTransition(at: due.at, accountID: id, kind: kind, description: description)])
        let after = try self.book(id).lifecycle
        if after.plan != before.plan {
            add([ClockTransition(at: due.at, accountID: id, kind: "PLAN_CHANGE_APPLIED",
                                 description: "now on \(after.plan.rawValue)")])
        }
        if before.hasPendingPaymentMethod, !after.hasPendingPaymentMethod {
            add([ClockTransition(at: due.at, accountID: id, kind: "PAYMENT_METHOD_APPLIED",
                                 description: "the replacement payment method is now the one on file")])
        }
        if charging { try await attemptOwedPayments(only: id, add) }
    }

    /// The invoices issued with a payment attempt owed (of `only`'s
    /// account, or all), by account: the accounts in the order of their
    /// oldest such invoice, each account's invoices oldest first.
    func owedInvoicesByAccount(only: String?) -> [(accountID: String, sequences: [Int64])] {
        var byAccount: [String: [Int64]] = [:]
        for sequence in state.schedule.owedInvoices.sorted() {
            guard let account = state.invoices[sequence]?.invoice.accountID, only == nil || account == only else { continue }
            byAccount[account, default: []].append(sequence)
        }
        return byAccount.map { ($0.key, $0.value) }.sorted { $0.sequences[0] < $1.sequences[0] }
    }

    /// Charges every invoice of `only`'s account (or every account's) that
    /// was issued with a payment attempt owed.
    func attemptOwedPayments(only: String?, _ add: ([ClockTransition]) -> Void) async throws {
        for (_, owed) in owedInvoicesByAccount(only: only) { try await attemptOwedPayments(owed, add) }
    }

    /// Charges the invoices `owed` (sequences), in this order, `add`ing
    /// each attempt as it is recorded (a later one that fails does not take
    /// the earlier ones out of an AdvanceClock's answer).
    func attemptOwedPayments(_ owed: [Int64], _ add: ([ClockTransition]) -> Void) async throws {
        for sequence in owed {
            let charge = try await attemptPayment(invoice: sequence)
            add([Self.paymentTransition(charge, number: state.invoices[sequence]?.invoice.number, at: nowUnix)])
        }
    }

    /// Charges what is due on invoice `sequence` and records the attempt.
    /// The gateway key names the attempt, which only a recorded attempt
    /// moves on: a retry after a failed journal write reuses it.
    func attemptPayment(invoice sequence: Int64, key: String = "", newMethod: Billing_Journal_V1_PaymentMethodSet? = nil,
                        requested: String = "", actor: String = "") async throws -> Billing_V1_Charge {
        guard let record = state.invoices[sequence] else { throw LedgerError.internalFault("no invoice \(sequence)") }
        let book = try book(record.invoice.accountID)
        let method = newMethod ?? book.paymentMethod
        var recorded = Billing_Journal_V1_ChargeRecorded()
        recorded.charge.chargeID = "ch_\(record.invoice.invoiceID.dropFirst(3))_\(record.attempts + 1)"
        recorded.charge.accountID = book.accountID
        recorded.charge.amountMicros = record.invoice.amountDueMicros
        recorded.charge.kind = .invoicePayment
        recorded.charge.invoiceID = record.invoice.invoiceID
        recorded.charge.description_p = "Invoice \(record.invoice.number)"
        recorded.charge.createdUnixSeconds = nowUnix
        recorded.invoiceSequence = sequence
        recorded.idempotencyKey = key
        recorded.requestedMethod = requested
        recorded.actor = actor
        recorded.invoiceLinesInCents = true  // (this build's rules: `LedgerState.issueInvoice`)
        if let newMethod { recorded.newMethod = newMethod }
        guard let method else {
            return try await recordPayment(recorded, .failed(reason: "PAYMENT_METHOD_REQUIRED", message: "no payment method on file"))
        }
        recorded.charge.paymentMethodID = method.method.paymentMethodID
        recorded.charge.paymentMethodLabel = Self.label(method.method)
        recorded.gatewayKey = Self.paymentGatewayKey(account: book.accountID, invoiceID: record.invoice.invoiceID,
                                                     attempt: Int64(record.attempts) + 1, amountMicros: recorded.charge.amountMicros)
        var started = Billing_Journal_V1_ChargeStarted()
        started.accountID = book.accountID
        started.gatewayKey = recorded.gatewayKey
        started.gatewayToken = method.gatewayToken
        started.invoicePayment = recorded
        return try await recordPayment(recorded, try await chargeGateway(started))
    }

    /// Journals an invoice payment attempt with the gateway's answer.
    func recordPayment(_ attempt: Billing_Journal_V1_ChargeRecorded, _ outcome: ChargeOutcome) async throws -> Billing_V1_Charge {
        var recorded = attempt
        recorded.charge.record(outcome)
        // A method given to pay the invoice goes on file only if it paid: a
        // declined card must not replace the one on file, nor a replacement
        // waiting for the next cycle. (The charge keeps its label, not the
        // new method's id: on file nowhere, an id no list shows — session
        // 30's invoices review; a purchase's charge already had none.)
        // A paused trial's reactivation declined takes its method off file too.
        if recorded.charge.status != .succeeded {
            if recorded.hasNewMethod || state.invoices[recorded.invoiceSequence]?.reactivates == true {
                recorded.charge.paymentMethodID = ""
            }
            recorded.clearNewMethod()
        }
        try await commit(.chargeRecorded(recorded))
        noteIfCaughtUp(recorded.charge.accountID)
        return recorded.charge
    }

    /// After a charge is recorded (by the ticker, or a request: a purchase,
    /// a payment, a grant settling a pending one): an account counted as
    /// failing that has nothing pending, owed or due any more is not — the
    /// ticker would not visit it again to say so.
    func noteIfCaughtUp(_ id: String) {
        guard failingTransitions[id] != nil, let book = state.accounts[id], book.lifecycle.nextDueTransition(now: nowUnix) == nil,
              !hasPendingCharge(id), !state.schedule.owedInvoices.contains(where: { state.invoices[$0]?.invoice.accountID == id })
        else { return }
        transitionsApplied(id)
    }

    /// Journals a credit purchase with the gateway's answer: with it, if
    /// the charge succeeded, the credits and a paid invoice.
    func recordPurchase(_ attempt: Billing_Journal_V1_CreditsPurchased, _ outcome: ChargeOutcome) async throws -> Billing_V1_Charge {
        var purchase = attempt
        purchase.charge.record(outcome)
        // No suspension between naming the invoice and appending: the
        // sequence cannot be taken by another invoice.
        if purchase.charge.status == .succeeded { purchase.charge.invoiceID = "in_\(state.nextInvoiceSequence)" }
        try await commit(.creditsPurchased(purchase))
        noteIfCaughtUp(purchase.accountID)
        return purchase.charge
    }

    /// Journals `started` and waits for its commit, then asks the gateway.
    /// Money moves only after the ledger durably knows it may: if the
    /// process stops or the record's commit fails after the gateway's
    /// answer, the charge stays pending and `settlePendingCharges` records it.
    func chargeGateway(_ started: Billing_Journal_V1_ChargeStarted) async throws -> ChargeOutcome {
        // Taken as down: nothing is started (no charge left pending for it).
        try requireGatewayUp(started.accountID)
        try await commit(.chargeStarted(started))
        return try await askGateway(started)
    }

    /// A late answer for `key` was kept: its hold is lifted, so the next
    /// sweep or retry takes it at once.
    func gatewayAnsweredLate(_ key: String) {
        gatewayKeyRetry[key] = nil
        // Its charge already recorded (by a later call under the key): nothing will take it.
        if state.pendingCharges[key] == nil { gatewayLateOutcomes.withLock { _ = $0.removeValue(forKey: key) } }
    }

    /// `GatewayUnavailable` while the gateway is taken as down (`gatewayDownUntil`).
    func requireGatewayUp(_ accountID: String) throws {
        guard let until = gatewayDownUntil, ContinuousClock.now < until else { return }
        let seconds = max(1, Int((until - ContinuousClock.now).components.seconds))
        throw GatewayUnavailable(accountID: accountID,
                                 message: "the payment gateway gave no answer lately; payments wait \(seconds) s more before it is asked again")
    }

    /// The gateway's answer to `started`'s charge, within
    /// `gatewayTimeoutSeconds`. No outcome: `GatewayUnavailable`, the charge
    /// left pending, asked again later — no answer in time takes the
    /// gateway as down for a while (`gatewayDownUntil`: nothing charged, no
    /// one asked meanwhile), an answer without an outcome (`.unknown`)
    /// holds that charge's key back (`gatewayKeyRetry`); a call that still
    /// runs is not repeated until it returns (`gatewayCallsInFlight`).
    /// (Session 29: a charge could only succeed or fail — an adapter whose
    /// network timed out had to say "failed", and the next attempt, under a
    /// new key, could charge a second time; or to wait, holding every
    /// account's lifecycle.)
    func askGateway(_ started: Billing_Journal_V1_ChargeStarted) async throws -> ChargeOutcome {
        let (gateway, seconds) = (self.gateway, configuration.gatewayTimeoutSeconds)
        let (token, amount, key) = (started.gatewayToken, Money(micros: started.amountMicros), started.gatewayKey)
        // An answer that came after its call was given up on: taken first,
        // whatever holds the gateway or the key back (it is in hand).
        if let late = gatewayLateOutcomes.withLock({ $0.removeValue(forKey: key) }) {
            gatewayKeyRetry[key] = nil
            return late
        }
        try requireGatewayUp(started.accountID)
        if let retry = gatewayKeyRetry[key], ContinuousClock.now < retry.at {
            throw GatewayUnavailable(accountID: started.accountID,
                                     message: "the payment gateway gave this charge no outcome; it is asked again shortly")
        }
        let now = ContinuousClock.now
        let lostAfter = Duration.seconds(seconds) * 10
        guard gatewayCallsInFlight.withLock({ calls in
            if let began = calls[key], now - began < lostAfter { return false }  // (after that: taken as lost)
            calls[key] = now
            return true
        }) else {
            throw GatewayUnavailable(accountID: started.accountID,
                                     message: "the payment gateway has not answered this charge yet; it is asked again once it has")
        }
        gatewayWaits += 1
        defer { gatewayWaits -= 1 }
        let (outcome, timedOut): (ChargeOutcome, Bool) = await withCheckedContinuation { continuation in
            let answered = Mutex(false)
            let resume: @Sendable (ChargeOutcome, Bool) -> Bool = { outcome, timedOut in
                guard answered.withLock({ done in defer { done = true }; return !done }) else { return false }
                continuation.resume(returning: (outcome, timedOut))
                return true
            }
            let timer = Task.detached {
                try? await Task.sleep(for: .seconds(seconds))
                guard !Task.isCancelled else { return }
                _ = resume(.unknown(message: "no answer within \(seconds) s"), true)
            }
            Task.detached { [self] in
                let outcome = await gateway.charge(token: token, amount: amount, idempotencyKey: key)
                let onTime = resume(outcome, false)
                if !onTime, outcome.isFinal {
                    // Late, after the ask gave up: kept for the next ask of
                    // the key, which takes it without a call (and lifts the
                    // key's hold: the gateway has answered) — stored before
                    // the mark goes, so no ask in between calls again.
                    gatewayLateOutcomes.withLock { $0[key] = outcome }
                }
                gatewayCallsInFlight.withLock { calls in
                    if calls[key] == now { calls[key] = nil }  // (not a later ask's mark)
                }
                if onTime { timer.cancel() } else { await self.gatewayAnsweredLate(key) }
            }
        }
        if !timedOut {  // it answers
            gatewayTimeoutsInARow = 0
            gatewayDownUntil = nil
        }
        guard case .unknown(let message) = outcome else {
            gatewayKeyRetry[key] = nil
            return outcome
        }
        func backoff(_ inARow: Int, cap: Duration) -> Duration {
            min(cap, configuration.gatewayRetryBase * (1 << min(inARow - 1, 10)))
        }
        let unknowns = (gatewayKeyRetry[key]?.unknowns ?? 0) + 1
        // A timed-out key waits at least a timeout (its call may run on).
        let wait = timedOut ? max(.seconds(seconds), backoff(unknowns, cap: .seconds(600))) : backoff(unknowns, cap: .seconds(60))
        gatewayKeyRetry[key] = (ContinuousClock.now + wait, unknowns)
        if timedOut {
            gatewayTimeoutsInARow += 1
            gatewayDownUntil = ContinuousClock.now + backoff(gatewayTimeoutsInARow, cap: .seconds(60))
        }
        logger.warning("the payment gateway gave no outcome; the charge stays pending, asked again with its key", metadata: [
            "account_id": "\(started.accountID)", "gateway_key": "\(key)", "reason": "\(message)",
            "gateway_taken_as_down": "\(timedOut)", "asked_again_in": "\(wait)"])
        throw GatewayUnavailable(accountID: started.accountID,
                                 message: "the payment gateway did not answer (\(message)); the charge stays pending and is settled "
                                     + "with the gateway: try again shortly (with the same idempotency key, if the request has one)")
    }

    /// Records every pending charge (of `only`'s account, or all), oldest
    /// first: the gateway is asked again with the charge's own key and
    /// answers with the first call's outcome, so nothing is charged twice.
    /// Runs before anything else that could change what a pending charge
    /// records (an invoice's state, a balance a purchase adds to): the
    /// transitions, payments, purchases and grants all call it first.
    @discardableResult
    func settlePendingCharges(only: String?) async throws -> [ClockTransition] {
        guard !state.pendingCharges.isEmpty else { return [] }
        let pending = state.pendingCharges.values
            .filter { only == nil || $0.started.accountID == only }
            .sorted { $0.seq < $1.seq }
        var transitions: [ClockTransition] = []
        for charge in pending {
            // Only a start the journal has: one whose commit failed (the
            // reload after it not yet run) must not reach the gateway. And
            // still pending after the awaits before it (a reload between).
            try await committer.waiter(for: charge.seq).wait()
            guard let current = state.pendingCharges[charge.started.gatewayKey], current.seq == charge.seq else { continue }
            let started = charge.started
            // Still no outcome: stays pending, and this account's work waits (GatewayUnavailable).
            let outcome = try await askGateway(started)
            let recorded: Billing_V1_Charge
            switch started.record {
            case .purchase(let purchase)?:
                recorded = try await recordPurchase(purchase, outcome)
                transitions.append(ClockTransition(
                    at: nowUnix, accountID: started.accountID,
                    kind: recorded.status == .succeeded ? "PURCHASE_SUCCEEDED" : "PURCHASE_FAILED",
                    description: "credit purchase \(recorded.chargeID) recorded: \(recorded.status == .succeeded ? "paid" : recorded.failureReason)"))
            case .invoicePayment(let payment)?:
                recorded = try await recordPayment(payment, outcome)
                transitions.append(Self.paymentTransition(recorded, number: state.invoices[payment.invoiceSequence]?.invoice.number,
                                                          at: nowUnix))
            case nil:
                throw LedgerError.internalFault("pending charge \(started.gatewayKey) records nothing")
            }
            logger.notice("a pending gateway charge was recorded", metadata: [
                "account_id": "\(started.accountID)", "charge_id": "\(recorded.chargeID)", "started_seq": "\(charge.seq)",
                "status": "\(recorded.status)"])
        }
        return transitions
    }

    /// How an invoice's payment attempt shows in AdvanceClock's transitions.
    static func paymentTransition(_ charge: Billing_V1_Charge, number: String?, at: Int64) -> ClockTransition {
        let number = number ?? charge.invoiceID
        return ClockTransition(
            at: at, accountID: charge.accountID,
            kind: charge.status == .succeeded ? "PAYMENT_SUCCEEDED" : "PAYMENT_FAILED",
            description: charge.status == .succeeded
                ? "invoice \(number) paid" : "payment of invoice \(number) failed: \(charge.failureReason)")
    }

    static func label(_ method: Billing_V1_PaymentMethod) -> String {
        switch method.details {
        case .card(let card)?: "\(card.brand) •••• \(card.last4)"
        case .bankAccount(let bank)?: "\(bank.bankName) •••• \(bank.last4)"
        case nil: method.paymentMethodID
        }
    }
}

// MARK: Requests

extension Ledger {
    /// Checks a request against a copy of the lifecycle; the actions it
    /// would cause, or the refusal.
    func check(_ event: AccountEvent, on book: AccountBook, at: Int64) throws -> [AccountAction] {
        var copy = book.lifecycle
        switch copy.apply(event, now: at, plans: state.plans) {
        case .success(let actions): return actions
        case .failure(let refusal): throw AccountRequestRefused(refusal)
        }
    }

    /// Applies a customer's or operator's lifecycle request after the
    /// account's due transitions; returns the entry and the invoice it
    /// issued (charged before returning), if any.
    func request(_ accountID: String, actor: String, key: String = "", domain: AccountEvent,
                 _ event: Billing_Journal_V1_LifecycleEvent.OneOf_Event)
        async throws -> (actions: [AccountAction], invoice: Int64?, charge: Billing_V1_Charge?) {
        try await request(accountID, actor: actor, key: key) { _ in (domain, event) }
    }

    /// The same, the request made from the book as its due transitions
    /// left it (what a request means can depend on them).
    func request(_ accountID: String, actor: String, key: String = "",
                 _ make: (AccountBook) -> (domain: AccountEvent, event: Billing_Journal_V1_LifecycleEvent.OneOf_Event))
        async throws -> (actions: [AccountAction], invoice: Int64?, charge: Billing_V1_Charge?) {
        _ = try book(accountID)
        // One reading of the clock for the transitions and the request: read
        // twice, a period ending between the readings would be due and not
        // applied when the request is checked at the second.
        let now = nowUnix
        _ = try await processDue(upTo: now, only: accountID)
        try requireNoReactivationUnderWay(accountID)
        let (domain, event) = make(try book(accountID))
        let actions = try check(domain, on: try book(accountID), at: now)
        // A request that charges (an upgrade, a card on a paused trial, a
        // prorated contract) is not applied while the gateway is taken as
        // down: its caller would hear UNAVAILABLE for a change committed (a
        // third diff review).
        // (Only with a method to charge: without one the attempt records
        // PAYMENT_METHOD_REQUIRED, no gateway asked — a fourth diff review.)
        if actions.contains(.attemptPayment), try book(accountID).paymentMethod != nil || domain == .paymentMethodAddedPayingFirst {
            try requireGatewayUp(accountID)
        }
        let invoicesBefore = state.nextInvoiceSequence
        try await commit(lifecycleEvent(accountID, at: now, actor: actor, key: key, event))
        let issued = state.nextInvoiceSequence > invoicesBefore ? state.nextInvoiceSequence - 1 : nil
        var charge: Billing_V1_Charge?
        if let issued, state.invoices[issued]?.attemptPending == true {
            // The request's caller asked for this charge (an upgrade, a
            // reactivation, a contract's proration): the audit log names them.
            charge = try await attemptPayment(invoice: issued, actor: actor)
        }
        return (actions, issued, charge)
    }

    /// A paused trial's reactivation whose invoice is neither paid nor void
    /// yet — its charge has no outcome, or its attempt was deferred (a crash
    /// before the charge started, the gateway taken as down) — holds the
    /// account's other requests back: a move to Free meanwhile would leave
    /// that charge to land on a Free account (paid for a period of the
    /// trial's plan it never gets), or a declined card on file (session 31,
    /// a review). Refused like a pending charge, UNAVAILABLE: asked again
    /// once the gateway answers.
    func requireNoReactivationUnderWay(_ accountID: String) throws {
        let book = try book(accountID)
        guard book.lifecycle.pauseReason == .trialEndedWithoutPaymentMethod,
              book.invoiceSequences.contains(where: { state.invoices[$0].map { $0.reactivates && $0.invoice.status == .open } ?? false })
        else { return }
        throw GatewayUnavailable(accountID: accountID,
                                 message: "this account's reactivation payment has no outcome yet; it is asked again shortly")
    }

    public func changePlan(accountID: String, to target: Plan, key: String, actor: String) async throws -> PlanChangeResult {
        try await acquireLifecycle()
        defer { releaseLifecycle() }
        _ = try book(accountID)
        // A retry's answer below reads charges: any pending one is recorded first.
        try await settlePendingCharges(only: accountID)
        let book = try book(accountID)
        if !key.isEmpty, let earlier = book.requestKeys["plan:" + key] {
            guard earlier.request == "\(LedgerState.proto(target).rawValue)" else {
                throw AccountRequestRefused(.alreadyExists, reason: "IDEMPOTENCY_KEY_REUSED",
                                            message: "idempotency key \(key) was used for a change to another plan")
            }
            // Answered once the original is durable (its commit may yet fail).
            try await committer.waiter(for: earlier.seq).wait()
            let invoice = earlier.invoiceSequence == 0 ? nil : state.invoices[earlier.invoiceSequence]?.invoice
            // The request's own charge: the invoice's first attempt (a later
            // PayInvoice of it made others, which are not this answer's).
            let charge = invoice.flatMap { invoice in book.charges.first { $0.invoiceID == invoice.invoiceID } }
            return PlanChangeResult(effect: Billing_V1_PlanChangeEffect(rawValue: Int(earlier.effect)) ?? .unchanged,
                                    invoice: invoice, charge: charge)
        }
        // A trial moving to Free starts Free at once, its first period
        // charged: a plans file that prices Free needs a card for it, as any
        // paid plan does (checked here, before anything is journaled: the
        // domain's own rule replays older journals as they were decided).
        // Not a paused trial's: a card would restart it on the trial's plan,
        // charged — its way out to Free (DESIGN.md) stays open, the invoice
        // owed then, past due until paid.
        if target == .free, state.plans.free.monthlyPrice > .zero {
            // A trial that has ended is paused first (as `request` would).
            _ = try await processDue(upTo: nowUnix, only: accountID)
            let lifecycle = try self.book(accountID).lifecycle
            if lifecycle.trialEndsAt != nil, !lifecycle.hasPaymentMethod, lifecycle.pauseReason != .trialEndedWithoutPaymentMethod {
                throw AccountRequestRefused(reason: AccountRefusal.paymentMethodRequired.reason,
                                            message: AccountRefusal.paymentMethodRequired.message)
            }
        }
        let (actions, issued, charge) = try await request(accountID, actor: actor, key: key) { book in
            var change = Billing_Journal_V1_PlanChangeRequested()
            change.toPlan = LedgerState.proto(target)
            // Choosing the plan the account is on keeps it: a change pending
            // to another plan is cancelled (UNCHANGED, as CancelPendingChange).
            change.cancelsPending = target == book.lifecycle.plan && book.lifecycle.pendingChange != nil
            let domain: AccountEvent = change.cancelsPending ? .cancelPendingChange
                : target == .free ? .downgradeToFree : .changePlan(to: target)
            return (domain, .planChange(change))
        }
        return PlanChangeResult(effect: LedgerState.effect(of: actions),
                                invoice: issued.flatMap { state.invoices[$0]?.invoice }, charge: charge)
    }

    public func cancelPendingChange(accountID: String, actor: String) async throws {
        try await acquireLifecycle()
        defer { releaseLifecycle() }
        _ = try await request(accountID, actor: actor, domain: .cancelPendingChange,
                              .pendingChangeCancelled(Billing_Journal_V1_PendingChangeCancelled()))
    }

    /// The largest contract price or custom line a new contract may give,
    /// a period ($1,000,000,000).
    static let maxContractAmountMicros: Int64 = 1_000_000_000_000_000

    /// Returns the charge made at once (nil if none): a trial moved to
    /// Enterprise is invoiced its first full period, a Free or Pro account
    /// mid-period the rest of the period, prorated.
    @discardableResult
    public func setEnterpriseContract(accountID: String, terms: Billing_V1_EnterpriseContract, actor: String)
        async throws -> Billing_V1_Charge? {
        if let (field, rule) = LedgerState.contractProblem(terms, wholeCents: true) {
            throw AccountRequestRefused(.invalidArgument, reason: "INVALID_CONTRACT", message: "contract.\(field) \(rule)",
                                        field: "contract.\(field)")
        }
        // Each amount at most $1,000,000,000 a period — a new contract only
        // (the journal's rules take any that fits: contracts set before
        // session 30 replay as they were). A mistyped price has no other
        // ceiling, is charged prorated at once, and its invoices' lines could
        // pass Int64 with the period's usage (capped, as invoices are).
        let amounts = [("period_price_micros", terms.periodPriceMicros)]
            + terms.customInvoiceLines.indices.map { ("custom_invoice_lines[\($0)].amount_micros", terms.customInvoiceLines[$0].amountMicros) }
        if let (field, micros) = amounts.first(where: { $0.1 > Self.maxContractAmountMicros }) {
            throw AccountRequestRefused(.invalidArgument, reason: "INVALID_CONTRACT",
                                        message: "contract.\(field) must be at most \(Self.maxContractAmountMicros) micros ($1,000,000,000 a period), got \(micros)",
                                        field: "contract.\(field)")
        }
        try await acquireLifecycle()
        defer { releaseLifecycle() }
        let (_, _, charge) = try await request(accountID, actor: actor,
                                               domain: .enterpriseContractSet(LedgerState.contract(terms), prorated: true),
                                               .enterpriseContract(terms))
        return charge
    }

    /// Puts a tokenized method on file: at once if it is the first, at the
    /// next billing cycle if it replaces one. A paused trial's first period
    /// is charged to it, and the trial resumes once that charge succeeds;
    /// declined, the method is not kept and the trial stays paused
    /// (`appliedNow` false; its invoice void). Before session 31 the trial
    /// resumed at once and a decline left it past due on its plan, without
    /// the paused trial's way out to Free.
    public func setPaymentMethod(accountID: String, method: TokenizedMethod, actor: String) async throws -> (appliedNow: Bool, charge: Billing_V1_Charge?) {
        try await acquireLifecycle()
        defer { releaseLifecycle() }
        // (A reactivation still waiting for the gateway's answer is settled
        // first, `request`'s `processDue`: a second card would otherwise
        // start a second one.)
        var set = paymentMethodSet(method)
        set.reactivatesOnPayment = true
        let (_, _, charge) = try await request(accountID, actor: actor, domain: .paymentMethodAddedPayingFirst, .paymentMethodSet(set))
        // On file now: not when it replaces one at the next cycle, nor when its reactivation was declined.
        return (try book(accountID).paymentMethod?.method.paymentMethodID == set.method.paymentMethodID, charge)
    }

    func paymentMethodSet(_ method: TokenizedMethod) -> Billing_Journal_V1_PaymentMethodSet {
        var set = Billing_Journal_V1_PaymentMethodSet()
        set.gatewayToken = method.token
        // Unique: the journal position the method is recorded at, or later.
        set.method.paymentMethodID = "pm_\(state.lastSeq + 1)"
        set.method.addedUnixSeconds = nowUnix
        switch method.kind {
        case let .card(brand, last4, expMonth, expYear):
            set.method.type = .card
            var card = Billing_V1_CardDetails()
            card.brand = brand
            card.last4 = last4
            card.expMonth = Int32(expMonth)
            card.expYear = Int32(expYear)
            set.method.card = card
        case let .bankAccount(bankName, last4):
            set.method.type = .bankAccount
            var bank = Billing_V1_BankAccountDetails()
            bank.bankName = bankName
            bank.last4 = last4
            set.method.bankAccount = bank
        }
        return set
    }

    /// Buys credits: charges `newMethod` (for this purchase only: it does
    /// not go on file) or the method on file, then records the charge and
    /// (if it succeeded) the credits and a paid invoice. A retry with the
    /// same key — the same amount, the same `requested` method — returns the
    /// first outcome and charges nothing. `requested`: what the request gave
    /// to pay with (`RequestedMethod`; nil: described from `newMethod`).
    public func purchaseCredits(accountID: String, amountMicros: Int64, key: String, newMethod: TokenizedMethod? = nil,
                                requested: String? = nil, actor: String) async throws -> PurchaseResult {
        let requested = requested ?? RequestedMethod.describing(newMethod)
        // (PaymentsService checks the range first; whole cents are the ledger's rule too.)
        guard amountMicros > 0, Money(micros: amountMicros).isWholeCents else {
            throw AccountRequestRefused(.invalidArgument, reason: "INVALID_AMOUNT",
                                        message: "a purchase is a positive amount of whole cents (a multiple of 10000 micros)")
        }
        try await acquireLifecycle()
        defer { releaseLifecycle() }
        _ = try book(accountID)
        // A retry of a purchase whose outcome a crash left unrecorded finds it recorded.
        try await settlePendingCharges(only: accountID)
        let book = try book(accountID)
        if let earlier = try earlierPurchase(book, amountMicros: amountMicros, key: key, requested: requested) {
            guard let charge = book.charges.last(where: { $0.chargeID == earlier.chargeID }) else {
                throw LedgerError.internalFault("purchase \(key) has no charge")
            }
            // A decline too is answered once the original is durable.
            try await committer.waiter(for: earlier.seq).wait()
            guard charge.status == .succeeded, let invoice = state.invoices[earlier.invoiceSequence]?.invoice else {
                throw PaymentDeclined(charge: charge, idempotencyKey: key)
            }
            return PurchaseResult(charge: charge, invoice: invoice, balance: try await committed(book.balance))
        }
        guard let method = newMethod.map(paymentMethodSet) ?? book.paymentMethod else {
            throw AccountRequestRefused(reason: "PAYMENT_METHOD_REQUIRED",
                                        message: "add a payment method before buying credits, or give one to pay with")
        }
        guard !book.balance.addingReportingOverflow(amountMicros).overflow,
              !book.granted.addingReportingOverflow(amountMicros).overflow else {
            throw LedgerError.invalid("the balance would overflow")
        }
        var purchase = Billing_Journal_V1_CreditsPurchased()
        purchase.accountID = accountID
        purchase.amountMicros = amountMicros
        purchase.idempotencyKey = key
        purchase.requestedMethod = requested
        purchase.actor = actor
        purchase.gatewayKey = Self.purchaseGatewayKey(account: accountID, key: key, amountMicros: amountMicros)
        // Named by the seq of its ChargeStarted entry: unique.
        purchase.charge.chargeID = "ch_p\(state.lastSeq + 1)"
        purchase.charge.accountID = accountID
        purchase.charge.createdUnixSeconds = nowUnix
        purchase.charge.amountMicros = amountMicros
        purchase.charge.kind = .creditPurchase
        // A method given with the purchase is on file nowhere: no id to name
        // (a diff review: "pm_N", an id no list shows); its label says which.
        purchase.charge.paymentMethodID = newMethod == nil ? method.method.paymentMethodID : ""
        purchase.charge.paymentMethodLabel = Self.label(method.method)
        purchase.charge.description_p = "Credit purchase"
        var started = Billing_Journal_V1_ChargeStarted()
        started.accountID = accountID
        started.gatewayKey = purchase.gatewayKey
        started.gatewayToken = method.gatewayToken
        started.purchase = purchase
        let charge = try await recordPurchase(purchase, try await chargeGateway(started))
        guard charge.status == .succeeded else { throw PaymentDeclined(charge: charge, idempotencyKey: key) }
        let after = try self.book(accountID)
        // The balance counts debits that may still be committing: answered once they are.
        return PurchaseResult(charge: charge, invoice: state.invoices[after.invoiceSequences.last!]!.invoice,
                              balance: try await committed(after.balance))
    }

    /// The purchase `key` already made, if any; refuses the key if it was
    /// made for another amount or with another method (`requested`).
    func earlierPurchase(_ book: AccountBook, amountMicros: Int64, key: String, requested: String) throws -> RequestKeyRecord? {
        guard let earlier = book.requestKeys["purchase:" + key] else { return nil }
        let (amount, method) = RequestedMethod.split(earlier.request)
        guard amount == "\(amountMicros)" else {
            throw AccountRequestRefused(.alreadyExists, reason: "IDEMPOTENCY_KEY_REUSED",
                                        message: "idempotency key \(key) was used for a purchase of another amount")
        }
        guard method == nil || method == requested else {
            throw AccountRequestRefused(.alreadyExists, reason: "IDEMPOTENCY_KEY_REUSED",
                                        message: "idempotency key \(key) was used for a purchase with another payment method")
        }
        return earlier
    }

    /// Whether `purchaseCredits` with these would charge — so a payment
    /// method given with it is to be tokenized first — or answer a retry
    /// from its key (false); refuses a reused key as it would. Asked before
    /// tokenizing, as `paymentWouldCharge`.
    public func purchaseWouldCharge(accountID: String, amountMicros: Int64, key: String, requested: String) async throws -> Bool {
        do {
            // A charge of this key still pending: a retry (its outcome is
            // asked for, not a card tokenized again).
            if hasPendingCharge(accountID, .purchase, key: key) { return false }
            return try earlierPurchase(try book(accountID), amountMicros: amountMicros, key: key, requested: requested) == nil
        } catch let refusal as AccountRequestRefused {
            try await readBarrier().wait()
            throw refusal
        }
    }

    /// What a PayInvoice asks for, as the books stand.
    enum PaymentPlan {
        /// A retry of `earlier` (same key, same invoice): answered from it.
        case retry(earlier: RequestKeyRecord)
        /// The invoice at `sequence`, owed: to be charged.
        case charge(sequence: Int64)
    }

    /// PayInvoice's checks, in DESIGN.md's precedence: the key first (a key
    /// used for another invoice is reused whether or not this one exists),
    /// then the invoice (exists, owed), then something to pay with.
    /// `requested`: what the request gives to pay with (`RequestedMethod`);
    /// a key's retry must give the same (session 29: a retry with another
    /// card was answered with the first card's decline, the new card never
    /// tried; one with a declining card "succeeded" — the first's answer).
    func planPayment(_ book: AccountBook, invoiceID: String, key: String, hasNewMethod: Bool, requested: String) throws -> PaymentPlan {
        if !key.isEmpty, let earlier = book.requestKeys["pay:" + key] {
            let (invoice, method) = RequestedMethod.split(earlier.request)
            guard invoice == invoiceID else {
                throw AccountRequestRefused(.alreadyExists, reason: "IDEMPOTENCY_KEY_REUSED",
                                            message: "idempotency key \(key) was used to pay another invoice")
            }
            guard method == nil || method == requested else {
                throw AccountRequestRefused(.alreadyExists, reason: "IDEMPOTENCY_KEY_REUSED",
                                            message: "idempotency key \(key) was used with another payment method")
            }
            return .retry(earlier: earlier)
        }
        guard let sequence = book.invoiceSequences.first(where: { state.invoices[$0]?.invoice.invoiceID == invoiceID }) else {
            throw AccountRequestRefused(.notFound, reason: "INVOICE_NOT_FOUND", message: "invoice \(invoiceID) not found")
        }
        let invoice = state.invoices[sequence]!.invoice
        switch invoice.status {
        case .paid:
            throw AccountRequestRefused(reason: "INVOICE_ALREADY_PAID", message: "invoice \(invoice.number) is paid")
        case .void:
            throw AccountRequestRefused(reason: "INVOICE_VOID", message: "invoice \(invoice.number) is void; nothing is owed")
        default:
            break
        }
        guard hasNewMethod || book.paymentMethod != nil else {
            throw AccountRequestRefused(reason: "PAYMENT_METHOD_REQUIRED", message: "add a payment method or give one to pay with")
        }
        return .charge(sequence: sequence)
    }

    /// Whether `payInvoice` with these would charge the invoice — so a
    /// payment method given with it is to be tokenized first — or answer a
    /// retry from its key (false); refuses as `payInvoice` would. Asked
    /// before tokenizing: a refused request, or a retry, must leave no new
    /// token at the gateway. A refusal is answered once what it read is
    /// durable.
    public func paymentWouldCharge(accountID: String, invoiceID: String, key: String, hasNewMethod: Bool,
                                   requested: String) async throws -> Bool {
        do {
            if !key.isEmpty, hasPendingCharge(accountID, .invoicePayment, key: key) { return false }  // (as `purchaseWouldCharge`)
            if case .charge = try planPayment(try book(accountID), invoiceID: invoiceID, key: key, hasNewMethod: hasNewMethod,
                                              requested: requested) { return true }
            return false
        } catch let refusal as AccountRequestRefused {
            try await readBarrier().wait()
            throw refusal
        }
    }

    /// Pays an OPEN or PAST_DUE invoice with the method on file or
    /// `newMethod` (which becomes the method on file if the charge succeeds).
    /// `requested`: what the request gave to pay with (nil: described from `newMethod`).
    public func payInvoice(accountID: String, invoiceID: String, newMethod: TokenizedMethod?, requested: String? = nil, key: String,
                           actor: String) async throws -> (invoice: Billing_V1_Invoice, charge: Billing_V1_Charge) {
        let requested = requested ?? RequestedMethod.describing(newMethod)
        try await acquireLifecycle()
        defer { releaseLifecycle() }
        _ = try book(accountID)
        try await settlePendingCharges(only: accountID)
        let book = try book(accountID)
        switch try planPayment(book, invoiceID: invoiceID, key: key, hasNewMethod: newMethod != nil, requested: requested) {
        case .retry(let earlier):
            guard let charge = book.charges.last(where: { $0.chargeID == earlier.chargeID }) else {
                throw LedgerError.internalFault("payment \(key) has no charge")
            }
            try await committer.waiter(for: earlier.seq).wait()  // as `changePlan`'s retry
            guard charge.status == .succeeded else { throw PaymentDeclined(charge: charge, idempotencyKey: key) }
            guard let invoice = book.invoiceSequences.lazy.compactMap({ self.state.invoices[$0]?.invoice })
                .first(where: { $0.invoiceID == invoiceID }) else {
                throw LedgerError.internalFault("payment \(key) names no invoice")
            }
            return (invoice, charge)
        case .charge(let sequence):
            let charge = try await attemptPayment(invoice: sequence, key: key, newMethod: newMethod.map(paymentMethodSet),
                                                  requested: requested, actor: actor)
            guard charge.status == .succeeded else { throw PaymentDeclined(charge: charge, idempotencyKey: key) }
            return (state.invoices[sequence]!.invoice, charge)
        }
    }

    // MARK: Reads

    // Each read answers once what it saw is durable (`committed`).

    public func invoices(of accountID: String) async throws -> [Billing_V1_Invoice] {
        try await committed(try book(accountID).invoiceSequences.compactMap { state.invoices[$0]?.invoice })
    }

    public func invoice(accountID: String, invoiceID: String) async throws -> Billing_V1_Invoice {
        let book = try book(accountID)
        for sequence in book.invoiceSequences {
            if let invoice = state.invoices[sequence]?.invoice, invoice.invoiceID == invoiceID { return try await committed(invoice) }
        }
        throw AccountRequestRefused(.notFound, reason: "INVOICE_NOT_FOUND", message: "invoice \(invoiceID) not found")
    }

    /// The book as of now, after any transition already due for it (so a
    /// read never shows a trial that should have ended). A read applies
    /// due transitions only: payments — a charge left pending, an invoice
    /// owed an attempt, the charge a period close makes — are the ticker's
    /// and the account's requests' (session 29, a diff review: a read
    /// asked the payment gateway, holding the lifecycle turn every account
    /// shares while it waited — up to the gateway's timeout once it stopped
    /// answering). With a charge pending — whose record must come before
    /// anything that could change what it records —, nothing due, or the
    /// turn held by a call waiting on the gateway (up to its timeout), the
    /// book as it stands, without waiting for the turn: a transition due
    /// then shows once the gateway answers, rather than the read held up (a
    /// diff review, session 29). Otherwise the read queues for the turn, as
    /// before (a sweep gives it up between accounts), and shows the
    /// transition applied.
    public func currentBook(_ accountID: String) async throws -> AccountBook {
        let standing = try book(accountID)
        guard standing.lifecycle.nextDueTransition(now: nowUnix) != nil, !hasPendingCharge(accountID),
              !(lifecycleBusy && gatewayWaits > 0) else {
            return try await committed(standing)
        }
        try await acquireLifecycle()
        defer { releaseLifecycle() }
        _ = try book(accountID)
        _ = try await processDue(upTo: nowUnix, only: accountID, charging: false)
        return try await committed(try book(accountID))
    }

    enum ChargeRequest { case purchase, invoicePayment }

    /// Whether a charge of `accountID` is pending; with `request`, one made
    /// by a request of that kind under the idempotency key `key`.
    func hasPendingCharge(_ accountID: String, _ request: ChargeRequest? = nil, key: String = "") -> Bool {
        state.pendingCharges.values.contains { pending in
            guard pending.started.accountID == accountID else { return false }
            switch (request, pending.started.record) {
            case (nil, _): return true
            case (.purchase?, .purchase(let purchase)?): return purchase.idempotencyKey == key
            case (.invoicePayment?, .invoicePayment(let payment)?): return payment.idempotencyKey == key
            default: return false
            }
        }
    }

    public nonisolated var currentUnix: Int64 { clock.nowMicros() / 1_000_000 }

    /// Where Admin `AdvanceClock` last moved the test clock (unix seconds;
    /// 0: never moved).
    public var testClockUnix: Int64 { state.testClockUnix }
    /// Whether Admin AdvanceClock ever moved it (see `LedgerState.testClockMoved`).
    public var testClockMoved: Bool { state.testClockMoved }
}

extension Billing_V1_Charge {
    /// Sets the status (and a failure's reason and message) from the gateway's answer.
    mutating func record(_ outcome: ChargeOutcome) {
        switch outcome {
        case .succeeded:
            status = .succeeded
        case let .failed(reason, message):
            status = .failed
            failureReason = reason
            failureMessage = message
        case .unknown:
            // `askGateway` throws for it: the charge stays pending, nothing recorded.
            preconditionFailure("a charge without an outcome is never recorded")
        }
    }
}
