public import BillingCore
import BillingProto
import Foundation

/// Reconciliation (`billing verify`): recomputes every balance, roll-up and
/// run cost from the journal alone and compares them with what the ledger
/// would load (checkpoint + replay) and with the store's indexes.
public struct LedgerAudit: Sendable {
    public var entries = 0
    public var accounts = 0
    public var acceptedDebits = 0
    public var refusedDebits = 0
    public var invoices = 0
    /// Gateway charges journaled as started whose outcome is not yet
    /// journaled (not a difference: the server records them at its next tick).
    public var pendingCharges = 0
    public var problems: [String] = []

    public var isClean: Bool { problems.isEmpty }

    /// Whether a debit at `atMicros` may have been decided under terms that
    /// accrue overage: the books' plan, or past the period's end, before its
    /// close, a change due then (`LedgerState.decide` since session 22;
    /// builds before decided such debits under the books' plan, and an entry
    /// does not say which): a problem only when neither does.
    static func overageAllowed(_ book: AccountBook, atMicros: Int64, plans: PlanCatalog) -> Bool {
        book.terms(in: plans).accruesOverage || book.lifecycle.effectiveTerms(at: atMicros / 1_000_000, plans).accruesOverage
    }

    public static func run(on store: any LedgerStore, plans: PlanCatalog = .default, maxProblems: Int = 100) throws -> LedgerAudit {
        var audit = LedgerAudit()
        func problem(_ text: String) {
            if audit.problems.count < maxProblems { audit.problems.append(text) }
        }
        // Ids stored before session 19 in another Unicode normalization:
        // requests now take ids in NFC only, so these can no longer be named.
        var notNFCFound = 0
        func notNFC(_ what: String) {
            notNFCFound += 1
            if notNFCFound <= 20 { problem("\(what) is not in Unicode NFC: requests can no longer name it") }
        }

        // 1. Every entry from seq 1, applied to empty books, with independent sums on the side.
        var fromScratch = LedgerState(plans: plans)
        var totals: [String: (granted: Int64, fromCredits: Int64, overage: Int64, debited: Int64)] = [:]
        // Run costs and keys the store's indexes must find (those up to the
        // newest checkpoint that wrote index rows; later ones live in memory).
        // Memory stays flat in the journal's length: indexed keys are looked
        // up as they are read (a sample past 100,000), and the index's
        // contents are compared as order-free digests; run costs are
        // compared for a sample of runs.
        let indexed = try store.indexedThrough()
        var journalKeys = IndexDigest(), journalRuns = IndexDigest()
        var sampledRuns: [RunID: Int64] = [:]
        var lookedUp = 0
        func checkIndexed(_ entry: Billing_Journal_V1_Entry, account: String, key: String, hash: Int64) throws {
            guard entry.seq <= indexed else { return }
            journalKeys.add(hash, seq: entry.seq)
            // The digests prove the rows; lookups prove the query path: every
            // key of a small journal, then one in 1,024 (a lookup probes every
            // index generation, so all of 10 M would take hours).
            guard lookedUp < Self.sampledKeys || hash & 1023 == 0 else { return }
            lookedUp += 1
            let found = try store.debitEntry(accountID: account, idempotencyKey: key)
            if found?.seq != entry.seq {
                problem("account \(account) key \(key): the index finds \(found.map { "seq \($0.seq)" } ?? "nothing"), the journal has seq \(entry.seq)")
            }
        }
        // A key journaled twice. Both indexed: the index has two rows with
        // its hash (found by one query before the scan; their entries are
        // compared as the scan meets them). One indexed, one not: the later
        // one's key is found in the index. Neither: by hash among the
        // unindexed, a checkpoint interval's worth at most.
        let sharedHashSeqs = Set(try store.keyRowsSharingAHash(through: indexed).map(\.seq))
        // The stored key filter must hold every debit key journaled up to its
        // seq: a key it lacked would be taken for new after a restart.
        var storedFilter: (seq: Int64, filter: KeyFilter)?
        let stored: (seq: Int64, contents: Data)?
        do {
            stored = try store.latestKeyFilter()
        } catch {
            problem("the stored key filter cannot be read: \(error)")
            stored = nil
        }
        if let stored {
            let filter = KeyFilter(bytes: stored.contents.count)
            if filter.load(stored.contents) {
                storedFilter = (stored.seq, filter)
            } else {
                problem("the stored key filter (seq \(stored.seq)) has \(stored.contents.count) bytes, not a filter's size")
            }
        }
        var missingFromFilter = 0
        func checkFiltered(_ entry: Billing_Journal_V1_Entry, account: String, key: String, hash: Int64) {
            guard let (seq, filter) = storedFilter, entry.seq <= seq, !filter.mightContain(hash) else { return }
            missingFromFilter += 1
            if missingFromFilter <= 3 {
                problem("account \(account) key \(key) (seq \(entry.seq)) is missing from the key filter stored at seq \(seq)")
            }
        }
        var sharedHashKeys: [Int64: [(key: [String], seq: Int64)]] = [:]
        var unindexedKeys: [Int64: Billing_Journal_V1_Entry] = [:]
        func checkUnique(_ entry: Billing_Journal_V1_Entry, account: String, key: String, hash: Int64) throws {
            guard entry.seq > indexed else {
                if sharedHashSeqs.contains(entry.seq) { sharedHashKeys[hash, default: []].append(([account, key], entry.seq)) }
                return
            }
            if let earlier = unindexedKeys[hash], IdempotencyCache.key(of: earlier) == IdempotencyCache.key(of: entry) {
                problem("account \(account) key \(key): a second debit entry (seq \(entry.seq), first at \(earlier.seq))")
            } else if let earlier = try store.debitEntry(accountID: account, idempotencyKey: key), earlier.seq != entry.seq {
                // (Itself, when a checkpoint written during the scan indexed it.)
                problem("account \(account) key \(key): a second debit entry (seq \(entry.seq), first at \(earlier.seq))")
            }
            unindexedKeys[hash] = entry
        }
        // Every debit key (accepted or refused) through the three checks, its hash computed once.
        func checkKey(_ entry: Billing_Journal_V1_Entry, account: String, key: String) throws {
            let hash = JournalKeyHash.debit(account: account, key: key)
            try checkIndexed(entry, account: account, key: key, hash: hash)
            try checkUnique(entry, account: account, key: key, hash: hash)
            checkFiltered(entry, account: account, key: key, hash: hash)
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
                // (The usual all-NFC debit checked without building the list.)
                if !(debit.idempotencyKey.isNFC && debit.runID.isNFC && debit.agentID.isNFC && debit.workspaceID.isNFC) {
                    for (field, id) in [("idempotency key", debit.idempotencyKey), ("run", debit.runID), ("agent", debit.agentID),
                                        ("workspace", debit.workspaceID)] where !id.isNFC {
                        notNFC("\(field) \(id.debugDescription) of account \(debit.accountID) (seq \(entry.seq))")
                    }
                }
                // What the caller was told (Debit, GetDebit) against the books
                // replayed so far: a debit decided on drifted books shows here.
                // (The book read in place, not copied out: once per debit.)
                if let index = fromScratch.accounts.index(forKey: debit.accountID) {
                    let balance = fromScratch.accounts.values[index].balance
                    if balance != debit.balanceAfterMicros {
                        problem("account \(debit.accountID) seq \(entry.seq): the debit told its caller a balance of "
                                + "\(debit.balanceAfterMicros), the journal's books give \(balance)")
                    }
                    if debit.overageMicros != 0 || balance < 0,
                       !Self.overageAllowed(fromScratch.accounts.values[index], atMicros: entry.atUnixMicros, plans: fromScratch.plans) {
                        problem("account \(debit.accountID) seq \(entry.seq): a plan without overage left at a balance of "
                                + "\(balance) with an overage of \(debit.overageMicros)")
                    }
                }
                totals[debit.accountID, default: (0, 0, 0, 0)].fromCredits &+= debit.fromCreditsMicros
                totals[debit.accountID, default: (0, 0, 0, 0)].overage &+= debit.overageMicros
                totals[debit.accountID, default: (0, 0, 0, 0)].debited &+= debit.totalMicros
                if entry.seq <= indexed {
                    journalRuns.add(JournalKeyHash.run(account: debit.accountID, run: debit.runID), seq: entry.seq)
                    let run = RunID(account: debit.accountID, run: debit.runID)
                    if sampledRuns[run] != nil || sampledRuns.count < Self.sampledRuns {
                        sampledRuns[run, default: 0] &+= debit.totalMicros
                    }
                }
                try checkKey(entry, account: debit.accountID, key: debit.idempotencyKey)
            case .debitRefused(let refused):
                audit.refusedDebits += 1
                if !refused.idempotencyKey.isNFC {
                    notNFC("idempotency key \(refused.idempotencyKey.debugDescription) of account \(refused.accountID) (seq \(entry.seq))")
                }
                try checkKey(entry, account: refused.accountID, key: refused.idempotencyKey)
            default:
                break
            }
        }
        audit.accounts = fromScratch.accounts.count
        for id in fromScratch.accounts.keys where !id.isNFC { notNFC("account \(id.debugDescription)") }
        audit.pendingCharges = fromScratch.pendingCharges.count

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
            // Lines past Int64 are capped in the total as the ledger caps them
            // (at Int64's largest amount, or its largest whole cent): the sum
            // saturates here rather than wrap (session 30, an admin review:
            // a $9-quintillion contract's invoice was reported for ever).
            let lines = invoice.lineItems.reduce(Int64(0)) { sum, line in
                let (next, overflow) = sum.addingReportingOverflow(line.amountMicros)
                return overflow ? .max : next
            }
            let capped = lines > invoice.totalMicros
                && [true, false].contains { invoice.totalMicros == LedgerState.invoiceTotalCap(inCents: $0) }
            // A void invoice owes nothing and was paid nothing (a paused
            // trial's declined reactivation, since session 31).
            let owed = invoice.status == .void ? 0 : invoice.totalMicros
            if (lines != invoice.totalMicros && !capped) || invoice.amountPaidMicros &+ invoice.amountDueMicros != owed {
                problem("invoice \(invoice.number): lines \(lines), paid \(invoice.amountPaidMicros) and due \(invoice.amountDueMicros) do not add up to \(invoice.totalMicros)")
            }
            let collected = paidCharges[invoice.invoiceID] ?? 0
            if (invoice.status == .paid) != (collected == 1) {
                problem("invoice \(invoice.number) is \(invoice.status) with \(collected) successful charge(s)")
            }
        }

        // 3. What the server would load: newest checkpoint + the journal after it.
        // A server writing meanwhile moves the journal on: the scan's books
        // are carried to the same seq before they are compared.
        var passedOver: Int64?
        let (loaded, _) = try LedgerState.recover(from: store, plans: plans, serving: false, loading: { checkpoint, booksLoaded in
            // Written by these rules and still not loadable: damaged books.
            // (Another rules version is an upgrade: replayed, not a difference.)
            if !booksLoaded, checkpoint.rulesVersion == LedgerState.rulesVersion { passedOver = checkpoint.seq }
        })
        if let passedOver {
            problem("the checkpoint at seq \(passedOver) holds books no ledger writes: start-up passes it over and replays the journal")
        }
        var scanned = fromScratch
        if loaded.lastSeq > scanned.lastSeq {
            try store.forEachEntry(after: scanned.lastSeq) { entry in
                guard entry.seq <= loaded.lastSeq else { return }
                try scanned.apply(entry)
            }
        }
        for difference in Self.differences(loaded: loaded, scanned: scanned) { problem(difference) }

        // 4. The store's indexes (up to the seq they cover) hold exactly one
        // row per debit (keys) and per accepted debit (runs), and no other;
        // a sample of runs costs what the journal says through the run index.
        for rows in sharedHashKeys.values {
            for (index, row) in rows.enumerated() {
                if let first = rows[..<index].first(where: { $0.key == row.key }) {
                    problem("account \(row.key[0]) key \(row.key[1]): a second debit entry (seq \(row.seq), first at \(first.seq))")
                }
            }
        }
        if missingFromFilter > 3 {
            problem("\(missingFromFilter) debit keys in all are missing from the stored key filter")
        }
        var storedKeys = IndexDigest(), storedRuns = IndexDigest()
        try store.forEachIndexRow(runs: false, through: indexed) { storedKeys.add($0.hash, seq: $0.seq) }
        try store.forEachIndexRow(runs: true, through: indexed) { storedRuns.add($0.hash, seq: $0.seq) }
        if storedKeys != journalKeys {
            problem("the key index holds \(storedKeys.count) rows; the journal has \(journalKeys.count) debits up to seq \(indexed)\(storedKeys.count == journalKeys.count ? ", with other contents" : "")")
        }
        if storedRuns != journalRuns {
            problem("the run index holds \(storedRuns.count) rows; the journal has \(journalRuns.count) accepted debits up to seq \(indexed)\(storedRuns.count == journalRuns.count ? ", with other contents" : "")")
        }
        for (run, total) in sampledRuns {
            let cost = try store.runEntries(accountID: run.account, runID: run.run).reduce(Int64(0)) { sum, entry in
                guard case .debitAccepted(let debit) = entry.event else { return sum }
                return entry.seq <= indexed ? sum &+ debit.totalMicros : sum
            }
            if cost != total { problem("account \(run.account) run \(run.run): run cost \(cost) != journal \(total)") }
        }
        return audit
    }

    /// Runs whose cost is compared through the run index.
    static let sampledRuns = 10_000
    /// Keys all looked up before sampling starts.
    static let sampledKeys = 100_000

    struct RunID: Hashable {
        let account: String
        let run: String
    }

    /// An order-free digest of (hash, seq) rows: their count and the
    /// wrapping sum of a mix of each. Equal multisets give equal digests;
    /// different ones collide with probability ~2^-64.
    struct IndexDigest: Equatable {
        var count = 0
        var sum: UInt64 = 0

        mutating func add(_ hash: Int64, seq: Int64) {
            count += 1
            sum &+= SplitMix64.mix(UInt64(bitPattern: hash) ^ SplitMix64.mix(UInt64(bitPattern: seq)))
        }
    }
}

extension LedgerAudit {
    /// Where the books a server would load (newest checkpoint + replay)
    /// differ from the journal replayed from scratch: every part a
    /// checkpoint holds — accounts, API keys (a revoked key must stay
    /// revoked), invoices, pending charges, the test clock, the plan terms —
    /// and, should they differ in a part not named here, that they differ.
    public static func differences(loaded: LedgerState, scanned: LedgerState) -> [String] {
        var found: [String] = []
        for id in Set(loaded.accounts.keys).union(scanned.accounts.keys).sorted()
        where loaded.accounts[id] != scanned.accounts[id] {
            found.append("account \(id): checkpoint + replay differs from the journal replayed from scratch")
        }
        for id in Set(loaded.apiKeys.keys).union(scanned.apiKeys.keys).sorted() where loaded.apiKeys[id] != scanned.apiKeys[id] {
            found.append("API key \(id): checkpoint + replay differs from the journal replayed from scratch")
        }
        for sequence in Set(loaded.invoices.keys).union(scanned.invoices.keys).sorted()
        where loaded.invoices[sequence] != scanned.invoices[sequence] {
            let number = (loaded.invoices[sequence] ?? scanned.invoices[sequence])?.invoice.number ?? "\(sequence)"
            found.append("invoice \(number): checkpoint + replay differs from the journal replayed from scratch")
        }
        if loaded.pendingCharges != scanned.pendingCharges {
            found.append("checkpoint + replay has \(loaded.pendingCharges.count) pending gateway charge(s), the journal \(scanned.pendingCharges.count)")
        }
        if loaded.testClockUnix != scanned.testClockUnix || loaded.testClockMoved != scanned.testClockMoved {
            found.append("checkpoint + replay has the test clock at \(loaded.testClockUnix) (moved: \(loaded.testClockMoved)), the journal at \(scanned.testClockUnix) (moved: \(scanned.testClockMoved))")
        }
        if loaded.plans != scanned.plans {
            found.append("checkpoint + replay has other plan terms than the journal")
        }
        if loaded.lastSeq != scanned.lastSeq {
            found.append("checkpoint + replay ends at seq \(loaded.lastSeq), journal at \(scanned.lastSeq)")
        }
        if found.isEmpty && loaded != scanned {
            found.append("checkpoint + replay differs from the journal replayed from scratch")
        }
        return found
    }
}
