public import BillingCore
public import BillingProto

extension LedgerState {
    /// The state as a checkpoint message (sorted, so equal states encode equally).
    public func checkpoint(writtenAtMicros: Int64) -> Billing_Journal_V1_Checkpoint {
        var checkpoint = checkpointRest()
        checkpoint.seq = lastSeq
        checkpoint.writtenUnixMicros = writtenAtMicros
        checkpoint.rulesVersion = Self.rulesVersion
        checkpoint.accounts = accounts.keys.sorted().map { id in
            let book = accounts[id]!
            var account = Self.accountStateWithoutBulk(book)
            account.runHashes = RadixSort.sorted(book.runsInPeriod)
            account.usage = Self.sortedUsage(book).map { key, cell in
                var rollup = Billing_Journal_V1_UsageRollup()
                rollup.day = key.day
                rollup.agentID = key.agentID
                rollup.lineKey = key.lineKey
                rollup.amountMicros = cell.amount
                rollup.quantity = cell.quantity
                rollup.inputTokens = cell.inputTokens
                rollup.outputTokens = cell.outputTokens
                return rollup
            }
            return account
        }
        return checkpoint
    }

    /// An account's state in a checkpoint but its usage roll-ups and run
    /// hashes (the bulk, which `encodedCheckpoint` writes straight from the book).
    static func accountStateWithoutBulk(_ book: AccountBook) -> Billing_Journal_V1_AccountState {
        var account = Billing_Journal_V1_AccountState()
        account.accountID = book.accountID
        account.plan = book.plan
        account.periodAnchorUnix = book.periodAnchor
        account.balanceMicros = book.balance
        account.overageMicros = book.overage
        account.overageAfterPeriodEndMicros = book.overageAfterPeriodEnd
        account.periodStartUnix = book.periodStart
        account.workspaces = book.workspaces.sorted()
        account.grantedMicros = book.granted
        account.debitedMicros = book.debitedFromCredits
        account.displayName = book.displayName
        account.billingEmail = book.billingEmail
        account.createdUnix = book.createdUnix
        account.lifecycle = Self.lifecycleState(book)
        if let method = book.paymentMethod { account.paymentMethod = method }
        if let pending = book.pendingPaymentMethod { account.pendingPaymentMethod = pending }
        account.charges = book.charges
        account.invoiceSequences = book.invoiceSequences
        account.requestKeys = requestKeyRecords(book)
        account.grantKeys = book.grantKeys.keys.sorted().map { key in
            var grant = Billing_Journal_V1_GrantKey()
            grant.idempotencyKey = key
            grant.seq = book.grantKeys[key]!.seq
            grant.amountMicros = book.grantKeys[key]!.amount
            if let note = book.grantKeys[key]!.note { grant.note = note }
            return grant
        }
        return account
    }

    /// An account's request keys in checkpoint order (by key).
    static func requestKeyRecords(_ book: AccountBook) -> [Billing_Journal_V1_RequestKey] {
        book.requestKeys.keys.sorted().map { key in
            let stored = book.requestKeys[key]!
            var record = Billing_Journal_V1_RequestKey()
            record.key = key
            record.request = stored.request
            record.seq = stored.seq
            record.invoiceSequence = stored.invoiceSequence
            record.effect = stored.effect
            record.chargeID = stored.chargeID
            return record
        }
    }

    /// Usage cells in checkpoint order: by day, agent, line item.
    static func sortedUsage(_ book: AccountBook) -> [(key: UsageKey, value: UsageCell)] {
        book.usage.sorted { ($0.key.day, $0.key.agentID, $0.key.lineKey) < ($1.key.day, $1.key.agentID, $1.key.lineKey) }
    }

    /// What a checkpoint holds beside the accounts (and its seq and time).
    func checkpointRest() -> Billing_Journal_V1_Checkpoint {
        var checkpoint = Billing_Journal_V1_Checkpoint()
        checkpoint.invoices = invoices.keys.sorted().map { sequence in
            let record = invoices[sequence]!
            var state = Billing_Journal_V1_InvoiceState()
            state.invoice = record.invoice
            state.attemptPending = record.attemptPending
            state.attempts = record.attempts
            state.reactivates = record.reactivates
            return state
        }
        checkpoint.testClockUnix = testClockUnix
        checkpoint.testClockMoved = testClockMoved
        checkpoint.plans = Self.journalPlans(plans, graceSeconds: configuredGraceSeconds, actor: "")
        checkpoint.apiKeys = apiKeys.keys.sorted().map { id in
            let record = apiKeys[id]!
            var key = Billing_Journal_V1_ApiKeyState()
            key.created = record.created
            key.createdUnix = record.createdUnix
            key.revokedUnix = record.revokedUnix
            return key
        }
        checkpoint.pendingCharges = pendingCharges.values.sorted { $0.seq < $1.seq }.map { pending in
            var state = Billing_Journal_V1_PendingCharge()
            state.seq = pending.seq
            state.started = pending.started
            return state
        }
        return checkpoint
    }

    public init(checkpoint: Billing_Journal_V1_Checkpoint, plans: PlanCatalog = .default) {
        self.init(plans: checkpoint.hasPlans ? (Self.plans(checkpoint.plans) ?? plans) : plans)
        if checkpoint.hasPlans, checkpoint.plans.hasGraceSeconds { configuredGraceSeconds = checkpoint.plans.graceSeconds }
        lastSeq = checkpoint.seq
        testClockUnix = checkpoint.testClockUnix
        testClockMoved = checkpoint.testClockMoved
        for state in checkpoint.invoices {
            invoices[state.invoice.sequence] = InvoiceRecord(invoice: state.invoice, attemptPending: state.attemptPending, attempts: state.attempts,
                                                                reactivates: state.reactivates)
        }
        for account in checkpoint.accounts {
            var book = AccountBook(accountID: account.accountID, lifecycle: Self.lifecycle(account.lifecycle))
            book.displayName = account.displayName
            book.billingEmail = account.billingEmail
            book.createdUnix = account.createdUnix
            if account.lifecycle.hasContract { book.contractTerms = account.lifecycle.contract }
            if account.hasPaymentMethod { book.paymentMethod = account.paymentMethod }
            if account.hasPendingPaymentMethod { book.pendingPaymentMethod = account.pendingPaymentMethod }
            book.charges = account.charges
            book.invoiceSequences = account.invoiceSequences
            for record in account.requestKeys {
                book.requestKeys[record.key] = RequestKeyRecord(
                    request: record.request, seq: record.seq, invoiceSequence: record.invoiceSequence,
                    effect: record.effect, chargeID: record.chargeID)
            }
            book.balance = account.balanceMicros
            book.overage = account.overageMicros
            // A part of the overage (a damaged value would trap the arithmetic on it).
            book.overageAfterPeriodEnd = min(max(account.overageAfterPeriodEndMicros, 0), max(book.overage, 0))
            book.periodStart = account.periodStartUnix
            book.runsInPeriod = Set(account.runHashes)
            // Checkpoints written before run hashes name the runs.
            for run in account.runsInPeriod {
                book.runsInPeriod.insert(JournalKeyHash.run(account: account.accountID, run: run))
            }
            book.workspaces = Set(account.workspaces)
            book.granted = account.grantedMicros
            book.debitedFromCredits = account.debitedMicros
            // (Checkpoints of older builds hold cells of nothing: the journal's
            // books, replayed by these rules, have none.)
            for rollup in account.usage {
                let cell = UsageCell(amount: rollup.amountMicros, quantity: rollup.quantity,
                                     inputTokens: rollup.inputTokens, outputTokens: rollup.outputTokens)
                guard !cell.isNothing else { continue }
                let key = UsageKey(day: rollup.day, agentID: rollup.agentID, lineKey: rollup.lineKey)
                if book.usage[key] == nil { book.usageDays.add(key) }
                book.usage[key] = cell
                // Lifetime sums are derived; they fit, since they did when the debits were applied.
                book.lifetime = book.lifetime.adding(lineKey: rollup.lineKey, amount: rollup.amountMicros, quantity: rollup.quantity,
                                                     inputTokens: rollup.inputTokens, outputTokens: rollup.outputTokens) ?? book.lifetime
            }
            for grant in account.grantKeys {
                book.grantKeys[grant.idempotencyKey] = GrantRecord(seq: grant.seq, amount: grant.amountMicros, note: grant.hasNote ? grant.note : nil)
            }
            accounts[account.accountID] = book
        }
        for key in checkpoint.apiKeys {
            apiKeys[key.created.keyID] = ApiKeyRecord(created: key.created, createdUnix: key.createdUnix, revokedUnix: key.revokedUnix)
        }
        for pending in checkpoint.pendingCharges {
            pendingCharges[pending.started.gatewayKey] = PendingCharge(seq: pending.seq, started: pending.started)
        }
        rescheduleAll()
    }

    /// The replay rules' version, in every checkpoint (`rules_version`).
    /// 2 (session 18): a move to a plan with a workspace limit clears the
    /// workspaces, a period close keeps runs already counted in the new
    /// period, a card given to pay an invoice clears a waiting replacement.
    /// 3 (session 19): a contract invoice carries the contract's reference
    /// as issued (`Invoice.contract_reference`); overage of debits made
    /// after a period's end, before it closed, is billed with the next.
    /// 4 (session 20): a contract that sets or changes an Enterprise
    /// account's workspace limit counts workspaces from the change on; an
    /// Enterprise invoice without a period price carries the contract's
    /// reference too.
    /// Raise it whenever `apply` computes different books from the same journal.
    public static let rulesVersion: Int32 = 4

    /// Whether recovery loads `checkpoint`'s books: written by these rules,
    /// and sound. A checkpoint that decodes but holds what no ledger writes
    /// (a damaged or hostile file: a pending "downgrade" to a higher plan, a
    /// trial pause without a trial, an anchor past year 9999, invoice
    /// numbers with gaps) would trap the lifecycle's invariant checks or its
    /// calendar arithmetic; it is passed over for the journal instead.
    public static func usable(_ checkpoint: Billing_Journal_V1_Checkpoint) -> Bool {
        checkpoint.rulesVersion == rulesVersion && sound(checkpoint)
    }

    static func sound(_ checkpoint: Billing_Journal_V1_Checkpoint) -> Bool {
        let instants: ClosedRange<Int64> = 0...LedgerState.latestInstantUnix  // to 9999-12-31
        for account in checkpoint.accounts {
            let state = account.lifecycle
            guard instants.contains(state.periodAnchorUnix), instants.contains(state.periodStartUnix),
                  instants.contains(state.trialEndsUnix), instants.contains(account.periodStartUnix),
                  state.graceSeconds >= 0, !state.hasPendingPaymentMethod_p || state.hasPaymentMethod_p
            else { return false }
            let plan = Self.plan(state.plan) ?? .free
            if state.hasPendingChange {
                // Effective at the current period's end: up to a period past
                // the last instant (a downgrade made in 9999-12 applies in
                // 10000-01; session 30, a diff review: such books were taken
                // as damaged, the journal replayed from its start at every start).
                guard let target = Self.plan(state.pendingChange.toPlan), target < plan,
                      (0...LedgerState.latestPeriodEndUnix).contains(state.pendingChange.effectiveUnixSeconds)
                else { return false }
            }
            switch state.pauseReason {
            case .trialEnded: guard state.trialEndsUnix != 0, !state.hasPaymentMethod_p else { return false }
            case .pastDue: guard !state.pastDue.isEmpty else { return false }
            default: break
            }
            if plan == .enterprise, state.hasContract, !validContract(state.contract) { return false }
        }
        // Numbered 1...n: the next invoice's number is n + 1.
        let sequences = checkpoint.invoices.map(\.invoice.sequence).sorted()
        return sequences.indices.allSatisfy { sequences[$0] == Int64($0) + 1 }
    }

    /// The highest seq a journal may reach (2⁶² : a million entries a second
    /// for 146,000 years), far enough below Int64.max that seq arithmetic
    /// never overflows.
    public static let maxSeq: Int64 = 1 << 62

    /// Loads the newest checkpoint (shown to `loading` first, with whether
    /// its books are loaded: `usable`) and replays the journal after it,
    /// showing each replayed entry to `replaying`. `serving` (a ledger, even
    /// one only read by an offline command): a checkpoint past the journal's
    /// end is refused; false for an audit, which compares it instead and
    /// reports the difference.
    public static func recover(from store: any LedgerStore, plans: PlanCatalog = .default, serving: Bool = true,
                               loading: (Billing_Journal_V1_Checkpoint, _ booksLoaded: Bool) -> Void = { _, _ in },
                               replaying: (Billing_Journal_V1_Entry) -> Void = { _ in }) throws -> (state: LedgerState, replayed: Int) {
        let checkpoint = try store.latestCheckpoint()
        let usable = checkpoint.flatMap { Self.usable($0) ? $0 : nil }
        if let checkpoint { loading(checkpoint, usable != nil) }  // (its key filter holds whatever the rules)
        // Books computed by other rules are not loaded: the journal is
        // replayed from its start instead (once: later checkpoints carry
        // these rules).
        // A seq no journal reaches (a damaged or hostile file) would overflow
        // the arithmetic on seqs that follows: refused, not a crash.
        if let checkpoint, !(0...Self.maxSeq).contains(checkpoint.seq) {
            throw ApplyError.inconsistent(seq: checkpoint.seq, "a checkpoint at an impossible seq")
        }
        // A checkpoint is written only once its seq is durable: one past the
        // journal's end means journal entries were lost (a damaged file, a
        // journal restored without its checkpoints). Refused, saying so
        // (session 28, a review: loaded, every commit then failed with
        // "expected seq", and the server reloaded forever).
        if serving, let checkpoint, checkpoint.seq > 0, case let last = try store.lastSeq(), checkpoint.seq > last {
            throw ApplyError.inconsistent(seq: checkpoint.seq,
                                          "the newest checkpoint is past the journal's last entry (\(last)): journal entries it holds are missing (a damaged or partly restored database); restore the whole database (billing verify lists what differs)")
        }
        var state = usable.map { LedgerState(checkpoint: $0, plans: plans) } ?? LedgerState(plans: plans)
        var replayed = 0
        try store.forEachEntry(after: state.lastSeq) { entry in
            guard entry.seq <= Self.maxSeq else { throw ApplyError.inconsistent(seq: entry.seq, "an entry at an impossible seq") }
            try state.apply(entry)
            replaying(entry)
            replayed += 1
        }
        return (state, replayed)
    }
}
