import BillingCore
import BillingProto
import SwiftProtobuf

/// The requests one connection sends, seeded by its index: the RPC mix
/// over the run's accounts and agents, debits with fresh idempotency keys,
/// and cost queries for runs this connection's debits created (answered OK),
/// else for the run provisioning debited for the account.
package struct LoadRequests {
    package struct Request {
        package let rpc: LoadRPC
        package let message: [UInt8]
        /// A unary debit's account and run: once it is answered OK, cost
        /// queries may ask for that run (`acknowledged`).
        package var debited: (account: String, run: String)? = nil
    }

    let connection: Int
    let plan: LoadPlan
    private var rng: SplitMix64
    /// Debits made so far; numbers their keys.
    private var sequence: Int64 = 0
    /// The newest run per account whose debit was answered OK, for
    /// GetExecutionCost calls (a run whose debit is still in flight, or was
    /// refused, may not exist yet).
    private var lastRun: [String: String] = [:]

    package init(connection: Int, plan: LoadPlan) {
        self.connection = connection
        self.plan = plan
        // Each connection's seed is itself a SplitMix64 output: seeds c·γ + 1
        // (γ its own step) made connection c's draws connection 0's shifted
        // by c, so with 5 or more connections two drew the same accounts.
        var seeder = SplitMix64(seed: 0x5EED_0F_10AD &+ UInt64(connection))
        rng = SplitMix64(seed: seeder.next())
    }

    /// The next call: an RPC drawn from the mix, on an account drawn from the run's.
    package mutating func next() throws -> Request {
        let rpc = plan.mix[rng.next(below: plan.mix.count)]
        let account = plan.accounts[rng.next(below: plan.accounts.count)]
        switch rpc {
        case .debit:
            let debit = debit(account)
            return Request(rpc: rpc, message: try debit.serializedBytes(), debited: (account, debit.runID))
        case .quote:
            var quote = Billing_V1_QuoteRequest()
            quote.accountID = account
            quote.workspaceID = "w1"
            quote.agentID = agent()
            quote.lineItems = lineItems()
            return Request(rpc: rpc, message: try quote.serializedBytes())
        case .batch:
            var batch = Billing_V1_DebitBatchRequest()
            batch.debits = (0..<plan.batchSize).map { _ in debit(account) }
            return Request(rpc: rpc, message: try batch.serializedBytes())
        case .cost:
            // The account's newest run this connection debited, else the
            // run provisioning debited for it (`LoadKeys.seedRun`).
            var cost = Billing_V1_GetExecutionCostRequest()
            cost.accountID = account
            cost.runID = lastRun[account] ?? LoadKeys.seedRun(account: account)
            return Request(rpc: rpc, message: try cost.serializedBytes())
        case .usage:
            var usage = Billing_V1_GetUsageRequest()
            usage.accountID = account
            usage.groupBy = [.day, .lineItem]
            return Request(rpc: rpc, message: try usage.serializedBytes())
        }
    }

    /// A debit with a key unique across connections and runs of the tool.
    private mutating func debit(_ account: String) -> Billing_V1_DebitRequest {
        sequence += 1
        var debit = Billing_V1_DebitRequest()
        debit.accountID = account
        debit.workspaceID = "w1"
        debit.agentID = agent()
        debit.runID = LoadKeys.run(runID: plan.runID, connection: connection, sequence: sequence)
        debit.idempotencyKey = LoadKeys.key(runID: plan.runID, connection: connection, sequence: sequence)
        debit.lineItems = lineItems()
        return debit
    }

    /// A unary debit of `run` for `account` was answered OK.
    package mutating func acknowledged(account: String, run: String) {
        lastRun[account] = run
    }

    private mutating func agent() -> String {
        "agent-\(rng.next(below: plan.agents))"
    }

    private mutating func lineItems() -> [Billing_V1_LineItem] {
        var llm = Billing_V1_LineItem()
        llm.llm.model = "gpt-4o-mini"
        llm.llm.inputTokens = Int64(rng.next() % 4000)
        llm.llm.outputTokens = Int64(rng.next() % 1000)
        var tool = Billing_V1_LineItem()
        tool.toolCall.integration = "slack"
        tool.toolCall.calls = 1
        return [llm, tool]
    }
}
