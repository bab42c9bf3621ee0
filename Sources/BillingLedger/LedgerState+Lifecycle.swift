public import BillingCore
public import BillingProto

/// An invoice as the ledger keeps it, and whether a payment attempt is owed.
public struct InvoiceRecord: Sendable, Equatable {
    public var invoice: Billing_V1_Invoice
    /// Issued with a payment to attempt that is not recorded yet (a crash
    /// between the two leaves it set; start-up attempts it).
    public var attemptPending: Bool
    public var attempts: Int32
    /// The first period of a paused trial's reactivation: paid, the trial
    /// restarts; declined, it is void (`AccountAction.reactivateOnPayment`).
    public var reactivates: Bool

    public init(invoice: Billing_V1_Invoice, attemptPending: Bool, attempts: Int32, reactivates: Bool = false) {
        self.invoice = invoice
        self.attemptPending = attemptPending
        self.attempts = attempts
        self.reactivates = reactivates
    }
}

/// Account creation, lifecycle events, charges and purchases: each applied
/// through `BillingCore.AccountLifecycle`, so the live path, replay and
/// `billing verify` issue the same invoices from the same journal.
extension LedgerState {
    /// The sequence the next invoice gets: invoices are never deleted, so
    /// numbers have no gaps.
    public var nextInvoiceSequence: Int64 { Int64(invoices.count) + 1 }

    /// 9999-12-31 23:59:59 UTC: the last instant the books keep (the
    /// calendar arithmetic of periods and trials stops there).
    static let latestInstantUnix: Int64 = 253_402_300_799
    /// The latest a period that starts by `latestInstantUnix` ends (a month
    /// is at most 31 days): where a pending downgrade can take effect.
    static let latestPeriodEndUnix: Int64 = latestInstantUnix + 31 * 86_400

    /// The largest total an invoice shows: lines that add up past it are
    /// capped there (in cents: Int64's largest whole cent), never wrapped.
    static func invoiceTotalCap(inCents: Bool) -> Int64 {
        inCents ? Money(micros: .max).roundedToCent.micros : .max
    }

    func newBook(_ created: Billing_Journal_V1_AccountCreated, at: Int64, seq: Int64) throws(ApplyError) -> AccountBook {
        guard created.graceSeconds >= 0, created.trialCreditMicros >= 0 else {
            throw .inconsistent(seq: seq, "negative grace or trial credit")
        }
        let anchor = created.periodAnchorUnix
        // Instants the calendar arithmetic can take (to 9999-12-31): a
        // damaged file's absurd anchor would trap it, not be refused.
        guard (0...Self.latestInstantUnix).contains(anchor), (0...Self.latestInstantUnix).contains(created.trialEndsUnix) else {
            throw .inconsistent(seq: seq, "an account's period anchor or trial end is out of range")
        }
        var contractTerms: Billing_V1_EnterpriseContract?
        let lifecycle: AccountLifecycle
        switch created.plan {
        case "trial":
            // Journals written before trials were stored: the catalog's length.
            let trialEnd = created.trialEndsUnix != 0 ? created.trialEndsUnix : anchor + Int64(plans.trialDays) * 86_400
            guard trialEnd > anchor else { throw .inconsistent(seq: seq, "a trial that ends before it starts") }
            lifecycle = AccountLifecycle(
                plan: plans.trialPlan, trialEndsAt: trialEnd, hasPaymentMethod: false, hasPendingPaymentMethod: false,
                pendingChange: nil, pauseReason: nil, pastDueInvoices: [], graceSeconds: created.graceSeconds,
                periodAnchor: anchor, currentPeriod: BillingPeriod.containing(anchor, anchor: anchor), contract: nil)
        case "free", "pro", "enterprise":
            let plan = Plan(rawValue: created.plan)!
            if plan == .enterprise { contractTerms = Self.defaultContractTerms }
            lifecycle = .active(plan: plan, startingAt: anchor, graceSeconds: created.graceSeconds,
                                hasPaymentMethod: false, contract: contractTerms.map(Self.contract))
        default:
            throw .inconsistent(seq: seq, "unknown plan \(created.plan)")
        }
        var book = AccountBook(accountID: created.accountID, lifecycle: lifecycle)
        book.displayName = created.displayName
        book.billingEmail = created.billingEmail
        book.createdUnix = at
        book.contractTerms = contractTerms
        book.balance = created.trialCreditMicros
        book.granted = created.trialCreditMicros
        // The quota counts from the period the account was created in.
        book.periodStart = BillingPeriod.containing(at, anchor: anchor).start
        return book
    }

    /// An Enterprise account an operator created without terms yet: no
    /// price, usage at list price, no limits.
    static var defaultContractTerms: Billing_V1_EnterpriseContract {
        var terms = Billing_V1_EnterpriseContract()
        terms.usageRateBasisPoints = 10_000
        return terms
    }

    mutating func applyLifecycle(_ event: Billing_Journal_V1_LifecycleEvent, seq: Int64) throws(ApplyError) {
        guard var book = accounts[event.accountID] else { throw .unknownAccount(seq: seq, event.accountID) }
        let at = event.atUnix
        let due = book.lifecycle.nextDueTransition(now: at)
        let domainEvent: AccountEvent
        var method: Billing_Journal_V1_PaymentMethodSet?
        var periodOverage: Int64?
        switch event.event {
        case .trialEnded(let ended):
            guard case .trialEnd? = due else { throw .inconsistent(seq: seq, "no trial end due at \(at)") }
            domainEvent = .trialEnded(continuesWithoutPaymentMethod: ended.continuedWithoutPaymentMethod)
        case .graceExpired:
            guard case .graceEnd? = due else { throw .inconsistent(seq: seq, "no grace end due at \(at)") }
            domainEvent = .graceExpired
        case .periodEnded(let ended):
            guard case .periodEnd(let period)? = due, period.start == ended.periodStartUnix, period.end == ended.periodEndUnix
            else { throw .inconsistent(seq: seq, "period \(ended.periodStartUnix)..<\(ended.periodEndUnix) is not due at \(at)") }
            // All of it (journals before session 19 billed debits made after
            // the end with the closing period), or all but those.
            guard ended.overageMicros == book.overage || ended.overageMicros == book.overage - book.overageAfterPeriodEnd else {
                throw .inconsistent(seq: seq, "period overage \(ended.overageMicros) != the books' \(book.overage)")
            }
            periodOverage = ended.overageMicros
            domainEvent = .periodEnded(period, overage: Money(micros: ended.overageMicros))
        case .paymentMethodSet(let set):
            guard due == nil else { throw .inconsistent(seq: seq, "a request before a due transition") }
            method = set
            domainEvent = set.reactivatesOnPayment ? .paymentMethodAddedPayingFirst : .paymentMethodAdded
        case .planChange(let change):
            guard due == nil else { throw .inconsistent(seq: seq, "a request before a due transition") }
            guard let target = Self.plan(change.toPlan) else { throw .inconsistent(seq: seq, "unknown plan \(change.toPlan)") }
            if change.cancelsPending {
                guard target == book.lifecycle.plan else { throw .inconsistent(seq: seq, "a cancelling change to another plan") }
                domainEvent = .cancelPendingChange
            } else {
                domainEvent = target == .free ? .downgradeToFree : .changePlan(to: target)
            }
        case .pendingChangeCancelled:
            guard due == nil else { throw .inconsistent(seq: seq, "a request before a due transition") }
            domainEvent = .cancelPendingChange
        case .enterpriseContract(let terms):
            guard due == nil else { throw .inconsistent(seq: seq, "a request before a due transition") }
            guard Self.validContract(terms) else { throw .inconsistent(seq: seq, "contract terms out of range") }
            book.contractTerms = terms
            domainEvent = .enterpriseContractSet(Self.contract(terms), prorated: event.contractProrated)
        case nil:
            throw .inconsistent(seq: seq, "a lifecycle entry without an event")
        }
        let workspaceLimitBefore = book.terms(in: plans).workspaceLimit
        guard case .success(let actions) = book.lifecycle.apply(domainEvent, now: at, plans: plans) else {
            throw .inconsistent(seq: seq, "the journal holds a refused request")
        }
        // Nothing of the ledger's own changes before the last check above:
        // an entry refused leaves the books as they were.
        // Business time never goes back, even if a clock does across a restart.
        testClockUnix = max(testClockUnix, at)
        if case .enterpriseContract = event.event, book.lifecycle.plan == .enterprise,
           let limit = book.terms(in: plans).workspaceLimit, limit != workspaceLimitBefore {
            // A contract's new workspace limit counts from the change on, as
            // a move to a limited plan does (`.setPlan` below, on a move).
            book.workspaces.removeAll()
            book.lastWorkspace = WorkspaceMemo()
        }
        if let periodOverage, actions.contains(.resetQuota) {
            // Invoiced with the closed period: the new one accrues from what
            // debits made after its end left.
            book.overage -= periodOverage
            book.overageAfterPeriodEnd = 0
        }
        let issued = perform(actions, on: &book, at: at, method: method, seq: seq, inCents: event.invoiceLinesInCents,
                             referenceClosedContract: event.referenceClosedContract)
        if !event.idempotencyKey.isEmpty, case .planChange(let change) = event.event {
            book.requestKeys["plan:" + event.idempotencyKey] = RequestKeyRecord(
                request: "\(change.toPlan.rawValue)", seq: seq, invoiceSequence: issued ?? 0,
                effect: Int32(Self.effect(of: actions).rawValue))
        }
        accounts[event.accountID] = book
    }

    /// What a plan change did, from the actions it caused.
    public static func effect(of actions: [AccountAction]) -> Billing_V1_PlanChangeEffect {
        for action in actions {
            if case .scheduleDowngrade = action { return .scheduled }
            if case .setPlan = action { return .applied }
        }
        return .unchanged
    }

    /// Does what the lifecycle's actions say, in order; returns the
    /// sequence of the invoice issued, if any.
    /// `inCents`: the entry's `invoice_lines_in_cents` (`issueInvoice`);
    /// `referenceClosedContract`: its `reference_closed_contract`.
    @discardableResult
    mutating func perform(_ actions: [AccountAction], on book: inout AccountBook, at: Int64,
                          method: Billing_Journal_V1_PaymentMethodSet?, seq: Int64, inCents: Bool,
                          referenceClosedContract: Bool = false) -> Int64? {
        var lastIssued: Int64?
        for action in actions {
            switch action {
            case .resetQuota:
                // Runs a debit already counted in the new period, or in a
                // later one (debited after its start, before the ticker
                // closed the periods before it), stay.
                if book.periodStart < book.lifecycle.currentPeriod.start {
                    book.runsInPeriod.removeAll()
                    book.periodStart = book.lifecycle.currentPeriod.start
                }
            case .issueInvoice(let lines, let periodStart, let periodEnd, let planChange):
                lastIssued = issueInvoice(lines: lines, periodStart: periodStart, periodEnd: periodEnd, planChange: planChange,
                                          for: &book, at: at, inCents: inCents, referenceClosedContract: referenceClosedContract)
            case .attemptPayment:
                if let lastIssued {
                    invoices[lastIssued]!.attemptPending = true
                    schedule.setOwed(lastIssued, true)
                }
            case .usePaymentMethodNow:
                if var method {
                    method.method.effectiveUnixSeconds = at
                    book.paymentMethod = method
                }
            case .reactivateOnPayment:
                if let lastIssued {
                    invoices[lastIssued]!.reactivates = true
                } else if case .success(let restart) = book.lifecycle.apply(.reactivationPaid(periodStart: at), now: at, plans: plans) {
                    // Its lines rounded to nothing in cents: nothing to
                    // charge, the trial restarts now (as it did before).
                    perform(restart, on: &book, at: at, method: nil, seq: seq, inCents: inCents)
                }
            case .removePaymentMethod:
                book.paymentMethod = nil
                book.pendingPaymentMethod = nil
            case .schedulePaymentMethod(let effective):
                if var method {
                    method.method.effectiveUnixSeconds = effective
                    book.pendingPaymentMethod = method
                }
            case .applyScheduledPaymentMethod:
                if let pending = book.pendingPaymentMethod { book.paymentMethod = pending }
                book.pendingPaymentMethod = nil
            case .setPlan:
                // A plan with a workspace limit (Free's one) counts the
                // workspaces used from the change on: those used before it
                // (on a trial, on Pro) are not all kept.
                if book.terms(in: plans).workspaceLimit != nil {
                    book.workspaces.removeAll()
                    book.lastWorkspace = WorkspaceMemo()
                }
            case .pause, .unpause, .scheduleDowngrade, .cancelScheduledDowngrade:
                break  // the lifecycle value holds these
            }
        }
        if book.lifecycle.contract == nil { book.contractTerms = nil }
        return lastIssued
    }

    /// Issues the next invoice, OPEN; returns its sequence. `inCents` (the
    /// entry's `invoice_lines_in_cents`, every entry since session 22): each
    /// line is rounded half-up to the cent, a line that rounds to nothing is
    /// left out, and nothing is issued when no line is left (nil) — a charge
    /// of a fraction of a cent is none a gateway takes.
    mutating func issueInvoice(lines exact: [InvoiceLine], periodStart: Int64, periodEnd: Int64, planChange: Bool = false,
                               for book: inout AccountBook, at: Int64, inCents: Bool,
                               referenceClosedContract: Bool = false) -> Int64? {
        var lines = exact
        if inCents {
            lines = exact.compactMap { line in
                let cents = line.amount.roundedToCent
                return cents == .zero ? nil : InvoiceLine(kind: line.kind, description: line.description, amount: cents,
                                                          periodStart: line.periodStart, periodEnd: line.periodEnd)
            }
            guard !lines.isEmpty else { return nil }
        }
        let sequence = nextInvoiceSequence
        var invoice = Self.invoiceHeader(sequence: sequence, account: book.accountID, at: at)
        invoice.kind = planChange || lines.contains { if case .proration = $0.kind { true } else { false } } ? .planChange : .period
        invoice.periodStartUnixSeconds = periodStart
        invoice.periodEndUnixSeconds = periodEnd
        invoice.lineItems = lines.map(Self.invoiceLine)
        // The contract it bills, as of now (a later contract must not relabel
        // it): any invoice of an account on a contract — one billed only
        // through custom lines or usage (no period price) carries it too.
        // And (entries since session 25) the close of its last Enterprise
        // period: the plan is Pro already, the usage billed at the contract's rate.
        let closedContractUsage = referenceClosedContract && lines.contains { if case .meteredUsage = $0.kind { true } else { false } }
        if book.lifecycle.plan == .enterprise || closedContractUsage
            || lines.contains(where: { if case .subscription(.enterprise) = $0.kind { true } else { false } }),
           let reference = book.contractTerms?.contractReference {
            invoice.contractReference = reference
        }
        // Each line fits in Int64; a sum past it is capped as a metered usage
        // charge is (`EnterpriseContract.usageCharge`), never wrapped negative.
        // (Lines are never negative. In cents, capped at the largest whole cent.)
        let cap = Self.invoiceTotalCap(inCents: inCents)
        let total = lines.reduce(Int64(0)) { sum, line in
            let (next, overflow) = sum.addingReportingOverflow(line.amount.micros)
            return overflow || next > cap ? cap : next
        }
        invoice.subtotalMicros = total
        invoice.totalMicros = total
        invoice.amountDueMicros = total
        invoice.payLink = Self.payLink(invoice.invoiceID)
        invoices[sequence] = InvoiceRecord(invoice: invoice, attemptPending: false, attempts: 0)
        book.invoiceSequences.append(sequence)
        return sequence
    }

    static func invoiceHeader(sequence: Int64, account: String, at: Int64) -> Billing_V1_Invoice {
        var invoice = Billing_V1_Invoice()
        invoice.sequence = sequence
        invoice.number = invoiceNumber(sequence)
        invoice.invoiceID = "in_\(sequence)"
        invoice.accountID = account
        invoice.status = .open
        invoice.issuedUnixSeconds = at
        invoice.dueUnixSeconds = at
        invoice.currency = "USD"
        return invoice
    }

    /// "INV-000042".
    public static func invoiceNumber(_ sequence: Int64) -> String { Banner.invoiceNumber(sequence) }

    /// Where the app's payment update flow for an invoice lives.
    public static func payLink(_ invoiceID: String) -> String { "/billing/invoices/\(invoiceID)/pay" }

    static func invoiceLine(_ line: InvoiceLine) -> Billing_V1_InvoiceLineItem {
        var item = Billing_V1_InvoiceLineItem()
        switch line.kind {
        case .subscription(.enterprise): item.kind = .contractFee
        case .subscription: item.kind = .planFee
        case .proration: item.kind = .proration
        case .meteredUsage: item.kind = .meteredUsage
        case .custom: item.kind = .custom
        }
        item.description_p = line.description
        item.quantity = 1
        item.unitAmountMicros = line.amount.micros
        item.amountMicros = line.amount.micros
        item.periodStartUnixSeconds = line.periodStart
        item.periodEndUnixSeconds = line.periodEnd
        return item
    }

    /// A payment attempt of an invoice and its outcome.
    mutating func applyCharge(_ recorded: Billing_Journal_V1_ChargeRecorded, at: Int64, seq: Int64) throws(ApplyError) {
        let charge = recorded.charge
        guard var book = accounts[charge.accountID] else { throw .unknownAccount(seq: seq, charge.accountID) }
        guard var record = invoices[recorded.invoiceSequence], record.invoice.accountID == charge.accountID else {
            throw .inconsistent(seq: seq, "no invoice \(recorded.invoiceSequence) of \(charge.accountID)")
        }
        guard record.invoice.status == .open || record.invoice.status == .pastDue,
              charge.amountMicros == record.invoice.amountDueMicros, charge.invoiceID == record.invoice.invoiceID
        else { throw .inconsistent(seq: seq, "charge \(charge.chargeID) does not match invoice \(record.invoice.number)") }
        if recorded.hasNewMethod {
            // (A reactivation's invoice: its trial has no method of its own
            // yet; the one given replaces the one it was charged to.)
            if book.lifecycle.hasPaymentMethod || record.reactivates {
                // Given to pay an invoice: on file at once, replacing any pending one.
                var method = recorded.newMethod
                method.method.effectiveUnixSeconds = at
                book.paymentMethod = method
                book.pendingPaymentMethod = nil
                book.lifecycle.pendingPaymentMethodReplaced()
            } else {
                guard case .success(let actions) = book.lifecycle.apply(.paymentMethodAdded, now: at, plans: plans) else {
                    throw .inconsistent(seq: seq, "a payment method refused")
                }
                perform(actions, on: &book, at: at, method: recorded.newMethod, seq: seq, inCents: recorded.invoiceLinesInCents)
            }
        }
        record.attempts += 1
        record.attemptPending = false
        let event: AccountEvent
        if charge.status == .succeeded {
            record.invoice.status = .paid
            record.invoice.pastDue = false
            record.invoice.paidUnixSeconds = at
            record.invoice.amountPaidMicros = record.invoice.totalMicros
            record.invoice.amountDueMicros = 0
            record.invoice.payLink = ""
            if record.reactivates {
                // Settled after the period it billed had ended (a gateway
                // silent that long): from the settlement — the period paid
                // for was spent paused (session 31, a review: the next
                // period was billed at once).
                event = .reactivationPaid(periodStart: at < record.invoice.periodEndUnixSeconds ? record.invoice.periodStartUnixSeconds : at)
            } else {
                event = .paymentSucceeded(invoice: recorded.invoiceSequence)
            }
        } else if record.reactivates {
            // Nothing is owed: the trial it would have restarted stays paused.
            record.invoice.status = .void
            record.invoice.amountDueMicros = 0
            record.invoice.payLink = ""
            event = .reactivationDeclined
        } else {
            record.invoice.status = .pastDue
            record.invoice.pastDue = true
            event = .paymentFailed(invoice: recorded.invoiceSequence)
        }
        guard case .success(let actions) = book.lifecycle.apply(event, now: at, plans: plans) else {
            throw .inconsistent(seq: seq, "a payment outcome refused")
        }
        // Only once every check passed: a refused entry changes nothing.
        invoices[recorded.invoiceSequence] = record
        schedule.setOwed(recorded.invoiceSequence, false)
        perform(actions, on: &book, at: at, method: nil, seq: seq, inCents: recorded.invoiceLinesInCents)
        book.charges.append(charge)
        if !recorded.idempotencyKey.isEmpty {
            book.requestKeys["pay:" + recorded.idempotencyKey] = RequestKeyRecord(
                request: RequestedMethod.join(record.invoice.invoiceID, recorded.requestedMethod), seq: seq, invoiceSequence: recorded.invoiceSequence, chargeID: charge.chargeID)
        }
        accounts[charge.accountID] = book
    }

    /// A credit purchase: its charge, and if it succeeded the credits and a
    /// paid invoice.
    /// A gateway charge about to be made: pending until its outcome is
    /// recorded. One pending charge per gateway key, of an account that
    /// exists, recording what its key names.
    mutating func applyStarted(_ started: Billing_Journal_V1_ChargeStarted, seq: Int64) throws(ApplyError) {
        guard accounts[started.accountID] != nil else { throw .unknownAccount(seq: seq, started.accountID) }
        guard !started.gatewayKey.isEmpty, !started.gatewayToken.isEmpty, pendingCharges[started.gatewayKey] == nil else {
            throw .inconsistent(seq: seq, "charge \(started.gatewayKey) started twice or without a key or token")
        }
        switch started.record {
        case .purchase(let purchase)?:
            guard purchase.accountID == started.accountID, purchase.gatewayKey == started.gatewayKey,
                  purchase.amountMicros > 0, purchase.charge.status == .unspecified else {
                throw .inconsistent(seq: seq, "started purchase \(started.gatewayKey) does not match its charge")
            }
        case .invoicePayment(let payment)?:
            guard payment.charge.accountID == started.accountID, payment.gatewayKey == started.gatewayKey,
                  payment.charge.status == .unspecified, invoices[payment.invoiceSequence]?.invoice.accountID == started.accountID else {
                throw .inconsistent(seq: seq, "started payment \(started.gatewayKey) does not match its invoice")
            }
        case nil:
            throw .inconsistent(seq: seq, "started charge \(started.gatewayKey) records nothing")
        }
        pendingCharges[started.gatewayKey] = PendingCharge(seq: seq, started: started)
    }

    /// A recorded charge naming a gateway key settles that pending charge,
    /// which must exist (checked before anything changes).
    func checkSettles(_ gatewayKey: String, account: String, seq: Int64) throws(ApplyError) {
        guard !gatewayKey.isEmpty else { return }
        guard pendingCharges[gatewayKey]?.started.accountID == account else {
            throw .inconsistent(seq: seq, "no pending charge \(gatewayKey) of \(account)")
        }
    }

    mutating func applyPurchase(_ purchase: Billing_Journal_V1_CreditsPurchased, at: Int64, seq: Int64) throws(ApplyError) {
        guard var book = accounts[purchase.accountID] else { throw .unknownAccount(seq: seq, purchase.accountID) }
        var charge = purchase.charge
        guard purchase.amountMicros > 0, charge.amountMicros == purchase.amountMicros, charge.accountID == purchase.accountID else {
            throw .inconsistent(seq: seq, "purchase and charge disagree")
        }
        if charge.status == .succeeded {
            let (balance, o1) = book.balance.addingReportingOverflow(purchase.amountMicros)
            let (granted, o2) = book.granted.addingReportingOverflow(purchase.amountMicros)
            guard !o1 && !o2 else { throw .overflow(seq: seq) }
            let sequence = nextInvoiceSequence
            var invoice = Self.invoiceHeader(sequence: sequence, account: book.accountID, at: at)
            guard charge.invoiceID == invoice.invoiceID else {
                throw .inconsistent(seq: seq, "purchase charge names invoice \(charge.invoiceID), next is \(invoice.invoiceID)")
            }
            invoice.kind = .creditPurchase
            var line = Billing_V1_InvoiceLineItem()
            line.kind = .creditPurchase
            line.description_p = "Prepaid credits"
            line.quantity = 1
            line.unitAmountMicros = purchase.amountMicros
            line.amountMicros = purchase.amountMicros
            invoice.lineItems = [line]
            invoice.subtotalMicros = purchase.amountMicros
            invoice.totalMicros = purchase.amountMicros
            invoice.amountPaidMicros = purchase.amountMicros
            invoice.status = .paid
            invoice.paidUnixSeconds = at
            invoices[sequence] = InvoiceRecord(invoice: invoice, attemptPending: false, attempts: 1)
            book.invoiceSequences.append(sequence)
            book.balance = balance
            book.granted = granted
        } else {
            charge.invoiceID = ""
        }
        book.charges.append(charge)
        if !purchase.idempotencyKey.isEmpty {
            book.requestKeys["purchase:" + purchase.idempotencyKey] = RequestKeyRecord(
                request: RequestedMethod.join("\(purchase.amountMicros)", purchase.requestedMethod), seq: seq,
                invoiceSequence: charge.status == .succeeded ? nextInvoiceSequence - 1 : 0, chargeID: charge.chargeID)
        }
        accounts[purchase.accountID] = book
    }
}

// MARK: Proto <-> domain

extension LedgerState {
    public static func plan(_ plan: Billing_V1_Plan) -> Plan? {
        switch plan {
        case .free: .free
        case .pro: .pro
        case .enterprise: .enterprise
        case .unspecified, .UNRECOGNIZED: nil
        }
    }

    public static func proto(_ plan: Plan) -> Billing_V1_Plan {
        switch plan {
        case .free: .free
        case .pro: .pro
        case .enterprise: .enterprise
        }
    }

    /// Whether contract terms are within what the ledger can bill (what
    /// replay takes: contracts journaled before the whole-cents rule too).
    public static func validContract(_ terms: Billing_V1_EnterpriseContract) -> Bool {
        contractProblem(terms, wholeCents: false) == nil
    }

    /// The first field of contract terms that breaks a rule, and the rule
    /// (for INVALID_CONTRACT); nil when they keep them all. `wholeCents`:
    /// the price and custom lines must be whole cents, as invoices charge
    /// (a new contract's rule; in cents, a sum that fits in Int64 is
    /// within the invoice cap).
    public static func contractProblem(_ terms: Billing_V1_EnterpriseContract, wholeCents: Bool) -> (field: String, rule: String)? {
        func amountOK(_ micros: Int64) -> Bool { micros >= 0 && (!wholeCents || Money(micros: micros).isWholeCents) }
        let amountRule = wholeCents ? "must be whole cents (a multiple of 10000 micros) and not negative" : "must not be negative"
        if !amountOK(terms.periodPriceMicros) { return ("period_price_micros", "\(amountRule), got \(terms.periodPriceMicros)") }
        if terms.includedUsageMicros < 0 { return ("included_usage_micros", "must not be negative, got \(terms.includedUsageMicros)") }
        if !(0...100_000).contains(terms.usageRateBasisPoints) {
            return ("usage_rate_basis_points", "must be 0 to 100000 basis points, got \(terms.usageRateBasisPoints)")
        }
        if terms.runQuota < 0 { return ("run_quota", "must not be negative (0: unlimited), got \(terms.runQuota)") }
        if !(0...Int64(Int32.max)).contains(terms.maxWorkspaces) {
            return ("max_workspaces", "must be 0 (unlimited) to \(Int32.max), got \(terms.maxWorkspaces)")
        }
        if let index = terms.customInvoiceLines.firstIndex(where: { !amountOK($0.amountMicros) }) {
            return ("custom_invoice_lines[\(index)].amount_micros", "\(amountRule), got \(terms.customInvoiceLines[index].amountMicros)")
        }
        // A period's invoice (price and custom lines) must fit in Int64.
        guard (try? Money.sum(([terms.periodPriceMicros] + terms.customInvoiceLines.map(\.amountMicros)).map { Money(micros: $0) })) != nil else {
            return ("custom_invoice_lines", "and period_price_micros must sum to at most 9223372036854770000 micros (a period's invoice)")
        }
        return nil
    }

    public static func contract(_ terms: Billing_V1_EnterpriseContract) -> EnterpriseContract {
        EnterpriseContract(
            monthlyPrice: Money(micros: terms.periodPriceMicros),
            customLines: terms.customInvoiceLines.map {
                EnterpriseContract.CustomLine(description: $0.description_p, amount: Money(micros: $0.amountMicros))
            },
            includedUsage: Money(micros: terms.includedUsageMicros),
            usageRateBasisPoints: terms.usageRateBasisPoints,
            runQuota: terms.runQuota == 0 ? nil : terms.runQuota,
            workspaceLimit: terms.maxWorkspaces == 0 ? nil : Int(terms.maxWorkspaces),
            reference: terms.contractReference)
    }

    static func lifecycleState(_ book: AccountBook) -> Billing_Journal_V1_LifecycleState {
        let lifecycle = book.lifecycle
        var state = Billing_Journal_V1_LifecycleState()
        state.plan = proto(lifecycle.plan)
        state.trialEndsUnix = lifecycle.trialEndsAt ?? 0
        state.hasPaymentMethod_p = lifecycle.hasPaymentMethod
        state.hasPendingPaymentMethod_p = lifecycle.hasPendingPaymentMethod
        if let change = lifecycle.pendingChange {
            state.pendingChange.toPlan = proto(change.plan)
            state.pendingChange.effectiveUnixSeconds = change.effectiveAt
        }
        switch lifecycle.pauseReason {
        case .trialEndedWithoutPaymentMethod?: state.pauseReason = .trialEnded
        case .pastDueGraceExpired?: state.pauseReason = .pastDue
        case nil: break
        }
        state.pastDue = lifecycle.pastDueInvoices.map {
            var pastDue = Billing_Journal_V1_PastDue()
            pastDue.invoiceSequence = $0.number
            pastDue.sinceUnix = $0.since
            return pastDue
        }
        state.graceSeconds = lifecycle.graceSeconds
        state.periodAnchorUnix = lifecycle.periodAnchor
        state.periodStartUnix = lifecycle.currentPeriod.start
        state.periodEndUnix = lifecycle.currentPeriod.end
        if lifecycle.contract != nil { state.contract = book.contractTerms ?? defaultContractTerms }
        return state
    }

    static func lifecycle(_ state: Billing_Journal_V1_LifecycleState) -> AccountLifecycle {
        let pause: PauseReason? = switch state.pauseReason {
        case .trialEnded: .trialEndedWithoutPaymentMethod
        case .pastDue: .pastDueGraceExpired
        default: nil
        }
        let plan = Self.plan(state.plan) ?? .free
        return AccountLifecycle(
            plan: plan,
            trialEndsAt: state.trialEndsUnix == 0 ? nil : state.trialEndsUnix,
            hasPaymentMethod: state.hasPaymentMethod_p,
            hasPendingPaymentMethod: state.hasPendingPaymentMethod_p,
            pendingChange: state.hasPendingChange
                ? PendingPlanChange(plan: Self.plan(state.pendingChange.toPlan) ?? .free, effectiveAt: state.pendingChange.effectiveUnixSeconds)
                : nil,
            pauseReason: pause,
            pastDueInvoices: state.pastDue.map { PastDueInvoice(number: $0.invoiceSequence, since: $0.sinceUnix) },
            graceSeconds: state.graceSeconds,
            periodAnchor: state.periodAnchorUnix,
            currentPeriod: BillingPeriod.containing(state.periodStartUnix, anchor: state.periodAnchorUnix),
            contract: plan == .enterprise ? contract(state.hasContract ? state.contract : defaultContractTerms) : nil)
    }
}

extension Billing_Journal_V1_ChargeStarted {
    /// What the gateway is asked to collect.
    public var amountMicros: Int64 {
        switch record {
        case .purchase(let purchase)?: purchase.amountMicros
        case .invoicePayment(let payment)?: payment.charge.amountMicros
        case nil: 0
        }
    }
}
