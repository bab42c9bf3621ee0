public import BillingCore
public import BillingProto

/// Everything the ledger holds in memory, as a value: `apply` is the only
/// way it changes, so the live path, start-up replay and `billing verify`
/// all compute the same books from the same journal.
public struct LedgerState: Sendable, Equatable {
    public var accounts: [String: AccountBook] = [:]
    /// Service API keys by key id, revoked ones included.
    public var apiKeys: [String: ApiKeyRecord] = [:]
    /// Every invoice of the service by sequence (1, 2, 3... without gaps).
    public var invoices: [Int64: InvoiceRecord] = [:]
    /// The latest instant (unix seconds) the lifecycle has reached: the test
    /// clock's last setting or the last transition's due time. A test clock
    /// resumes from it, and lifecycle requests never run before it.
    public var testClockUnix: Int64 = 0
    /// Whether a `ClockSet` (Admin AdvanceClock) was ever applied: then
    /// `testClockUnix` is a test clock's position, which a server on the
    /// real clock must not run behind (`billing serve` refuses it).
    public var testClockMoved = false
    /// Seq of the last entry applied.
    public var lastSeq: Int64 = 0
    /// Plan prices and terms the lifecycle events are applied with.
    public var plans: PlanCatalog
    /// The grace after a failed invoice payment last journaled for every
    /// account (`PlansConfigured.grace_seconds`); nil before any was (each
    /// account then has the grace it was created with).
    public internal(set) var configuredGraceSeconds: Int64?
    /// When each account's next transition is due, and the invoices owing a
    /// payment attempt: derived from the books (not compared, not stored).
    public internal(set) var schedule = TransitionSchedule()
    /// Gateway charges journaled as started whose outcome is not recorded
    /// yet, by gateway key (`Ledger.settlePendingCharges` records them).
    public var pendingCharges: [String: PendingCharge] = [:]

    public init(plans: PlanCatalog = .default) {
        self.plans = plans
    }

    /// The longest grace journaled (`billing serve --grace-days` takes 0...365).
    public static let maxGraceSeconds: Int64 = 365 * 86_400

    /// The same books (whatever catalog they were computed with).
    public static func == (lhs: LedgerState, rhs: LedgerState) -> Bool {
        lhs.lastSeq == rhs.lastSeq && lhs.testClockUnix == rhs.testClockUnix && lhs.testClockMoved == rhs.testClockMoved
            && lhs.accounts == rhs.accounts && lhs.configuredGraceSeconds == rhs.configuredGraceSeconds
            && lhs.apiKeys == rhs.apiKeys && lhs.invoices == rhs.invoices && lhs.pendingCharges == rhs.pendingCharges
    }

    public enum ApplyError: Error, Equatable {
        case outOfOrder(expected: Int64, got: Int64)
        case unknownAccount(seq: Int64, String)
        case overflow(seq: Int64)
        case inconsistent(seq: Int64, String)
    }

    /// Applies one journal entry. Entries must come in seq order. `runHash`:
    /// an accepted debit's `JournalKeyHash.run`, when the caller has it.
    public mutating func apply(_ entry: Billing_Journal_V1_Entry, runHash: Int64? = nil) throws(ApplyError) {
        try apply(entry.event, seq: entry.seq, atMicros: entry.atUnixMicros, runHash: runHash)
    }

    /// The same, from the ledger's record: an accepted debit is applied
    /// from the record in place (a copy of it would cost a retain and a
    /// release per text in it).
    mutating func apply(_ record: JournalRecord, runHash: Int64? = nil) throws(ApplyError) {
        guard record.isAccepted else {
            try apply(record.event, seq: record.seq, atMicros: record.atUnixMicros, runHash: runHash)
            return
        }
        guard record.seq == lastSeq + 1 else { throw .outOfOrder(expected: lastSeq + 1, got: record.seq) }
        try applyAccepted(record.accepted, seq: record.seq, atMicros: record.atUnixMicros, runHash: runHash)
        lastSeq = record.seq  // (an accepted debit reschedules nothing)
    }

    /// The same, from the entry's parts.
    mutating func apply(_ event: Billing_Journal_V1_Entry.OneOf_Event?, seq: Int64, atMicros: Int64,
                        runHash: Int64? = nil) throws(ApplyError) {
        guard seq == lastSeq + 1 else { throw .outOfOrder(expected: lastSeq + 1, got: seq) }
        switch event {
        case .accountCreated(let created):
            guard accounts[created.accountID] == nil else { throw .inconsistent(seq: seq, "account \(created.accountID) exists") }
            accounts[created.accountID] = try newBook(created, at: atMicros / 1_000_000, seq: seq)
        case .creditsGranted(let grant):
            guard let book = accounts[grant.accountID] else { throw .unknownAccount(seq: seq, grant.accountID) }
            let (balance, o1) = book.balance.addingReportingOverflow(grant.amountMicros)
            let (granted, o2) = book.granted.addingReportingOverflow(grant.amountMicros)
            guard !o1 && !o2 else { throw .overflow(seq: seq) }
            accounts[grant.accountID]!.balance = balance
            accounts[grant.accountID]!.granted = granted
            if !grant.idempotencyKey.isEmpty {
                accounts[grant.accountID]!.grantKeys[grant.idempotencyKey] = GrantRecord(seq: seq, amount: grant.amountMicros, note: grant.note)
            }
        case .debitAccepted(let debit):
            try applyAccepted(debit, seq: seq, atMicros: atMicros, runHash: runHash)
        case .apiKeyCreated(let created):
            guard apiKeys[created.keyID] == nil else { throw .inconsistent(seq: seq, "key \(created.keyID) exists") }
            apiKeys[created.keyID] = ApiKeyRecord(created: created, createdUnix: atMicros / 1_000_000, revokedUnix: 0)
        case .apiKeyRevoked(let revoked):
            guard var record = apiKeys[revoked.keyID] else { throw .inconsistent(seq: seq, "no key \(revoked.keyID)") }
            if record.revokedUnix == 0 { record.revokedUnix = atMicros / 1_000_000 }
            apiKeys[revoked.keyID] = record
        case .lifecycle(let event):
            try applyLifecycle(event, seq: seq)
        case .chargeStarted(let started):
            try applyStarted(started, seq: seq)
        case .chargeRecorded(let recorded):
            try checkSettles(recorded.gatewayKey, account: recorded.charge.accountID, seq: seq)
            try applyCharge(recorded, at: atMicros / 1_000_000, seq: seq)
            pendingCharges[recorded.gatewayKey] = nil
        case .creditsPurchased(let purchase):
            try checkSettles(purchase.gatewayKey, account: purchase.accountID, seq: seq)
            try applyPurchase(purchase, at: atMicros / 1_000_000, seq: seq)
            pendingCharges[purchase.gatewayKey] = nil
        case .plansConfigured(let configured):
            guard let catalog = Self.plans(configured) else { throw .inconsistent(seq: seq, "plan terms out of range") }
            if configured.hasGraceSeconds {
                guard configured.graceSeconds >= 0, configured.graceSeconds <= Self.maxGraceSeconds else {
                    throw .inconsistent(seq: seq, "grace of \(configured.graceSeconds) s out of range")
                }
                configuredGraceSeconds = configured.graceSeconds
                for index in accounts.values.indices { accounts.values[index].lifecycle.setGraceSeconds(configured.graceSeconds) }
            }
            plans = catalog
        case .clockSet(let set):
            guard set.nowUnix >= testClockUnix else { throw .inconsistent(seq: seq, "the test clock moved back") }
            testClockUnix = set.nowUnix
            testClockMoved = true
        case .debitRefused, .none:
            break  // a refusal changes no books; its key is kept by the journal
        }
        lastSeq = seq
        reschedule(after: event)
    }

    /// An accepted debit applied to its account's book, found once and
    /// mutated in place (`values[index]`'s `_modify`): copying the book out
    /// and back would copy its run set and usage table on every debit, and
    /// `accounts[id]!` would hash the id again.
    private mutating func applyAccepted(_ debit: Billing_Journal_V1_DebitAccepted, seq: Int64, atMicros: Int64,
                                        runHash: Int64?) throws(ApplyError) {
        guard let index = accounts.index(forKey: debit.accountID) else { throw .unknownAccount(seq: seq, debit.accountID) }
        try Self.applyDebit(debit, at: atMicros, seq: seq, runHash: runHash, to: &accounts.values[index])
    }

    /// The book's overage, debited credits and lifetime sums once an
    /// accepted debit is applied, every check made and nothing changed: its
    /// line items, credits and overage must add up, and no sum may pass
    /// Int64. Lifetime sums bound every cell and every sum of cells; a debit
    /// that would carry them past Int64 is refused (the live ledger answers
    /// it as bad input, `Ledger.append`; Quote the same, `decideInPlace`).
    static func sums(after debit: Billing_Journal_V1_DebitAccepted, seq: Int64, book: inout AccountBook)
        throws(ApplyError) -> (overage: Int64, debited: Int64, balance: Int64, lifetime: UsageTotals) {
        var lineSum: Int64 = 0
        for line in debit.lines {
            let (sum, overflow) = lineSum.addingReportingOverflow(line.amountMicros)
            guard !overflow else { throw .overflow(seq: seq) }
            lineSum = sum
        }
        let (split, splitOverflow) = debit.fromCreditsMicros.addingReportingOverflow(debit.overageMicros)
        guard lineSum == debit.totalMicros, !splitOverflow, split == debit.totalMicros,
              debit.fromCreditsMicros >= 0, debit.overageMicros >= 0
        else { throw .inconsistent(seq: seq, "line items, credits and overage do not add up to the total") }
        let (overage, overageOverflow) = book.overage.addingReportingOverflow(debit.overageMicros)
        let (debited, debitedOverflow) = book.debitedFromCredits.addingReportingOverflow(debit.fromCreditsMicros)
        // (Only a damaged journal or checkpoint can hold a balance near
        // Int64.min: refused, not a trap at every start.)
        let (balance, balanceOverflow) = book.balance.subtractingReportingOverflow(debit.fromCreditsMicros)
        guard !overageOverflow && !debitedOverflow && !balanceOverflow else { throw .overflow(seq: seq) }
        var lifetime = book.lifetime
        for line in debit.lines {
            let (input, output) = Self.tokens(line)
            guard let next = lifetime.adding(lineKey: line.key, amount: line.amountMicros, quantity: line.quantity,
                                             inputTokens: input, outputTokens: output)
            else { throw .overflow(seq: seq) }
            lifetime = next
        }
        return (overage, debited, balance, lifetime)
    }

    /// Applies an accepted debit to its account's books in place. Every
    /// check runs before the first change (`sums`), so a refused entry
    /// changes nothing.
    static func applyDebit(
        _ debit: Billing_Journal_V1_DebitAccepted, at atMicros: Int64, seq: Int64, runHash: Int64? = nil,
        to book: inout AccountBook
    ) throws(ApplyError) {
        let (overage, debited, balance, lifetime) = try Self.sums(after: debit, seq: seq, book: &book)

        let period = book.rememberPeriod(containing: atMicros / 1_000_000)
        if period.start != book.periodStart {
            book.periodStart = period.start
            book.runsInPeriod.removeAll()
        }
        if !debit.runID.isEmpty {
            book.runsInPeriod.insert(runHash ?? JournalKeyHash.run(account: debit.accountID, run: debit.runID))
        }
        book.noteWorkspace(debit.workspaceID)
        book.balance = balance
        book.debitedFromCredits = debited
        book.overage = overage
        if debit.overageMicros > 0, atMicros / 1_000_000 >= book.lifecycle.currentPeriod.end {
            book.overageAfterPeriodEnd += debit.overageMicros  // (a part of `overage`, which fits)
        }
        book.lifetime = lifetime
        let day = floorDivide(atMicros, 86_400_000_000)
        for line in debit.lines {
            let (input, output) = Self.tokens(line)
            let added = UsageCell(amount: line.amountMicros, quantity: line.quantity, inputTokens: input, outputTokens: output)
            // A line of nothing (zero quantity and amount: honest data, a
            // chunk of a run) makes no cell: such cells were kept forever and
            // in every checkpoint, and a free debit could add 256 of them.
            guard !added.isNothing else { continue }
            let key = UsageKey(day: day, agentID: debit.agentID, lineKey: line.key)
            // In place, one hash of the key: no copy of the cell table per debit.
            let cells = book.usage.count
            book.usage[key, default: UsageCell()].add(amount: added.amount, quantity: added.quantity,
                                                      inputTokens: added.inputTokens, outputTokens: added.outputTokens)
            if book.usage.count != cells { book.usageDays.add(key) }
        }
    }
}

/// A gateway charge journaled as started (`ChargeStarted` at `seq`) whose
/// outcome is not recorded yet.
public struct PendingCharge: Sendable, Equatable {
    public var seq: Int64
    public var started: Billing_Journal_V1_ChargeStarted

    public init(seq: Int64, started: Billing_Journal_V1_ChargeStarted) {
        self.seq = seq
        self.started = started
    }
}

/// A service API key as the ledger keeps it (the hash, never the key).
public struct ApiKeyRecord: Sendable, Equatable {
    public var created: Billing_Journal_V1_ApiKeyCreated
    public var createdUnix: Int64
    /// 0 while valid.
    public var revokedUnix: Int64
}

extension LedgerState {
    static func tokens(_ line: Billing_Journal_V1_PricedLine) -> (input: Int64, output: Int64) {
        if case .llm(let llm) = line.item.kind { return (llm.inputTokens, llm.outputTokens) }
        return (0, 0)
    }
}

extension LedgerState.ApplyError: CustomStringConvertible {
    /// In words (what `serve` prints when recovery refuses a database).
    public var description: String {
        switch self {
        case .outOfOrder(let expected, let got): "journal entry \(got) where \(expected) was expected"
        case .unknownAccount(let seq, let account): "journal entry \(seq) names account \(account), which does not exist"
        case .overflow(let seq): "journal entry \(seq): a total would pass the largest amount or quantity the ledger keeps"
        case .inconsistent(let seq, let what): "at seq \(seq): \(what)"
        }
    }
}
