import Foundation
public import BillingCore
public import BillingLedger
import BillingProto
import TLS
import GRPC

/// billing.v1.Metering: the hot path. Validates and prices outside the
/// ledger actor, looks up old idempotency keys in SQLite outside it too, so
/// the actor only decides, applies and queues.
public final class MeteringService: Sendable {
    let ledger: Ledger
    let catalog: PriceCatalog
    /// Recently asked runs' totals (`runCost`).
    let runSummaries = RunSummaries()

    public init(ledger: Ledger, catalog: PriceCatalog) {
        self.ledger = ledger
        self.catalog = catalog
    }

    /// Debit and Quote start on the connection's event loop, as deferred
    /// methods: microseconds of in-memory work. On the loop that runs the
    /// ledger actor (the first; every loop when there is one) they enter the
    /// ledger synchronously — no task, no actor hop, no thread hand-off —
    /// and a Debit answers from its commit callback, which the journal
    /// thread hands back to the loop with the rest of its commit's (the
    /// response is built and sent there, at once). On another loop they continue
    /// as a task there that awaits the actor. A Debit whose key only SQLite
    /// can tell about (a filter hit the cache does not hold: a retry of an
    /// old key, or ~0.3 % of new keys at 10 million) continues on the pool,
    /// where it reads SQLite. A request over 64 KiB runs on the pool too.
    /// GetUsage and GetExecutionCost are deferred too (see theirs). DebitBatch's
    /// handler stays on the pool (a retried batch of old keys is hundreds of
    /// reads; deferred on the loop it measured the same), as does GetDebit:
    /// they may read SQLite or run long. Their ledger work, like every
    /// caller's, runs on the ledger's loop between its socket events.
    static let maxLoopRequestBytes = 64 << 10

    func register(into router: inout SecuredRouter) {
        router.registerDeferred("/billing.v1.Metering/Debit", maxRequestBytes: Self.maxLoopRequestBytes, { [self] (request: Billing_V1_DebitRequest, respond) in
            debit(request, respond)
        }, otherwise: { [self] (request: Billing_V1_DebitRequest, _) in
            try await debit(request)
        })
        router.register("/billing.v1.Metering/DebitBatch") { [self] (request: Billing_V1_DebitBatchRequest, _) in
            try await debitBatch(request)
        }
        router.registerDeferred("/billing.v1.Metering/Quote", maxRequestBytes: Self.maxLoopRequestBytes, { [self] (request: Billing_V1_QuoteRequest, respond) in
            quote(request, respond)
        }, otherwise: { [self] (request: Billing_V1_QuoteRequest, _) in
            try await quote(request)
        })
        router.register("/billing.v1.Metering/GetDebit") { [self] (request: Billing_V1_GetDebitRequest, _) in
            try await getDebit(request)
        }
        router.registerDeferred("/billing.v1.Metering/GetExecutionCost", maxRequestBytes: Self.maxLoopRequestBytes, { [self] (request: Billing_V1_GetExecutionCostRequest, respond) in
            executionCost(request, respond)
        }, otherwise: { [self] (request: Billing_V1_GetExecutionCostRequest, _) in
            try await executionCost(request)
        })
        router.registerDeferred("/billing.v1.Metering/GetUsage", maxRequestBytes: Self.maxLoopRequestBytes, { [self] (request: Billing_V1_GetUsageRequest, respond) in
            usage(request, respond)
        }, otherwise: { [self] (request: Billing_V1_GetUsageRequest, _) in
            try await usage(request)
        })
    }

    func command(_ request: Billing_V1_DebitRequest) throws(GRPCStatus) -> DebitCommand {
        switch try commandOrUnpriceable(request) {
        case .command(let command): return command
        case .unpriceable(_, let refusal): throw refusal
        }
    }

    /// A debit request made a command, or — its ids and line items valid —
    /// the catalog's refusal to price it, with its items (for `settledRetry`).
    enum Commanded {
        case command(DebitCommand)
        case unpriceable([LineItem], GRPCStatus)
    }

    func commandOrUnpriceable(_ request: Billing_V1_DebitRequest) throws(GRPCStatus) -> Commanded {
        try requireID(request.accountID, "account_id")
        try requireID(request.workspaceID, "workspace_id")
        try requireID(request.agentID, "agent_id")
        try requireID(request.runID, "run_id")
        try requireID(request.idempotencyKey, "idempotency_key")
        let items = try catalog.lineItems(request.lineItems)
        // Over a limit: refused, unless it is the retry of a debit charged
        // before the limits (its key answers; session 28's diff review: a
        // retry across the upgrade heard INVALID_ARGUMENT, "nothing charged").
        if let tooLarge = MeteringLimits.quantityRefusal(request.lineItems) { return .unpriceable(items, tooLarge) }
        let priced: PricedDebit
        do {
            priced = try catalog.priced(items)
        } catch where Self.catalogDependent.contains(error.errorInfo?.reason ?? "") {
            // A refusal the catalog in force decides (a model or integration
            // since removed, prices since raised): maybe a retry of a debit
            // priced before. Bad input as such (a negative quantity, no line
            // items) is refused at once — looked up as a retry, it could hear
            // UNAVAILABLE during a reload instead of INVALID_ARGUMENT.
            return .unpriceable(items, error)
        }
        return .command(DebitCommand(
            accountID: request.accountID, workspaceID: request.workspaceID, agentID: request.agentID,
            runID: request.runID, idempotencyKey: request.idempotencyKey, priced: priced,
            digest: Self.fingerprint(request, items)))
    }

    /// Pricing refusals that depend on the catalog, not on the request alone.
    static let catalogDependent: Set<String> = ["UNKNOWN_MODEL", "UNKNOWN_INTEGRATION", "AMOUNT_TOO_LARGE"]

    /// The request's fingerprint: SHA-256 of its canonical form.
    static func fingerprint(_ request: Billing_V1_DebitRequest, _ items: [LineItem]) -> Data {
        DebitCommand.withCanonicalBytes(workspaceID: request.workspaceID, agentID: request.agentID, runID: request.runID,
                                        items: items, OpenSSLCrypto.sha256Data)
    }

    /// A debit the current catalog cannot price (a model or an integration
    /// since removed), answered as the retry it may be: if its key holds a
    /// durable outcome of this very request (the fingerprint is of the line
    /// items, not their prices), that outcome; else the pricing refusal.
    /// Refused first, a retry of a charged debit heard INVALID_ARGUMENT —
    /// "nothing was charged" — for a debit that was.
    func settledRetry(_ request: Billing_V1_DebitRequest, _ items: [LineItem],
                      unpriceable refusal: GRPCStatus) async throws -> Billing_V1_DebitResponse {
        // A key the filter never saw (a typo on a new key: the usual case)
        // is refused at once, without a hop to the ledger.
        guard ledger.keyFilter.mightContain(JournalKeyHash.debit(account: request.accountID, key: request.idempotencyKey)),
              let stored = try await ledger.settledDebit(account: request.accountID, key: request.idempotencyKey)
        else { throw refusal }
        let fingerprint = Self.fingerprint(request, items)
        let record = JournalRecord(stored)
        if record.isAccepted, record.accepted.requestHash == fingerprint { return Billing_V1_DebitResponse(record) }
        if case .debitRefused(let refused)? = record.event, refused.requestHash == fingerprint { throw Refusals.status(refused) }
        throw refusal  // another request under the key: its own refusal comes first (bad input)
    }

    /// What memory tells of a debit's key before it enters the ledger.
    enum MemoryLookup {
        /// Enough for the ledger: a key the filter has never seen (the
        /// usual new key), or one the cache holds (the ledger finds it).
        case known(PriorLookup)
        /// Only SQLite can tell (a filter hit the cache does not hold: a
        /// retry of an old key, or a false positive); `generation` is the
        /// cache's at the miss.
        case needsStore(generation: UInt64)

        var known: PriorLookup? {
            if case .known(let prior) = self { return prior }
            return nil
        }
    }

    func memoryLookup(_ command: DebitCommand) -> MemoryLookup {
        // The generation first: a key journaled after the filter answers is
        // in the cache until a drop, which changes the generation and sends
        // the ledger to the store.
        let current = ledger.cache.generation
        guard ledger.keyFilter.mightContain(command.keyHash) else { return .known(PriorLookup(entry: nil, generation: current)) }
        let (cached, generation) = ledger.cache.lookup(account: command.accountID, key: command.idempotencyKey, hash: command.keyHash)
        if cached != nil { return .known(PriorLookup(entry: nil, generation: generation)) }
        return .needsStore(generation: generation)
    }

    /// The key's committed outcome: from memory, else from SQLite (no read
    /// for a key the filter has never seen).
    func prior(_ command: DebitCommand) throws -> PriorLookup {
        switch memoryLookup(command) {
        case .known(let prior):
            return prior
        case .needsStore(let generation):
            let stored = try ledger.storedDebit(account: command.accountID, key: command.idempotencyKey, hash: command.keyHash)
            return PriorLookup(stored: stored, generation: generation)
        }
    }

    func debit(_ request: Billing_V1_DebitRequest) async throws -> Billing_V1_DebitResponse {
        switch try commandOrUnpriceable(request) {
        case .command(let command):
            return try await debit(command, prior: try mappedPrior(command))
        case .unpriceable(let items, let refusal):
            return try await mappedRetry(request, items, refusal)
        }
    }

    /// `settledRetry` with the ledger's errors mapped as a debit's are.
    func mappedRetry(_ request: Billing_V1_DebitRequest, _ items: [LineItem],
                     _ refusal: GRPCStatus) async throws -> Billing_V1_DebitResponse {
        do {
            return try await settledRetry(request, items, unpriceable: refusal)
        } catch {
            throw Refusals.status(error)
        }
    }

    /// `prior`, a failed store read mapped as the ledger's errors are.
    func mappedPrior(_ command: DebitCommand) throws -> PriorLookup {
        do {
            return try prior(command)
        } catch {
            throw Refusals.status(error)
        }
    }

    func debit(_ command: DebitCommand, prior: PriorLookup) async throws -> Billing_V1_DebitResponse {
        let outcome: DebitOutcome
        do {
            outcome = try await ledger.debit(command, prior: prior)
        } catch {
            throw Refusals.status(error)
        }
        return try Self.response(outcome, command)
    }

    /// Debit as a deferred method (see `register`). A key only SQLite can
    /// tell about is looked up on the pool, not on the loop.
    func debit(_ request: Billing_V1_DebitRequest, _ respond: GRPCResponder) {
        let command: DebitCommand
        do {
            switch try commandOrUnpriceable(request) {
            case .command(let made):
                command = made
            case .unpriceable(let items, let refusal):
                respond.continueAsTask(onLoop: false) { [self] in try await mappedRetry(request, items, refusal).handEncoded() }
                return
            }
        } catch {
            respond.fail(error)
            return
        }
        guard let prior = memoryLookup(command).known else {
            respond.continueAsTask(onLoop: false) { [self] in try await debit(command, prior: mappedPrior(command)).handEncoded() }
            return
        }
        let entered: Void? = ledger.whenOnExecutor { ledger in
            ledger.debitNow(command, prior: prior) { result in
                // Here on the ledger's executor: this connection's loop.
                respond.answer { try Self.response(result.mapError(Refusals.status).get(), command).handEncoded() }
            }
        }
        if entered == nil {
            respond.continueAsTask(onLoop: true) { [self] in try await debit(command, prior: prior).handEncoded() }
        }
    }

    static func response(_ outcome: DebitOutcome, _ command: DebitCommand) throws(GRPCStatus) -> Billing_V1_DebitResponse {
        switch outcome {
        case .accepted(let record):
            guard record.isAccepted else { preconditionFailure("accepted without a debit") }
            return Billing_V1_DebitResponse(record)
        case .refused(let record):
            guard case .debitRefused(let refused) = record.event else { preconditionFailure("refused without a refusal") }
            throw Refusals.status(refused)
        case .keyReused:
            throw Refusals.keyReused(account: command.accountID, key: command.idempotencyKey)
        case .unknownAccount:
            throw Refusals.status(LedgerError.accountNotFound(command.accountID))
        case .failed(let error):
            throw Refusals.status(error)
        }
    }

    func debitBatch(_ request: Billing_V1_DebitBatchRequest) async throws -> Billing_V1_DebitBatchResponse {
        guard !request.debits.isEmpty else {
            throw GRPCStatus(.invalidArgument, "debits is empty", reason: "MISSING_FIELD", metadata: ["field": "debits"])
        }
        guard request.debits.count <= MeteringLimits.maxBatch else {
            throw GRPCStatus(.invalidArgument, "at most \(MeteringLimits.maxBatch) debits per batch", reason: "BATCH_TOO_LARGE")
        }
        // Invalid debits are refused on their own; the valid ones go to the ledger together.
        var results = [Billing_V1_DebitResult](repeating: Billing_V1_DebitResult(), count: request.debits.count)
        // The valid commands and where each came from (parallel arrays: the
        // commands go to the ledger as they are, not copied into another array).
        var valid: [(DebitCommand, PriorLookup)] = []
        var positions: [Int] = []
        valid.reserveCapacity(request.debits.count)
        positions.reserveCapacity(request.debits.count)
        // Two passes: the commands first, each asking for its key's filter
        // block (`KeyFilter.prefetch`), then the lookups, which find the
        // blocks loaded instead of waiting on each in turn.
        var made: [(command: DebitCommand, index: Int)] = []
        made.reserveCapacity(request.debits.count)
        var unpriceable: [(index: Int, items: [LineItem], refusal: GRPCStatus)] = []
        for index in request.debits.indices {
            do {
                switch try commandOrUnpriceable(request.debits[index]) {
                case .command(let command):
                    ledger.keyFilter.prefetch(command.keyHash)
                    made.append((command, index))
                case .unpriceable(let items, let refusal):
                    unpriceable.append((index, items, refusal))
                }
            } catch {
                results[index].refused = Refusals.batched(Refusals.status(error))
            }
        }
        for (command, index) in made {
            do {
                valid.append((command, try prior(command)))
                positions.append(index)
            } catch {
                results[index].refused = Refusals.batched(Refusals.status(error))
            }
        }
        let outcomes: [DebitOutcome]
        do {
            outcomes = try await ledger.debitBatch(valid)
        } catch {
            throw Refusals.status(error)
        }
        for (offset, index) in positions.enumerated() {
            do {
                results[index].accepted = try Self.response(outcomes[offset], valid[offset].0)
            } catch {
                results[index].refused = Refusals.batched(Refusals.status(error))
            }
        }
        // Debits the catalog cannot price: retries of settled ones are
        // answered with their outcome (see `settledRetry`), others refused.
        for (index, items, refusal) in unpriceable {
            do {
                results[index].accepted = try await mappedRetry(request.debits[index], items, refusal)
            } catch {
                results[index].refused = Refusals.batched(Refusals.status(error))
            }
        }
        // Not for an answer that will not be sent (the deadline passed, the
        // client went away: the task is cancelled first; its status, if
        // any, is counted by the gRPC layer).
        if !Task.isCancelled { RefusalMetrics.countBatched(results) }
        var response = Billing_V1_DebitBatchResponse()
        response.results = results
        return response
    }
}
