import BillingCore
import BillingLedger
import BillingProto
import TLS
import GRPC

extension MeteringService {
    func quote(_ request: Billing_V1_QuoteRequest) async throws -> Billing_V1_QuoteResponse {
        let (command, priced) = try quoteCommand(request)
        return try await quoteResponse(command, request, priced)
    }

    /// The ledger's answer to a quote, awaited, as the caller hears it.
    private func quoteResponse(_ command: DebitCommand, _ request: Billing_V1_QuoteRequest,
                               _ priced: PricedDebit) async throws -> Billing_V1_QuoteResponse {
        let looked: (record: JournalRecord, balance: Int64)?
        do {
            looked = try await ledger.quote(command)
        } catch {
            throw Refusals.status(error)
        }
        return try Self.quoteResponse(looked, request, priced)
    }

    /// Quote as a deferred method (see `register`): answered at once on the
    /// ledger's loop, else as a task awaiting the actor.
    func quote(_ request: Billing_V1_QuoteRequest, _ respond: GRPCResponder) {
        let command: DebitCommand
        let priced: PricedDebit
        do {
            (command, priced) = try quoteCommand(request)
        } catch {
            respond.fail(error)
            return
        }
        let looked: (record: JournalRecord, balance: Int64)??
        do {
            looked = try ledger.whenOnExecutor { ledger throws(LedgerError) in try ledger.quote(command) }
        } catch {
            respond.fail(Refusals.status(error))
            return
        }
        if let looked {
            respond { try Self.quoteResponse(looked, request, priced).serializedBytes() }
        } else {
            respond.continueAsTask(onLoop: true) { [self] in try await quoteResponse(command, request, priced).serializedBytes() }
        }
    }

    func quoteCommand(_ request: Billing_V1_QuoteRequest) throws(GRPCStatus) -> (DebitCommand, PricedDebit) {
        try requireID(request.accountID, "account_id")
        try requireID(request.workspaceID, "workspace_id", required: false)
        try requireID(request.agentID, "agent_id", required: false)
        try requireID(request.runID, "run_id", required: false)
        let (_, priced) = try catalog.price(request.lineItems)
        // No fingerprint: a quote records nothing, so nothing compares it.
        let command = DebitCommand(
            accountID: request.accountID, workspaceID: request.workspaceID, agentID: request.agentID,
            runID: request.runID, idempotencyKey: "", priced: priced, fingerprint: [])
        return (command, priced)
    }

    /// What the ledger said of a quoted debit (nil: no such account), as the caller hears it.
    static func quoteResponse(_ looked: (record: JournalRecord, balance: Int64)?,
                              _ request: Billing_V1_QuoteRequest, _ priced: PricedDebit) throws(GRPCStatus) -> Billing_V1_QuoteResponse {
        guard let (record, balance) = looked else {
            throw Refusals.status(LedgerError.accountNotFound(request.accountID))
        }
        var response = Billing_V1_QuoteResponse()
        response.lineItemAmountsMicros = priced.lineItems.map(\.amount.micros)
        response.totalMicros = priced.total.micros
        response.balanceMicros = balance
        response.catalogVersion = priced.catalogVersion
        if record.isAccepted {
            response.wouldAccept = true
            response.coveredByCreditsMicros = record.accepted.fromCreditsMicros
            response.overageMicros = record.accepted.overageMicros
            return response
        }
        switch record.event {
        case .debitRefused(let refused):
            if refused.reason == Rejection.accountPaused.reason { throw Refusals.status(refused) }
            response.wouldAccept = false
            response.refusal = Refusals.message(refused)
        default:
            preconditionFailure("decide returned a non-debit event")
        }
        return response
    }

    func getDebit(_ request: Billing_V1_GetDebitRequest) async throws -> Billing_V1_GetDebitResponse {
        try requireID(request.accountID, "account_id")
        try requireID(request.idempotencyKey, "idempotency_key")
        let entry: Billing_Journal_V1_Entry?
        do {
            entry = try await ledger.settledDebit(account: request.accountID, key: request.idempotencyKey)
        } catch {
            throw Refusals.status(error)
        }
        var response = Billing_V1_GetDebitResponse()
        switch entry?.event {
        case .debitAccepted(let accepted):
            response.outcome = .accepted
            response.debit = Billing_V1_DebitResponse(entry!, accepted)
        case .debitRefused(let refused):
            response.outcome = .refused
            response.refusal = Refusals.message(refused)
        default:
            response.outcome = .unknown
        }
        return response
    }

    func executionCost(_ request: Billing_V1_GetExecutionCostRequest) async throws -> Billing_V1_GetExecutionCostResponse {
        try requireID(request.accountID, "account_id")
        try requireID(request.runID, "run_id")
        guard await ledger.hasAccount(request.accountID) else {
            throw Refusals.status(LedgerError.accountNotFound(request.accountID))
        }
        return try runCost(request)
    }

    /// GetExecutionCost as a deferred method: the account looked up on the
    /// ledger's loop, the run's debits read on the pool (SQLite); from
    /// another loop, all of it on the pool.
    func executionCost(_ request: Billing_V1_GetExecutionCostRequest, _ respond: GRPCResponder) {
        do {
            try requireID(request.accountID, "account_id")
            try requireID(request.runID, "run_id")
        } catch {
            respond.fail(error)
            return
        }
        switch ledger.whenOnExecutor({ $0.hasAccount(request.accountID) }) {
        case false?:
            respond.fail(Refusals.status(LedgerError.accountNotFound(request.accountID)))
        case true?:
            respond.continueAsTask(onLoop: false) { [self] in try runCost(request).serializedBytes() }
        case nil:
            respond.continueAsTask(onLoop: false) { [self] in try await executionCost(request).serializedBytes() }
        }
    }

    /// The run's debits, from memory and SQLite, as the response: the
    /// page's debits, and the whole run's total, count and catalog
    /// versions. Those totals are kept for recently asked runs
    /// (`runSummaries`), so a page after the first reads only its own
    /// debits and those added to the run since — every page read and
    /// decoded the whole run, and paging through a run of n debits read
    /// n²/page_size of them.
    func runCost(_ request: Billing_V1_GetExecutionCostRequest) throws -> Billing_V1_GetExecutionCostResponse {
        let (pageSize, after) = try Self.runPage(request)
        // A reload under way, a busy or failing store: UNAVAILABLE (retry),
        // as GetUsage and GetDebit answer, not INTERNAL.
        let index: Ledger.RunIndex
        let runKey = RunSummaries.Key(account: request.accountID, run: request.runID)
        var summary = RunSummary()
        // The run's debits after `after`: at most `pageSize`, and no more
        // once their estimated size passes the page's (`maxRunPageBytes`:
        // the response stops there; session 28's review: up to 10,000
        // debits of 256 line items were read and held for a page of ~14).
        var page: [JournalRecord] = []
        var pageBytes = 0
        var pageWantsMore: Bool { page.count < pageSize && pageBytes <= Self.maxRunPageBytes }
        func take(_ record: JournalRecord) {
            page.append(record)
            pageBytes += Self.estimatedBytes(record.accepted)
        }
        do {
            index = try ledger.runIndex(account: request.accountID, run: request.runID)
            guard let last = index.seqs.last else {
                throw GRPCStatus(.notFound, "run \(request.runID) has no debits", reason: "RUN_NOT_FOUND",
                                 metadata: ["account_id": request.accountID])
            }
            // (One past the run's last seq would be of a store since replaced: start over.)
            if let known = runSummaries[runKey], known.through <= last { summary = known }
            // The tail: the run's debits after `summary.through`.
            let tailStart = index.seqs.firstIndex { $0 > summary.through } ?? index.seqs.endIndex
            // The page's debits before the tail are read a page's worth at
            // a time until it is full (the index's seqs may hold another
            // run's, sharing the hash: they are left out, not counted).
            var cursor = index.seqs.firstIndex { $0 > after } ?? index.seqs.endIndex
            while pageWantsMore, cursor < tailStart {
                let end = min(tailStart, cursor + min(Self.runPageChunk, pageSize - page.count))
                for record in try ledger.runEntries(account: request.accountID, run: request.runID, among: index.seqs[cursor..<end], in: index)
                where pageWantsMore {
                    take(record)
                }
                cursor = end
            }
            // The tail is summed as it is read, `runTailChunk` debits at a
            // time, keeping only the page's: a run's first page (or one
            // whose summary left the cache) held every debit of the run at
            // once — tens of MB for a long run.
            cursor = tailStart
            while cursor < index.seqs.endIndex {
                let end = min(index.seqs.endIndex, cursor + Self.runTailChunk)
                for record in try ledger.runEntries(account: request.accountID, run: request.runID, among: index.seqs[cursor..<end], in: index) {
                    summary.count += 1
                    summary.total += record.accepted.totalMicros
                    if !summary.catalogVersions.contains(record.accepted.catalogVersion) {
                        summary.catalogVersions.append(record.accepted.catalogVersion)
                    }
                    if pageWantsMore && record.seq > after { take(record) }
                }
                cursor = end
            }
        } catch let status as GRPCStatus {
            throw status
        } catch {
            throw Refusals.status(error)
        }
        summary.through = index.seqs.last!
        guard summary.count > 0 else {  // (seqs of another run sharing the hash only)
            throw GRPCStatus(.notFound, "run \(request.runID) has no debits", reason: "RUN_NOT_FOUND",
                             metadata: ["account_id": request.accountID])
        }
        runSummaries[runKey] = summary
        var response = Billing_V1_GetExecutionCostResponse()
        response.runID = request.runID
        response.accountID = request.accountID
        response.totalMicros = summary.total
        response.debitCount = summary.count
        response.catalogVersions = summary.catalogVersions
        var answeredBytes = 0
        // Each debit read in place from its record (`record.accepted.…`).
        for record in page {
            // A page ends at its size or at about 2 MiB, whichever comes
            // first: a stock client takes at most 4 MiB (a run of debits
            // of 256 line items each once made a 6 MB page of 1,000).
            let bytes = Self.estimatedBytes(record.accepted)
            guard response.debits.isEmpty || answeredBytes + bytes <= Self.maxRunPageBytes else {
                response.nextPageToken = "e\(response.debits.last!.entryID)"
                break
            }
            answeredBytes += bytes
            response.debits.append(Self.runDebit(record))
        }
        // A page full (by count, or by size: one debit alone past it) with
        // seqs after it: the token names where it ended (a page short of
        // both read the run to its end).
        if response.nextPageToken.isEmpty, page.count == pageSize || pageBytes > Self.maxRunPageBytes,
           let end = response.debits.last?.entryID, end < index.seqs.last! {
            response.nextPageToken = "e\(end)"
        }
        return response
    }

    /// Debits of a run's tail read at a time while it is summed (each may
    /// hold 256 line items: ~70 KB decoded; session 28: 1,024, which
    /// held ~100 MB decoded at once for such debits).
    static let runTailChunk = 64
    /// Debits read at a time to fill a page before the tail, so that the
    /// page stops near its size without reading a page_size's worth.
    static let runPageChunk = 64

    /// A debit as a GetExecutionCost page lists it.
    static func runDebit(_ record: JournalRecord) -> Billing_V1_RunDebit {
        var debit = Billing_V1_RunDebit()
        debit.entryID = record.seq
        debit.idempotencyKey = record.accepted.idempotencyKey
        debit.debitedUnixSeconds = record.atUnixMicros / 1_000_000
        debit.catalogVersion = record.accepted.catalogVersion
        debit.workspaceID = record.accepted.workspaceID
        debit.agentID = record.accepted.agentID
        debit.lineItems = record.accepted.lines.map { line in
            var priced = Billing_V1_PricedLineItem()
            priced.lineItem = line.item
            priced.key = line.key
            priced.amountMicros = line.amountMicros
            return priced
        }
        debit.totalMicros = record.accepted.totalMicros
        debit.coveredByCreditsMicros = record.accepted.fromCreditsMicros
        debit.overageMicros = record.accepted.overageMicros
        return debit
    }

    static let defaultRunPage = 1_000
    static let maxRunPage = 10_000
    static let maxRunPageBytes = 2 << 20

    /// An upper estimate of a debit's bytes in a GetExecutionCost page.
    static func estimatedBytes(_ debit: Billing_Journal_V1_DebitAccepted) -> Int {
        var bytes = 96 + debit.idempotencyKey.utf8.count + debit.workspaceID.utf8.count + debit.agentID.utf8.count
            + debit.catalogVersion.utf8.count
        for line in debit.lines {
            let name: Int = switch line.item.kind {
            case .llm(let llm)?: llm.model.utf8.count
            case .toolCall(let call)?: call.integration.utf8.count
            default: 0
            }
            bytes += 64 + line.key.utf8.count + name
        }
        return bytes
    }

    /// A GetExecutionCost page: its size, and the entry after which it
    /// starts (the token "e<entry id>": debits only ever join a run later).
    static func runPage(_ request: Billing_V1_GetExecutionCostRequest) throws(GRPCStatus) -> (size: Int, after: Int64) {
        guard request.pageSize >= 0 else {
            throw GRPCStatus(.invalidArgument, "page_size must be >= 0", reason: "INVALID_FIELD", metadata: ["field": "page_size"])
        }
        let size = request.pageSize == 0 ? defaultRunPage : min(Int(request.pageSize), maxRunPage)
        guard !request.pageToken.isEmpty else { return (size, 0) }
        guard request.pageToken.utf8.count <= 21, request.pageToken.hasPrefix("e"),
              let after = Int64(request.pageToken.dropFirst()), after > 0 else {
            throw GRPCStatus(.invalidArgument, "malformed page_token", reason: "INVALID_FIELD", metadata: ["field": "page_token"])
        }
        return (size, after)
    }

    /// A GetUsage request's whole UTC days and groupings, validated.
    struct UsageQuery: Sendable {
        var fromDay: Int64
        var toDay: Int64
        var groups: Set<Billing_V1_UsageGroupBy>
    }

    func usageQuery(_ request: Billing_V1_GetUsageRequest) throws(GRPCStatus) -> UsageQuery {
        try requireID(request.accountID, "account_id")
        let now = ledger.clock.nowMicros() / 1_000_000
        // "Now" includes the current second: its end, so the day it is in
        // (session 28's review: in a day's first second, `now` exclusive
        // left out that day's usage, and on a test clock moved to 00:00 the
        // debits made there stayed out until it moved again).
        let to = request.toUnixSeconds == 0 ? now + 1 : request.toUnixSeconds
        // Usage is kept per UTC day from 1970 to the end of year 9999.
        let latest = AccountView.endOfYear9999Unix
        // `from` equal to `to` is an empty range, allowed: "from the period's
        // start to now" in the second a period began (refused before session
        // 27). Widened to whole days like any other, so one inside a day
        // covers that day, and one at 00:00 covers nothing.
        guard request.fromUnixSeconds >= 0, to >= request.fromUnixSeconds, to <= latest else {
            throw GRPCStatus(.invalidArgument, "the range must satisfy 0 <= from_unix_seconds <= to_unix_seconds <= \(latest)",
                             reason: "INVALID_RANGE")
        }
        let groups = Set(request.groupBy)
        guard request.groupBy.count == groups.count, !groups.contains(.unspecified),
              groups.allSatisfy({ [.day, .agent, .lineItem].contains($0) }) else {
            throw GRPCStatus(.invalidArgument, "group_by takes DAY, AGENT and LINE_ITEM, each at most once", reason: "INVALID_FIELD",
                             metadata: ["field": "group_by"])
        }
        return UsageQuery(fromDay: request.fromUnixSeconds / 86_400, toDay: (to - 1) / 86_400, groups: groups)
    }

    func usage(_ request: Billing_V1_GetUsageRequest) async throws -> Billing_V1_GetUsageResponse {
        let query = try usageQuery(request)
        let cells: UsageCells?
        do {
            cells = try await ledger.committedUsage(account: request.accountID, fromDay: query.fromDay, toDay: query.toDay)
        } catch {
            throw Refusals.status(error)
        }
        guard (cells?.count ?? 0) > Self.cellsSummedOnTheLoop else { return try Self.usageResponse(cells, request, query) }
        // Many cells are summed on the pool, not on the loop this task may prefer.
        return try await withTaskExecutorPreference(PoolExecutor.shared) { try Self.usageResponse(cells, request, query) }
    }

    /// Cells a GetUsage sums on an event loop; more are summed on the pool.
    static let cellsSummedOnTheLoop = 4_096

    /// What GetUsage did on the ledger's loop.
    private enum UsageOnLoop {
        /// Answered, or left to answer from the commit's callback.
        case answered
        /// Many cells: summed on the pool once the barrier passes.
        case many(UsageCells?, ReadBarrier)
    }

    /// GetUsage as a deferred method: on the ledger's loop the account's
    /// cells are taken and summed there once what they count is durable —
    /// at once, or from the commit's callback on that loop (no waiter, no
    /// task: `Ledger.whenReadDurable`); past 4,096 cells summed on the
    /// pool. From another loop, or past the cells the ledger reads in one
    /// turn (`committedUsage`), a task awaiting the actor.
    func usage(_ request: Billing_V1_GetUsageRequest, _ respond: GRPCResponder) {
        let query: UsageQuery
        do {
            query = try usageQuery(request)
        } catch {
            respond.fail(error)
            return
        }
        let onLoop: UsageOnLoop??
        do {
            onLoop = try ledger.whenOnExecutor { ledger throws(LedgerError) -> UsageOnLoop? in
                // A range of many cells is read across turns (`committedUsage`).
                guard ledger.usageFitsOneTurn(account: request.accountID, fromDay: query.fromDay, toDay: query.toDay) else { return nil }
                let cells = try ledger.usageCells(account: request.accountID, fromDay: query.fromDay, toDay: query.toDay)
                guard (cells?.count ?? 0) <= Self.cellsSummedOnTheLoop else { return .many(cells, ledger.readBarrier()) }
                ledger.whenReadDurable { outcome in  // (here, or on this loop after the commit)
                    switch outcome {
                    case .success: respond.answer { try Self.usageResponse(cells, request, query).serializedBytes() }
                    case .failure(let error): respond.fail(Refusals.status(error))
                    }
                }
                return .answered
            }
        } catch {
            respond.fail(Refusals.status(error))
            return
        }
        switch onLoop {
        case .answered??:
            return
        case .many(let cells, let barrier)??:
            respond.continueAsTask(onLoop: false) {
                do {
                    try await barrier.wait()
                } catch {
                    throw Refusals.status(error)
                }
                return try Self.usageResponse(cells, request, query).serializedBytes()
            }
        case nil?:  // on the ledger's loop, more cells than one turn reads: summed on the pool
            respond.continueAsTask(onLoop: false) { [self] in try await usage(request).serializedBytes() }
        case nil:  // another loop
            respond.continueAsTask(onLoop: true) { [self] in try await usage(request).serializedBytes() }
        }
    }

    /// The cells of an account's range summed into the requested buckets
    /// (nil cells: no such account).
    static func usageResponse(_ cells: UsageCells?, _ request: Billing_V1_GetUsageRequest,
                              _ query: UsageQuery, maxUsageBytes: Int = maxUsageBytes) throws(GRPCStatus) -> Billing_V1_GetUsageResponse {
        guard let cells else {
            throw Refusals.status(LedgerError.accountNotFound(request.accountID))
        }
        let groups = query.groups
        let byDay = groups.contains(.day), byAgent = groups.contains(.agent), byLine = groups.contains(.lineItem)
        var buckets: [UsageKey: Billing_V1_UsageBucket] = [:]
        var total: Int64 = 0
        // The answer's size, estimated per bucket (its ids and ~48 bytes of
        // numbers): past `maxUsageBytes` the caller is told to narrow the
        // query rather than sent what a stock client refuses (4 MiB).
        var estimatedBytes = 0
        // Cells of nothing (line items of zero quantity and amount) make no
        // bucket: the buckets are the non-empty ones.
        for (key, cell) in cells where !cell.isNothing {
            let group = UsageKey(day: byDay ? key.day : 0, agentID: byAgent ? key.agentID : "", lineKey: byLine ? key.lineKey : "")
            if buckets[group] == nil {
                estimatedBytes += 48 + group.agentID.utf8.count + group.lineKey.utf8.count
                guard estimatedBytes <= maxUsageBytes else {
                    throw GRPCStatus(
                        .resourceExhausted,
                        "the breakdown would pass \(maxUsageBytes >> 20) MiB (\(buckets.count + 1) buckets and more); narrow the time range or group by fewer dimensions",
                        reason: "USAGE_TOO_LARGE", metadata: ["limit_bytes": String(maxUsageBytes)])
                }
            }
            var bucket = buckets[group] ?? Billing_V1_UsageBucket()
            if byDay { bucket.day = CivilDate(daysSinceEpoch: key.day).description }
            let unit = LineItem.unit(ofKey: key.lineKey)
            if byAgent { bucket.agentID = key.agentID }
            if byLine {
                bucket.lineItem = key.lineKey
                bucket.quantity += cell.quantity
                bucket.unit = switch unit {
                case .tokens?: .tokens
                case .calls?: .calls
                case .bytes?, nil: .bytes
                }
            }
            bucket.amountMicros += cell.amount
            bucket.inputTokens += cell.inputTokens
            bucket.outputTokens += cell.outputTokens
            if unit == .calls { bucket.toolCalls += cell.quantity }
            if unit == .bytes { bucket.storageBytes += cell.quantity }
            buckets[group] = bucket
            total += cell.amount
        }
        var response = Billing_V1_GetUsageResponse()
        response.buckets = buckets.values.sorted { ($0.day, $0.agentID, $0.lineItem) < ($1.day, $1.agentID, $1.lineItem) }
        response.totalMicros = total
        response.fromUnixSeconds = query.fromDay * 86_400
        response.toUnixSeconds = (query.toDay + 1) * 86_400
        return response
    }

    /// The largest `GetUsage` answer, estimated (half of what a stock client takes).
    static let maxUsageBytes = 2 << 20
}
