public import BillingCore
import BillingProto

/// Reconciliation (`billing verify`): recomputes every balance, roll-up and
/// run cost from the journal alone and compares them with what the ledger
/// would load (checkpoint + replay) and with the store's indexes.
public struct LedgerAudit: Sendable {
    public var entries = 0
    public var accounts = 0
    public var acceptedDebits = 0
    public var refusedDebits = 0
    public var invoices = 0
    public var problems: [String] = []

    public var isClean: Bool { problems.isEmpty }

    public static func run(on store: any LedgerStore, plans: PlanCatalog = .default, maxProblems: Int = 100) throws -> LedgerAudit {
        var audit = LedgerAudit()
        func problem(_ text: String) {
            if audit.problems.count < maxProblems { audit.problems.append(text) }
        }

        // 1. Every entry from seq 1, applied to empty books, with independent sums on the side.
        var fromScratch = LedgerState(plans: plans)
        var totals: [String: (granted: Int64, fromCredits: Int64, overage: Int64, debited: Int64)] = [:]
        // Run costs and keys the store's indexes must find (those up to the
        // newest checkpoint that wrote index rows; later ones live in memory).
        let indexed = try store.indexedThrough()
        var runTotals: [String: [String: Int64]] = [:]
        var keys: [(account: String, key: String, seq: Int64)] = []
        // A key journaled twice: among indexed debits the index check below
        // finds it (the key leads to the other entry); after them, by hash.
        var unindexedKeys: [Int64: Billing_Journal_V1_Entry] = [:]
        func checkUnique(_ entry: Billing_Journal_V1_Entry, account: String, key: String) {
            guard entry.seq > indexed else { return }
            let hash = JournalKeyHash.debit(account: account, key: key)
            if let earlier = unindexedKeys[hash], IdempotencyCache.key(of: earlier) == IdempotencyCache.key(of: entry) {
                problem("account \(account) key \(key): a second debit entry (seq \(entry.seq), first at \(earlier.seq))")
            }
            unindexedKeys[hash] = entry
        }
        try store.forEachEntry(after: 0) { entry in
            audit.entries += 1
            do {
                try fromScratch.apply(entry)
            } catch {
                problem("entry \(entry.seq): \(error)")
                fromScratch.lastSeq = entry.seq
            }
            switch entry.event {
            case .accountCreated(let created):
                totals[created.accountID, default: (0, 0, 0, 0)].granted &+= created.trialCreditMicros
            case .creditsGranted(let grant):
                totals[grant.accountID, default: (0, 0, 0, 0)].granted &+= grant.amountMicros
            case .creditsPurchased(let purchase) where purchase.charge.status == .succeeded:
                totals[purchase.accountID, default: (0, 0, 0, 0)].granted &+= purchase.amountMicros
            case .lifecycle(let lifecycle):
                // A closed period's overage goes on its invoice; the books restart from zero.
                if case .periodEnded(let ended) = lifecycle.event {
                    totals[lifecycle.accountID, default: (0, 0, 0, 0)].overage &-= ended.overageMicros
                }
            case .debitAccepted(let debit):
                audit.acceptedDebits += 1
                totals[debit.accountID, default: (0, 0, 0, 0)].fromCredits &+= debit.fromCreditsMicros
                totals[debit.accountID, default: (0, 0, 0, 0)].overage &+= debit.overageMicros
                totals[debit.accountID, default: (0, 0, 0, 0)].debited &+= debit.totalMicros
                if entry.seq <= indexed {
                    runTotals[debit.accountID, default: [:]][debit.runID, default: 0] &+= debit.totalMicros
                    keys.append((debit.accountID, debit.idempotencyKey, entry.seq))
                }
                checkUnique(entry, account: debit.accountID, key: debit.idempotencyKey)
            case .debitRefused(let refused):
                audit.refusedDebits += 1
                if entry.seq <= indexed { keys.append((refused.accountID, refused.idempotencyKey, entry.seq)) }
                checkUnique(entry, account: refused.accountID, key: refused.idempotencyKey)
            default:
                break
            }
        }
        audit.accounts = fromScratch.accounts.count

        // 2. The books from scratch against the independent sums.
        for (id, book) in fromScratch.accounts {
            let sums = totals[id] ?? (0, 0, 0, 0)
            if book.balance != sums.granted &- sums.fromCredits {
                problem("account \(id): balance \(book.balance) != granted \(sums.granted) - debited from credits \(sums.fromCredits)")
            }
            if book.overage != sums.overage {
                problem("account \(id): overage \(book.overage) != sum of debit overages \(sums.overage)")
            }
            let usageTotal = book.usage.values.reduce(Int64(0)) { $0 &+ $1.amount }
            if usageTotal != sums.debited {
                problem("account \(id): usage roll-ups total \(usageTotal) != debits total \(sums.debited)")
            }
        }

        // 2b. Invoices: numbered without gaps, lines add up to the total,
        // each PAID one collected by exactly one successful charge.
        audit.invoices = fromScratch.invoices.count
        let sequences = fromScratch.invoices.keys.sorted()
        if sequences != Array(stride(from: Int64(1), through: Int64(sequences.count), by: 1)) {
            problem("invoice sequences have gaps: \(sequences.prefix(20))")
        }
        var paidCharges: [String: Int] = [:]
        for book in fromScratch.accounts.values {
            for charge in book.charges where charge.status == .succeeded { paidCharges[charge.invoiceID, default: 0] += 1 }
        }
        for record in fromScratch.invoices.values.sorted(by: { $0.invoice.sequence < $1.invoice.sequence }) {
            let invoice = record.invoice
            let lines = invoice.lineItems.reduce(Int64(0)) { $0 &+ $1.amountMicros }
            if lines != invoice.totalMicros || invoice.amountPaidMicros &+ invoice.amountDueMicros != invoice.totalMicros {
                problem("invoice \(invoice.number): lines \(lines), paid \(invoice.amountPaidMicros) and due \(invoice.amountDueMicros) do not add up to \(invoice.totalMicros)")
            }
            let collected = paidCharges[invoice.invoiceID] ?? 0
            if (invoice.status == .paid) != (collected == 1) {
                problem("invoice \(invoice.number) is \(invoice.status) with \(collected) successful charge(s)")
            }
        }

        // 3. What the server would load: newest checkpoint + the journal after it.
        let (loaded, _) = try LedgerState.recover(from: store, plans: plans)
        if loaded != fromScratch {
            for id in Set(loaded.accounts.keys).union(fromScratch.accounts.keys).sorted()
            where loaded.accounts[id] != fromScratch.accounts[id] {
                problem("account \(id): checkpoint + replay differs from the journal replayed from scratch")
            }
            if loaded.lastSeq != fromScratch.lastSeq {
                problem("checkpoint + replay ends at seq \(loaded.lastSeq), journal at \(fromScratch.lastSeq)")
            }
        }

        // 4. The store's indexes (up to the seq they cover): each key finds
        // its own entry, each run its debits.
        for (account, key, seq) in keys {
            let found = try store.debitEntry(accountID: account, idempotencyKey: key)
            if found?.seq != seq {
                problem("account \(account) key \(key): index finds seq \(found.map { String($0.seq) } ?? "nothing"), journal has \(seq)")
            }
        }
        for (account, runs) in runTotals {
            for (run, total) in runs {
                let indexed = try store.runEntries(accountID: account, runID: run).reduce(Int64(0)) { sum, entry in
                    if case .debitAccepted(let debit) = entry.event { return sum &+ debit.totalMicros }
                    return sum
                }
                if indexed != total { problem("account \(account) run \(run): run cost \(indexed) != journal \(total)") }
            }
        }
        return audit
    }
}
