import BillingCore
import BillingLedger
import BillingProto
import Foundation
import Logging

enum Fixtures {
    /// Prices in code: two models, two listed integrations and a default, both storage kinds.
    static let catalog: PriceCatalog = {
        do {
            return try PriceCatalog(
                version: "test-2026-01",
                models: [
                    "gpt-4o": ModelRates(inputMicrosPerMillionTokens: 2_500_000, outputMicrosPerMillionTokens: 10_000_000),
                    "mini": ModelRates(inputMicrosPerMillionTokens: 150_000, outputMicrosPerMillionTokens: 600_000),
                ],
                toolCallMicrosPerCall: ["slack": 1_000, "github": 2_500],
                defaultToolCallMicrosPerCall: 500,
                storageMicrosPerGiB: [.knowledgeBase: 100_000, .traces: 20_000])
        } catch {
            preconditionFailure("test catalog: \(error)")
        }
    }()

    /// Small quotas, so that a short workload reaches them: Free 3 runs and
    /// one workspace, Pro (and so Trial) 8 runs, Enterprise unlimited.
    static let plans: PlanCatalog = {
        var plans = PlanCatalog.default
        plans.free.runQuota = 3
        plans.pro.runQuota = 8
        return plans
    }()

    static let logger = Logger(label: "billing-ledger-tests", factory: { _ in SwiftLogNoOpLogHandler() })

    static func configuration(maxBatch: Int = 16, maxQueued: Int = 4_096,
                              checkpointEvery: Int = 50) -> LedgerConfiguration {
        var configuration = LedgerConfiguration()
        configuration.maxBatch = maxBatch
        configuration.maxQueued = maxQueued
        configuration.checkpointEvery = checkpointEvery
        // Small: a test ledger holds a few hundred keys, and many are opened.
        configuration.keyFilterBytes = 64 << 10
        // The debit rules are tested from a zero balance.
        configuration.trialCreditMicros = 0
        return configuration
    }

    /// A validated, priced debit, as MeteringService builds it.
    static func command(account: String, key: String, workspace: String = "ws-1", agent: String = "agent-1",
                        run: String = "run-1", items: [LineItem]) throws -> DebitCommand {
        DebitCommand(
            accountID: account, workspaceID: workspace, agentID: agent, runID: run, idempotencyKey: key,
            priced: try catalog.price(items),
            fingerprint: DebitCommand.fingerprint(workspaceID: workspace, agentID: agent, runID: run, items: items))
    }

    /// A debit of exactly `micros`: gpt-4o input tokens cost 2.5 micros each,
    /// so 2 tokens are exactly 5 micros.
    static func command(account: String, key: String, micros: Int64, workspace: String = "ws-1",
                        agent: String = "agent-1", run: String = "run-1") throws -> DebitCommand {
        precondition(micros % 5 == 0, "test amounts are multiples of 5 micros")
        return try command(account: account, key: key, workspace: workspace, agent: agent, run: run,
                           items: [.llm(model: "gpt-4o", inputTokens: micros / 5 * 2, outputTokens: 0)])
    }
}

extension Ledger {
    /// The front end of a debit as MeteringService does it: when the hot
    /// cache misses, look the key up in the store before entering the ledger.
    nonisolated func priorLookup(_ command: DebitCommand) throws -> PriorLookup {
        // The generation, then the filter: a key it never saw needs no lookup.
        let current = cache.generation
        guard keyFilter.mightContain(command.keyHash) else { return PriorLookup(entry: nil, generation: current) }
        let (cached, generation) = cache.lookup(account: command.accountID, key: command.idempotencyKey)
        if cached != nil { return PriorLookup(entry: nil, generation: generation) }
        let stored = try storedDebit(account: command.accountID, key: command.idempotencyKey)
        return PriorLookup(stored: stored, generation: generation)
    }

    nonisolated func frontEndDebit(_ command: DebitCommand) async throws -> DebitOutcome {
        try await debit(command, prior: try priorLookup(command))
    }

    /// Opens a ledger as the server does.
    static func open(on store: any LedgerStore, clock: any LedgerClock, plans: PlanCatalog = Fixtures.plans,
                     configuration: LedgerConfiguration = Fixtures.configuration()) throws -> Ledger {
        try Ledger(store: store, plans: plans, clock: clock, configuration: configuration, logger: Fixtures.logger)
    }
}

extension DebitOutcome {
    /// The entry answered with: the outcome's own, or the original a reused key cites.
    var entry: Entry? {
        switch self {
        case .accepted(let record), .refused(let record), .keyReused(original: let record): record.entry
        case .unknownAccount, .failed: nil
        }
    }

    var accepted: Billing_Journal_V1_DebitAccepted? {
        if case .accepted(let entry) = self, case .debitAccepted(let debit) = entry.event { return debit }
        return nil
    }

    /// The refusal's reason, or nil when accepted or key reused.
    var refusalReason: String? {
        if case .refused(let entry) = self, case .debitRefused(let refused) = entry.event { return refused.reason }
        return nil
    }

    var isKeyReused: Bool {
        if case .keyReused = self { return true }
        return false
    }

    /// Refused because the account does not exist: recorded, or (a reused key) not.
    var isUnknownAccount: Bool {
        if case .unknownAccount = self { return true }
        return refusalReason == "ACCOUNT_NOT_FOUND"
    }
}

extension Ledger {
    /// Opens an account by plan name ("trial" for a trial), as the tests
    /// written before lifecycles name them.
    func createAccount(id: String, plan: String, actor: String) async throws -> Billing_Journal_V1_Entry {
        try await createAccount(id: id, plan: Plan(rawValue: plan), actor: actor)
    }
}

extension Ledger {
    /// `usageCells` by key (tests compare cell tables).
    func usage(account: String, fromDay: Int64, toDay: Int64) throws(LedgerError) -> [UsageKey: UsageCell]? {
        try usageCells(account: account, fromDay: fromDay, toDay: toDay).map { Dictionary(uniqueKeysWithValues: $0.lazy.map { ($0.key, $0.value) }) }
    }
}
