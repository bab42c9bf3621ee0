import Foundation
public import BillingCore
public import BillingProto

extension LedgerState {
    /// What a debit would do now: the accepted entry's event or the refusal,
    /// checked in DESIGN.md's precedence (unknown account, paused, workspace
    /// limit, run quota, insufficient credits; key reuse is checked before,
    /// against the idempotency records). Pure: changes nothing.
    public func decide(_ command: DebitCommand, nowMicros: Int64, plans: PlanCatalog) -> Billing_Journal_V1_Entry.OneOf_Event {
        guard let index = accounts.index(forKey: command.accountID) else {
            return .debitRefused(Self.refusal(command, .unknownAccount, detail: "account \(command.accountID) does not exist"))
        }
        var book = accounts.values[index]
        return Self.decide(command, book: &book, nowMicros: nowMicros, plans: plans)
    }

    /// `decide` as the live ledger calls it: the book is lent in place
    /// through the dictionary's `_modify` (`values[index]`'s getter copies
    /// the whole book, a retain and a release per collection in it — twice
    /// per debit, ~2 % of a call). Changes nothing, but needs the accounts'
    /// storage unique, as the debit's `apply` right after does anyway.
    /// Whether an acceptance's sums fit in Int64 is checked by `apply`,
    /// before it changes anything; `checkingSums` checks it here too (Quote:
    /// nothing is applied, and it must answer as Debit would). The event
    /// comes as the record it would be appended as at `seq`, made where it is
    /// decided: passed on as a reference, not as a 265-byte value moved
    /// frame to frame.
    mutating func decideInPlace(_ command: DebitCommand, seq: Int64, nowMicros: Int64, checkingSums: Bool = false)
        throws(ApplyError) -> (record: JournalRecord, balance: Int64)? {
        guard let index = accounts.index(forKey: command.accountID) else { return nil }
        return try Self.decideInPlace(command, seq: seq, nowMicros: nowMicros, checkingSums: checkingSums,
                                      plans: plans, book: &accounts.values[index])
    }

    /// The book comes `inout` though nothing changes it: a borrowed book was
    /// copied to the stack first (824 bytes, every cache line of it, ~1.5 %
    /// of a unary Debit's profile); the dictionary's `_modify` hands over
    /// its address.
    private static func decideInPlace(_ command: DebitCommand, seq: Int64, nowMicros: Int64, checkingSums: Bool,
                                      plans: PlanCatalog, book: inout AccountBook)
        throws(ApplyError) -> (record: JournalRecord, balance: Int64)? {
        // Never dated before the account's current period, or the period
        // its runs are counted in (`AccountBook.earliestDebitTime`): a clock
        // stepped back would date the debit where the run quota starts over.
        // Both are in the books (checkpointed, replayed), so this holds
        // across restarts; the journaled time is what replay uses.
        let nowMicros = max(nowMicros, book.earliestDebitTime * 1_000_000)
        let record = JournalRecord(seq: seq, atUnixMicros: nowMicros,
                                   event: Self.decide(command, book: &book, nowMicros: nowMicros, plans: plans))
        if checkingSums && record.isAccepted { _ = try Self.sums(after: record.accepted, seq: seq, book: &book) }
        return (record, book.balance)
    }

    static func decide(_ command: DebitCommand, book: inout AccountBook, nowMicros: Int64,
                       plans: PlanCatalog) -> Billing_Journal_V1_Entry.OneOf_Event {
        // `pause(at:)` only when a pause can be due (a trial, a past-due
        // invoice): calling it copies the whole lifecycle out of the book
        // first (168 bytes; still so when made @inlinable @inline(__always)),
        // ~5 % of a unary Debit when done on every debit. Stored properties
        // are read in place.
        let now = nowMicros / 1_000_000
        let period = book.period(containing: now)
        // Runs counted in an earlier period do not count in this one.
        let samePeriod = period.start == book.periodStart
        // No run: a Quote asking about a new one (every Debit names its run).
        let newRun = command.runID.isEmpty || !(samePeriod && book.runsInPeriod.contains(command.runHash))
        // A trial's end pauses new runs: a run already counted this period
        // (begun before the end) reports the rest of its usage, from credits
        // only (a trial never accrues overage). Past a past-due invoice's
        // grace every debit is refused: the account owes money, and a run
        // going on would accrue overage without bound until the period closed.
        let mayBeDue = book.lifecycle.trialEndsAt != nil || !book.lifecycle.pastDueInvoices.isEmpty
        if let pause = book.lifecycle.pauseReason ?? (mayBeDue ? book.lifecycle.pause(at: now, plans: plans) : nil),
           newRun || pause != .trialEndedWithoutPaymentMethod {
            return .debitRefused(Self.refusal(command, .accountPaused, detail: "new runs are paused: \(pause.remedy(plan: book.lifecycle.plan, plans: plans))"))
        }
        // After the period's end, before the tick closes it, a downgrade due
        // then already rules (its quota, overage and workspace limit): a
        // debit is decided as it would be a second later (but for the
        // workspaces, below). Checked on two stored properties first, so
        // other debits read nothing more.
        let moving = book.lifecycle.pendingChange != nil && now >= book.lifecycle.currentPeriod.end
        let terms = moving ? book.lifecycle.effectiveTerms(at: now, plans) : book.terms(in: plans)
        // (Workspaces: the period's so far still count then; the close
        // counts them afresh, from the move on.)
        if let limit = terms.workspaceLimit, !command.workspaceID.isEmpty,
           !book.workspaces.contains(command.workspaceID), book.workspaces.count >= limit {
            return .debitRefused(Self.refusal(command, .workspaceLimit,
                detail: "the \(terms.displayName) plan allows \(limit) workspace(s); upgrade to add workspace \(command.workspaceID)"))
        }
        let runsUsed = samePeriod ? book.runsInPeriod.count : 0
        if newRun, let quota = terms.runQuota, Int64(runsUsed) >= quota {
            return .debitRefused(Self.refusal(command, .runQuotaExceeded,
                detail: "\(runsUsed) of \(quota) runs used this period; the quota resets on the next billing date"))
        }
        let total = command.priced.total.micros
        var fromCredits = total
        var overage: Int64 = 0
        if book.balance < total {
            guard terms.accruesOverage else {
                return .debitRefused(Self.refusal(command, .insufficientCredits,
                    detail: "debit of \(Money(micros: total)) exceeds the credit balance of \(Money(micros: book.balance))"))
            }
            fromCredits = max(book.balance, 0)
            overage = total - fromCredits
        }
        var accepted = Billing_Journal_V1_DebitAccepted()
        accepted.accountID = command.accountID
        accepted.workspaceID = command.workspaceID
        accepted.agentID = command.agentID
        accepted.runID = command.runID
        accepted.idempotencyKey = command.idempotencyKey
        accepted.requestHash = command.fingerprint
        accepted.lines = command.priced.lineItems.map(Self.journalLine)
        accepted.totalMicros = total
        accepted.fromCreditsMicros = fromCredits
        accepted.overageMicros = overage
        accepted.catalogVersion = command.priced.catalogVersion
        accepted.newRun = newRun
        accepted.balanceAfterMicros = book.balance - fromCredits
        return .debitAccepted(accepted)
    }

    static func refusal(_ command: DebitCommand, _ rejection: Rejection, detail: String) -> Billing_Journal_V1_DebitRefused {
        var refused = Billing_Journal_V1_DebitRefused()
        refused.accountID = command.accountID
        refused.idempotencyKey = command.idempotencyKey
        refused.requestHash = command.fingerprint
        refused.code = Int32(rejection.code.rawValue)
        refused.reason = rejection.reason
        refused.message = detail
        return refused
    }

    static func journalLine(_ priced: PricedLineItem) -> Billing_Journal_V1_PricedLine {
        var line = Billing_Journal_V1_PricedLine()
        line.key = priced.key
        line.amountMicros = priced.amount.micros
        line.quantity = priced.quantity
        var item = Billing_V1_LineItem()
        switch priced.item {
        case let .llm(model, input, output):
            var llm = Billing_V1_LlmUsage()
            llm.model = model
            llm.inputTokens = input
            llm.outputTokens = output
            item.llm = llm
        case let .toolCall(integration, calls):
            var tool = Billing_V1_ToolCallUsage()
            tool.integration = integration
            tool.calls = calls
            item.toolCall = tool
        case let .storage(kind, bytes):
            var storage = Billing_V1_StorageUsage()
            storage.kind = kind == .knowledgeBase ? .knowledgeBase : .traces
            storage.bytes = bytes
            item.storage = storage
        }
        line.item = item
        return line
    }
}
