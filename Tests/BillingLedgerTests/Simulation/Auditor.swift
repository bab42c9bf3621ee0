import BillingCore
import BillingLedger
import BillingProto
import Foundation

/// Checks a finished simulation against the disk's journal, the only truth:
/// what clients were told, what the journal says, and what the rebuilt
/// ledger holds must agree.
struct Auditor {
    private(set) var problems: [String] = []
    private(set) var problemCount = 0
    private let result: SimulationResult
    private let journal: [Entry]
    /// Index into `journal` of each (account, key)'s debit entries.
    private var debitEntries: [SimulatedDisk.DebitKey: [Int]] = [:]

    static func audit(_ result: SimulationResult) async throws -> Auditor {
        var auditor = Auditor(result: result)
        auditor.checkStore()
        auditor.checkAcknowledgements()
        auditor.checkKeys()
        let replayed = auditor.replayFromScratch()
        try await auditor.checkRebuiltLedger(against: replayed)
        try await auditor.checkFailedCalls()
        return auditor
    }

    private init(result: SimulationResult) {
        self.result = result
        journal = result.disk.journal()
        for (index, entry) in journal.enumerated() {
            if let key = SimulatedDisk.debitKey(entry) { debitEntries[key, default: []].append(index) }
        }
    }

    private mutating func problem(_ text: String) {
        problemCount += 1
        if problems.count < 30 { problems.append(text) }
    }

    private func entry(for key: SimulatedDisk.DebitKey) -> Entry? {
        debitEntries[key]?.first.map { journal[$0] }
    }

    /// The journal is 1, 2, 3... and the ledger never attempted a write the
    /// schema refuses; appends that failed atomically left nothing, those
    /// whose ack was lost left everything.
    private mutating func checkStore() {
        for (index, entry) in journal.enumerated() where entry.seq != Int64(index + 1) {
            problem("journal position \(index + 1) holds seq \(entry.seq)")
        }
        for violation in result.disk.violations { problem("the ledger attempted a write the schema refuses: \(violation)") }
        let writtenBy = result.disk.writtenBy
        let failedCalls = Set(result.disk.atomicallyFailed.map(\.call))
        for (index, call) in writtenBy.enumerated() where failedCalls.contains(call) {
            problem("seq \(index + 1) was written by append call \(call), which failed atomically")
        }
        for lost in result.disk.ackLost {
            for entry in lost.entries where entry.seq > Int64(journal.count) || journal[Int(entry.seq) - 1] != entry {
                problem("seq \(entry.seq), committed by append call \(lost.call) before its ack was lost, is not in the journal")
            }
        }
    }

    /// Every acknowledged entry is in the journal, at its seq, identical.
    private mutating func checkAcknowledgements() {
        var acknowledged = result.record.acknowledged
        for attempt in result.record.attempts {
            switch attempt.outcome {
            case .accepted(let entry), .refused(let entry): acknowledged.append(entry)
            case .keyReused, .unknownAccount, .failed: break
            }
        }
        for grant in result.record.grants {
            guard grant.seq >= 1, grant.seq <= Int64(journal.count),
                  case .creditsGranted(let journaled) = journal[Int(grant.seq) - 1].event,
                  journaled.accountID == grant.account, journaled.idempotencyKey == grant.key, journaled.amountMicros == grant.micros
            else {
                problem("acknowledged grant \(grant.key) of \(grant.micros) to \(grant.account) at seq \(grant.seq) is not in the journal there")
                continue
            }
        }
        var grantKeys: [String: [Int64]] = [:]
        for entry in journal {
            if case .creditsGranted(let grant) = entry.event, !grant.idempotencyKey.isEmpty {
                grantKeys["\(grant.accountID)/\(grant.idempotencyKey)", default: []].append(entry.seq)
            }
        }
        for (key, seqs) in grantKeys where seqs.count > 1 {
            problem("grant key \(key) was granted \(seqs.count) times: seqs \(seqs)")
        }
        for entry in acknowledged {
            guard entry.seq >= 1, entry.seq <= Int64(journal.count) else {
                problem("acknowledged seq \(entry.seq) (\(describe(entry))) is beyond the journal (\(journal.count) entries)")
                continue
            }
            let journaled = journal[Int(entry.seq) - 1]
            if journaled != entry {
                problem("acknowledged seq \(entry.seq) (\(describe(entry))) differs from the journal's (\(describe(journaled)))")
            }
        }
    }

    /// One debit entry per key; every client's answer agrees with it.
    private mutating func checkKeys() {
        for (key, indexes) in debitEntries where indexes.count > 1 {
            problem("account \(key.account) key \(key.key) has \(indexes.count) debit entries: seqs \(indexes.map { $0 + 1 })")
        }
        var attemptsByKey: [SimulatedDisk.DebitKey: [Attempt]] = [:]
        for attempt in result.record.attempts {
            attemptsByKey[SimulatedDisk.DebitKey(account: attempt.command.accountID, key: attempt.command.idempotencyKey),
                          default: []].append(attempt)
        }
        for key in debitEntries.keys where attemptsByKey[key] == nil {
            problem("account \(key.account) key \(key.key) is in the journal but no client sent it")
        }
        for (key, attempts) in attemptsByKey {
            let journaled = entry(for: key)
            let journaledHash = journaled.map(Self.requestHash)
            if let journaledHash, !attempts.contains(where: { Data($0.command.fingerprint) == journaledHash }) {
                problem("account \(key.account) key \(key.key): the journal's request matches no request a client sent")
            }
            for attempt in attempts {
                let fingerprint = Data(attempt.command.fingerprint)
                switch attempt.outcome {
                case .accepted(let entry), .refused(let entry):
                    if Self.requestHash(entry) != fingerprint {
                        problem("key \(key.key): a client was answered with the outcome of another request (seq \(entry.seq))")
                    }
                    if case .accepted = attempt.outcome, case .debitRefused = entry.event {
                        problem("key \(key.key): accepted with a refusal entry (seq \(entry.seq))")
                    }
                case .keyReused(let original):
                    guard let journaled else {
                        problem("key \(key.key): answered IDEMPOTENCY_KEY_REUSED (original seq \(original.seq), "
                                + "\(describe(original))) but the journal has no entry for the key")
                        continue
                    }
                    if original != journaled {
                        problem("key \(key.key): answered IDEMPOTENCY_KEY_REUSED citing seq \(original.seq), the journal's is seq \(journaled.seq)")
                    }
                    if journaledHash == fingerprint {
                        problem("key \(key.key): answered IDEMPOTENCY_KEY_REUSED to the very request the journal recorded")
                    }
                case .unknownAccount:
                    if let journaled, !Self.isUnknownAccountRefusal(journaled) {
                        problem("key \(key.key): refused as an unknown account without being recorded, but the key holds \(describe(journaled))")
                    }
                case .failed:
                    break  // settled by checkFailedCalls
                }
            }
        }
    }

    /// Replays the journal from seq 1 onto empty books, checking on the way
    /// that each debit's recorded outcome is what the books before it decide,
    /// that Free and Trial balances never go negative, that the run quota of
    /// a period is never exceeded, and that each run counts once a period.
    private mutating func replayFromScratch() -> LedgerState {
        var state = LedgerState(plans: result.plans)
        var runsByPeriod: [String: [Int64: Set<String>]] = [:]
        var checkpoints = Dictionary(grouping: result.disk.writtenCheckpoints(), by: \.checkpoint.seq)
        for (session, checkpoint) in checkpoints.removeValue(forKey: 0) ?? [] where LedgerState(checkpoint: checkpoint) != state {
            problem("a checkpoint at seq 0 written by session \(session) is not the empty books")
        }
        defer {
            for (seq, written) in checkpoints where seq > Int64(journal.count) {
                problem("\(written.count) checkpoint(s) at seq \(seq) were stored, beyond the journal (\(journal.count) entries)")
            }
        }
        var model = DecisionModel(plans: result.plans)
        for entry in journal {
            switch entry.event {
            case .debitAccepted(let debit):
                redecide(entry, account: debit.accountID, key: debit.idempotencyKey, hash: debit.requestHash, on: state)
                expect(entry, account: debit.accountID, key: debit.idempotencyKey, hash: debit.requestHash, by: model)
                model.accepted(debit, atMicros: entry.atUnixMicros)
            case .debitRefused(let refused):
                redecide(entry, account: refused.accountID, key: refused.idempotencyKey, hash: refused.requestHash, on: state)
                expect(entry, account: refused.accountID, key: refused.idempotencyKey, hash: refused.requestHash, by: model)
            case .accountCreated(let created):
                if let disagreement = model.created(created, at: entry.atUnixMicros / 1_000_000) {
                    problem("seq \(entry.seq): account \(created.accountID): \(disagreement)")
                }
            case .creditsGranted(let grant):
                model.granted(grant)
            case .plansConfigured, nil:
                break
            default:
                problem("seq \(entry.seq): \(describe(entry)), which the simulation never asks for and its decision model does not know")
            }
            do {
                try state.apply(entry)
            } catch {
                problem("seq \(entry.seq) does not apply to the books replayed from scratch: \(error)")
                state.lastSeq = entry.seq
                continue
            }
            for (session, checkpoint) in checkpoints.removeValue(forKey: entry.seq) ?? [] {
                let loaded = LedgerState(checkpoint: checkpoint)
                guard loaded != state else { continue }
                let differing = Set(loaded.accounts.keys).union(state.accounts.keys).sorted()
                    .filter { loaded.accounts[$0] != state.accounts[$0] }
                    .map { id in "\(id) (balance \(loaded.accounts[id]?.balance ?? 0) vs \(state.accounts[id]?.balance ?? 0))" }
                let events = result.disk.events
                let written = events.firstIndex { $0.hasPrefix("checkpoint seq \(entry.seq) by session \(session) ") }
                let history = written.map { events[max(0, $0 - 5)...$0].joined(separator: "; ") } ?? ""
                problem("the checkpoint at seq \(entry.seq) written by session \(session) is not the journal's books at that seq: "
                        + "differs for \(differing.joined(separator: ", ")); the disk's history up to it: \(history)")
            }
            guard case .debitAccepted(let debit) = entry.event, let book = state.accounts[debit.accountID] else { continue }
            if !book.accruesOverage(in: result.plans), book.balance < 0 {
                problem("seq \(entry.seq): \(book.plan) account \(book.accountID) has a negative balance \(book.balance)")
            }
            if debit.balanceAfterMicros != book.balance {
                problem("seq \(entry.seq): balance_after \(debit.balanceAfterMicros), replayed balance \(book.balance)")
            }
            let period = BillingPeriod.containing(entry.atUnixMicros / 1_000_000, anchor: book.periodAnchor).start
            let inserted = runsByPeriod[debit.accountID, default: [:]][period, default: []].insert(debit.runID).inserted
            if inserted != debit.newRun {
                problem("seq \(entry.seq): new_run is \(debit.newRun) for run \(debit.runID), whose first debit this period it \(inserted ? "is" : "is not")")
            }
            let runs = runsByPeriod[debit.accountID]![period]!.count
            if let quota = book.terms(in: result.plans).runQuota, runs > Int(quota) {
                problem("seq \(entry.seq): account \(book.accountID) ran \(runs) runs in the period from \(period), quota \(quota)")
            }
        }
        return state
    }

    private mutating func redecide(_ entry: Entry, account: String, key: String, hash: Data, on state: LedgerState) {
        guard let command = result.requests[RequestIdentity(account: account, key: key, fingerprint: hash)] else {
            problem("seq \(entry.seq): debit of account \(account) key \(key) matches no request a client sent")
            return
        }
        let decided = state.decide(command, nowMicros: entry.atUnixMicros, plans: result.plans)
        if decided != entry.event {
            problem("seq \(entry.seq) (key \(key)): the journal records \(describe(entry)); the books before it decide "
                    + "\(describe(decided))")
        }
    }

    /// The journaled outcome is the one DESIGN.md's rules give (`DecisionModel`).
    private mutating func expect(_ entry: Entry, account: String, key: String, hash: Data, by model: DecisionModel) {
        guard let command = result.requests[RequestIdentity(account: account, key: key, fingerprint: hash)],
              let journaled = DecisionModel.journaled(entry.event) else { return }  // (reported by redecide)
        let expected = model.expected(command, atMicros: entry.atUnixMicros)
        if journaled != expected {
            problem("seq \(entry.seq) (key \(key)): the journal records \(journaled); the rules give \(expected)")
        }
    }

    /// The rebuilt ledger (checkpoint + replay) holds exactly the books
    /// replayed from scratch; balances, overage and usage roll-ups equal
    /// sums computed from the journal directly.
    private mutating func checkRebuiltLedger(against replayed: LedgerState) async throws {
        let rebuilt = await result.ledger.snapshot
        if rebuilt != replayed {
            for id in Set(rebuilt.accounts.keys).union(replayed.accounts.keys).sorted()
            where rebuilt.accounts[id] != replayed.accounts[id] {
                problem("account \(id): the rebuilt ledger's books differ from the journal replayed from scratch: "
                        + "rebuilt \(String(describing: rebuilt.accounts[id])), replayed \(String(describing: replayed.accounts[id]))")
            }
            if rebuilt.lastSeq != replayed.lastSeq {
                problem("the rebuilt ledger is at seq \(rebuilt.lastSeq), the journal at \(replayed.lastSeq)")
            }
        }
        // Every other part too (API keys, invoices, pending charges, the
        // clock, plan terms), as `billing verify` compares them.
        for difference in LedgerAudit.differences(loaded: rebuilt, scanned: replayed)
        where !difference.hasPrefix("account ") && !difference.contains("ends at seq") {
            problem("the rebuilt ledger: \(difference)")
        }

        var granted: [String: Int64] = [:]
        var fromCredits: [String: Int64] = [:]
        var overage: [String: Int64] = [:]
        var totals: [String: Int64] = [:]
        var usage: [String: [UsageKey: UsageCell]] = [:]
        for entry in journal {
            switch entry.event {
            case .creditsGranted(let grant):
                granted[grant.accountID, default: 0] += grant.amountMicros
            case .debitAccepted(let debit):
                fromCredits[debit.accountID, default: 0] += debit.fromCreditsMicros
                overage[debit.accountID, default: 0] += debit.overageMicros
                totals[debit.accountID, default: 0] += debit.totalMicros
                let day = entry.atUnixMicros / 86_400_000_000
                // Lines of nothing make no cell.
                for line in debit.lines where line.amountMicros != 0 || line.quantity != 0 || line.item.llm.inputTokens != 0
                    || line.item.llm.outputTokens != 0 {
                    var cell = usage[debit.accountID, default: [:]][UsageKey(day: day, agentID: debit.agentID, lineKey: line.key)] ?? UsageCell()
                    cell.amount += line.amountMicros
                    cell.quantity += line.quantity
                    if case .llm(let llm) = line.item.kind {
                        cell.inputTokens += llm.inputTokens
                        cell.outputTokens += llm.outputTokens
                    }
                    usage[debit.accountID, default: [:]][UsageKey(day: day, agentID: debit.agentID, lineKey: line.key)] = cell
                }
            default:
                break
            }
        }
        for (id, book) in rebuilt.accounts.sorted(by: { $0.key < $1.key }) {
            let expectedBalance = granted[id, default: 0] - fromCredits[id, default: 0]
            if book.balance != expectedBalance {
                problem("account \(id): balance \(book.balance) != granted \(granted[id, default: 0]) - debited from credits \(fromCredits[id, default: 0])")
            }
            if book.overage != overage[id, default: 0] {
                problem("account \(id): overage \(book.overage) != the journal's \(overage[id, default: 0])")
            }
            if book.granted != granted[id, default: 0] || book.debitedFromCredits != fromCredits[id, default: 0] {
                problem("account \(id): lifetime granted/debited \(book.granted)/\(book.debitedFromCredits) != the journal's "
                        + "\(granted[id, default: 0])/\(fromCredits[id, default: 0])")
            }
            guard let cells = try await result.ledger.usage(account: id, fromDay: .min, toDay: .max) else {
                problem("account \(id): the rebuilt ledger has no usage for it")
                continue
            }
            let sum = cells.values.reduce(Int64(0)) { $0 + $1.amount }
            if sum != totals[id, default: 0] {
                problem("account \(id): usage roll-ups add up to \(sum), accepted debits to \(totals[id, default: 0])")
            }
            let expected = usage[id, default: [:]]
            if cells != expected {
                for cell in Set(cells.keys).union(expected.keys) where cells[cell] != expected[cell] {
                    problem("account \(id) usage \(cell): ledger \(String(describing: cells[cell])), journal \(String(describing: expected[cell]))")
                }
            }
        }
        let audit = try LedgerAudit.run(on: result.store, plans: result.plans)
        for text in audit.problems { problem("billing verify: \(text)") }
    }

    /// A call that failed was either never recorded or recorded once; then
    /// GetDebit finds it and a retry with the same request returns it,
    /// charging nothing more.
    private mutating func checkFailedCalls() async throws {
        let lastSeq = await result.ledger.lastSeq
        var settled: Set<RequestIdentity> = []
        for attempt in result.record.attempts {
            guard case .failed = attempt.outcome, settled.insert(RequestIdentity(attempt.command)).inserted else { continue }
            let key = SimulatedDisk.DebitKey(account: attempt.command.accountID, key: attempt.command.idempotencyKey)
            let found = try await result.ledger.settledDebit(account: key.account, key: key.key)
            guard let journaled = entry(for: key) else {
                if let found { problem("key \(key.key): GetDebit finds seq \(found.seq), the journal has nothing") }
                continue
            }
            if found != journaled {
                problem("key \(key.key): GetDebit finds \(found.map { "seq \($0.seq)" } ?? "nothing"), the journal has seq \(journaled.seq)")
            }
            let retried: DebitOutcome
            do {
                retried = try await result.ledger.frontEndDebit(attempt.command)
            } catch {
                problem("key \(key.key): retry after the failure threw \(error)")
                continue
            }
            let sameRequest = Self.requestHash(journaled) == Data(attempt.command.fingerprint)
            switch retried {
            case .accepted(let entry), .refused(let entry):
                if !sameRequest || entry.entry != journaled {
                    problem("key \(key.key): retry answered seq \(entry.seq), the journal has seq \(journaled.seq) (same request: \(sameRequest))")
                }
            case .keyReused(let original):
                if sameRequest || original.entry != journaled {
                    problem("key \(key.key): retry answered IDEMPOTENCY_KEY_REUSED (original seq \(original.seq)), the journal has seq \(journaled.seq) (same request: \(sameRequest))")
                }
            case .unknownAccount:
                if sameRequest || !Self.isUnknownAccountRefusal(journaled) {
                    problem("key \(key.key): retry answered unknown account, the journal has \(describe(journaled)) (same request: \(sameRequest))")
                }
            case .failed(let error):
                problem("key \(key.key): retry failed: \(error)")
            }
        }
        let after = await result.ledger.lastSeq
        if after != lastSeq { problem("retries of recorded keys appended \(after - lastSeq) entries") }
    }

    static func isUnknownAccountRefusal(_ entry: Entry) -> Bool {
        if case .debitRefused(let refused) = entry.event { refused.reason == "ACCOUNT_NOT_FOUND" } else { false }
    }

    static func requestHash(_ entry: Entry) -> Data {
        switch entry.event {
        case .debitAccepted(let debit): debit.requestHash
        case .debitRefused(let refused): refused.requestHash
        default: Data()
        }
    }

    private func describe(_ entry: Entry) -> String { "seq \(entry.seq): " + describe(entry.event) }

    private func describe(_ event: Entry.OneOf_Event?) -> String {
        switch event {
        case .debitAccepted(let debit)?:
            "accepted \(debit.accountID)/\(debit.idempotencyKey) run \(debit.runID) total \(debit.totalMicros) "
                + "(credits \(debit.fromCreditsMicros), overage \(debit.overageMicros), new run \(debit.newRun))"
        case .debitRefused(let refused)?: "refused \(refused.accountID)/\(refused.idempotencyKey) \(refused.reason)"
        case .accountCreated(let created)?: "account \(created.accountID) created (\(created.plan))"
        case .creditsGranted(let grant)?: "grant of \(grant.amountMicros) to \(grant.accountID)"
        case .apiKeyCreated(let created)?: "API key \(created.keyID) created"
        case .apiKeyRevoked(let revoked)?: "API key \(revoked.keyID) revoked"
        case .lifecycle(let event)?: "lifecycle event of \(event.accountID)"
        case .chargeRecorded(let recorded)?: "charge \(recorded.charge.chargeID)"
        case .creditsPurchased(let purchase)?: "purchase of \(purchase.amountMicros) by \(purchase.accountID)"
        case .chargeStarted(let started)?: "charge \(started.gatewayKey) started for \(started.accountID)"
        case .clockSet(let set)?: "test clock set to \(set.nowUnix)"
        case .plansConfigured?: "plan terms configured"
        case nil: "empty"
        }
    }
}
