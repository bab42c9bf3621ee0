public import BillingCore
public import BillingProto

/// One account's books in memory.
public struct AccountBook: Sendable, Equatable {
    // Stored properties in the order a debit touches them: Swift lays a
    // struct out in declaration order, so the fields `decide` and `apply`
    // read and write share the book's first cache lines (the books of
    // 10,000 accounts are not in cache between one debit and the next).
    public var balance: Int64 = 0
    /// Uncovered usage accrued for the next invoice (Pro/Enterprise); reset
    /// when a period closes and it is invoiced.
    public var overage: Int64 = 0
    /// The part of `overage` accrued by debits made at or after the end of
    /// the lifecycle's current period, before the clock closed it (the
    /// ticker runs each second; a test clock or a mass close is slower):
    /// the close invoices the rest, and this carries into the next period,
    /// the one GetUsage puts those debits in.
    public var overageAfterPeriodEnd: Int64 = 0
    /// Start of the period `runsInPeriod` counts.
    public var periodStart: Int64
    /// The billing period metering last computed for this book (derived:
    /// see `period(containing:)`).
    var meteringPeriod = PeriodMemo()
    /// A workspace known to be in `workspaces`: the last one a debit named
    /// (derived: see `noteWorkspace`).
    var lastWorkspace = WorkspaceMemo()
    /// Runs counted in the period, as `JournalKeyHash.run(account:run:)`:
    /// 8 bytes per run in memory and in checkpoints instead of its name. Two
    /// runs of one account and period sharing a 64-bit hash (odds ~n²/2⁶⁵
    /// for n runs: ~3·10⁻⁶ at 10 million) would count as one run.
    public var runsInPeriod: Set<Int64> = []
    public var workspaces: Set<String> = []
    public var usage: [UsageKey: UsageCell] = [:]
    /// The usage cells' keys by day (derived: not stored, not compared), so
    /// a range of days is read without visiting every cell of the account.
    var usageDays = UsageDayIndex()
    public var debitedFromCredits: Int64 = 0
    /// Lifetime sums of every usage cell (derived, not stored): while each
    /// fits in Int64, so does any sum of cells GetUsage can report.
    public var lifetime = UsageTotals()
    /// Plan, trial, pause, pending change, past-due invoices, billing period.
    public var lifecycle: AccountLifecycle
    public let accountID: String
    public var displayName = ""
    public var billingEmail = ""
    /// When the account was created (unix seconds).
    public var createdUnix: Int64 = 0
    /// Lifetime totals, for reconciliation: balance == granted - fromCredits.
    public var granted: Int64 = 0
    /// Idempotency keys of grants: key → (seq, amount).
    public var grantKeys: [String: GrantRecord] = [:]
    /// The method charged now, and a replacement waiting for the next cycle.
    public var paymentMethod: Billing_Journal_V1_PaymentMethodSet?
    public var pendingPaymentMethod: Billing_Journal_V1_PaymentMethodSet?
    /// Enterprise terms as the operator set them (with the fields metering
    /// does not use: dates, notes); nil off Enterprise.
    public var contractTerms: Billing_V1_EnterpriseContract?
    /// Every charge attempt, oldest first.
    public var charges: [Billing_V1_Charge] = []
    /// Sequences of the account's invoices, oldest first.
    public var invoiceSequences: [Int64] = []
    /// Idempotency keys of plan changes, purchases and invoice payments,
    /// by "<kind>:<key>".
    public var requestKeys: [String: RequestKeyRecord] = [:]

    public init(accountID: String, lifecycle: AccountLifecycle) {
        self.accountID = accountID
        self.lifecycle = lifecycle
        self.periodStart = lifecycle.currentPeriod.start
    }

    /// "trial", "free", "pro" or "enterprise": the name the journal and the
    /// audit log use.
    public var plan: String { lifecycle.trialEndsAt != nil ? "trial" : lifecycle.plan.rawValue }

    public var periodAnchor: Int64 { lifecycle.periodAnchor }

    /// `BillingPeriod.containing(now, anchor: periodAnchor)`, from the memo
    /// when it holds that period: every debit asks twice (to decide and to
    /// apply), and the date arithmetic was ~2 % of a debit's CPU.
    func period(containing now: Int64) -> BillingPeriod {
        let anchor = periodAnchor
        if meteringPeriod.anchor == anchor, let period = meteringPeriod.period, now >= period.start, now < period.end {
            return period
        }
        return BillingPeriod.containing(now, anchor: anchor)
    }

    /// The same, remembering the period for the next debit.
    mutating func rememberPeriod(containing now: Int64) -> BillingPeriod {
        let period = self.period(containing: now)
        if meteringPeriod.period != period || meteringPeriod.anchor != periodAnchor {
            meteringPeriod = PeriodMemo(anchor: periodAnchor, period: period)
        }
        return period
    }

    /// Adds a debit's workspace to `workspaces`. Most debits name the same
    /// workspace as the account's last one: a comparison of two short texts
    /// instead of hashing one into the set (~1 % of a debit's CPU).
    mutating func noteWorkspace(_ id: String) {
        guard !id.isEmpty, id != lastWorkspace.id else { return }
        workspaces.insert(id)
        lastWorkspace.id = id
    }

    /// The terms metering applies (a contract's on Enterprise).
    public func terms(in plans: PlanCatalog) -> PlanTerms { lifecycle.effectiveTerms(plans) }

    /// The earliest instant (unix seconds) a debit is dated at: the start of
    /// the current period, or of the period the runs are counted in when
    /// that is later (a debit after a period's end, before the tick closed
    /// it, counts in the next). A wall clock stepped back across either —
    /// or a test clock that moved before a commit failed, then a restart —
    /// dated debits in a period whose runs were already left behind: its
    /// run quota started over (a review saw 7 runs in a period of 3).
    public var earliestDebitTime: Int64 { max(lifecycle.currentPeriod.start, periodStart) }

    /// Whether uncovered usage may accrue as overage instead of being refused.
    public func accruesOverage(in plans: PlanCatalog) -> Bool { terms(in: plans).accruesOverage }
}

/// A billing period remembered with the anchor it was computed for. The
/// periods of one anchor tile time, so a remembered period that contains an
/// instant is the one `BillingPeriod.containing` computes for it. Derived
/// from the books, so never part of their equality (any two are equal).
struct PeriodMemo: Sendable, Equatable {
    var anchor: Int64 = 0
    var period: BillingPeriod?

    static func == (lhs: PeriodMemo, rhs: PeriodMemo) -> Bool { true }
}

extension AccountBook {
    /// Whether `usageDays` indexes every usage cell (not so in books built
    /// by hand, in tests).
    var isUsageIndexed: Bool { usageDays.count == usage.count }
}

/// The keys of a book's usage cells by day, kept where a cell is created
/// (cells are never removed). Derived, so never part of the books' equality.
struct UsageDayIndex: Sendable, Equatable {
    private(set) var byDay: [Int64: [UsageKey]] = [:]
    /// Keys indexed: equal to the cells' count while the index is whole.
    private(set) var count = 0

    mutating func add(_ key: UsageKey) {
        byDay[key.day, default: []].append(key)
        count += 1
    }

    static func == (lhs: UsageDayIndex, rhs: UsageDayIndex) -> Bool { true }
}

/// A workspace remembered as being in a book's `workspaces` (which only
/// grows). Derived, so never part of the books' equality.
struct WorkspaceMemo: Sendable, Equatable {
    var id = ""

    static func == (lhs: WorkspaceMemo, rhs: WorkspaceMemo) -> Bool { true }
}

/// What a request with an idempotency key did: its fingerprint (to refuse
/// the key with another request) and the journal entry that recorded it.
public struct RequestKeyRecord: Sendable, Equatable {
    public var request: String
    public var seq: Int64
    /// The invoice the request issued or paid (0: none).
    public var invoiceSequence: Int64 = 0
    /// A plan change's `Billing_V1_PlanChangeEffect` raw value.
    public var effect: Int32 = 0
    /// The charge the request made ("": none).
    public var chargeID = ""

    public init(request: String, seq: Int64, invoiceSequence: Int64 = 0, effect: Int32 = 0, chargeID: String = "") {
        self.request = request
        self.seq = seq
        self.invoiceSequence = invoiceSequence
        self.effect = effect
        self.chargeID = chargeID
    }
}

/// Usage cells as GetUsage reads them: each (day, agent, line item) once.
public typealias UsageCells = [(key: UsageKey, value: UsageCell)]

/// A usage roll-up cell: one UTC day × agent × line item.
public struct UsageKey: Hashable, Sendable {
    /// Days since the Unix epoch (UTC).
    public let day: Int64
    public let agentID: String
    public let lineKey: String

    public init(day: Int64, agentID: String, lineKey: String) {
        self.day = day
        self.agentID = agentID
        self.lineKey = lineKey
    }
}

public struct UsageCell: Sendable, Equatable {
    mutating func add(amount: Int64, quantity: Int64, inputTokens: Int64, outputTokens: Int64) {
        self.amount += amount
        self.quantity += quantity
        self.inputTokens += inputTokens
        self.outputTokens += outputTokens
    }

    public var amount: Int64 = 0
    public var quantity: Int64 = 0
    public var inputTokens: Int64 = 0
    public var outputTokens: Int64 = 0

    public init(amount: Int64 = 0, quantity: Int64 = 0, inputTokens: Int64 = 0, outputTokens: Int64 = 0) {
        self.amount = amount
        self.quantity = quantity
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }

    /// A cell of nothing (a line item of zero quantity and amount): none is
    /// kept, and none makes a usage bucket.
    public var isNothing: Bool { amount == 0 && quantity == 0 && inputTokens == 0 && outputTokens == 0 }
}

/// Sums over usage cells, every addition checked.
public struct UsageTotals: Sendable, Equatable {
    public var amount: Int64 = 0
    public var inputTokens: Int64 = 0
    public var outputTokens: Int64 = 0
    public var toolCalls: Int64 = 0
    public var storageBytes: Int64 = 0
    /// Input plus output tokens: an llm cell's quantity, bounded like the
    /// other kinds' (input and output apart fit while their sum might not).
    public var llmTokens: Int64 = 0

    public init() {}

    /// These totals plus one line item, or nil when any sum would overflow.
    public func adding(lineKey: String, amount: Int64, quantity: Int64, inputTokens: Int64, outputTokens: Int64) -> UsageTotals? {
        var next = self
        var overflow = false
        func add(_ value: inout Int64, _ delta: Int64) {
            let (sum, o) = value.addingReportingOverflow(delta)
            value = sum
            overflow = overflow || o
        }
        add(&next.amount, amount)
        add(&next.inputTokens, inputTokens)
        add(&next.outputTokens, outputTokens)
        switch LineItem.unit(ofKey: lineKey) {
        case .calls?: add(&next.toolCalls, quantity)
        case .bytes?: add(&next.storageBytes, quantity)
        case .tokens?: add(&next.llmTokens, quantity)
        case nil: break
        }
        return overflow ? nil : next
    }
}

public struct GrantRecord: Sendable, Equatable {
    public var seq: Int64
    public var amount: Int64
    /// The grant's note (its reason); nil when loaded from a checkpoint
    /// written before notes were kept.
    public var note: String?

    /// Whether this is the grant of `amount` with `note`. A note unknown
    /// (nil: an older checkpoint's) matches any: the books such a checkpoint
    /// loads are the journal's (`billing verify` compares them), and a
    /// retry's note cannot be compared with it.
    public func matches(amount: Int64, note: String?) -> Bool {
        self.amount == amount && (self.note == nil || note == nil || self.note == note)
    }

    public static func == (lhs: GrantRecord, rhs: GrantRecord) -> Bool {
        lhs.seq == rhs.seq && lhs.matches(amount: rhs.amount, note: rhs.note)
    }
}
