import BillingCore
import BillingLedger

/// One step of the simulated clients.
enum Operation: Sendable {
    case debit(DebitCommand)
    case batch([DebitCommand])
    case grant(account: String, key: String, micros: Int64)
    case createAccount(id: String, plan: String)
    case advanceClock(seconds: Int64)
}

/// The simulated clients' intentions, drawn from the seed alone (never from
/// what the ledger answered), so one seed always issues the same requests.
struct Workload {
    struct Account {
        let id: String
        let plan: String
    }

    var rng: SplitMix64
    var accounts: [Account] = []
    private var runs: [String: [(name: String, startedAt: Int64)]] = [:]
    /// Seconds the workload has moved the clock, and when each account was
    /// asked for on that count: a trial's end is 14 days after.
    private var elapsed: Int64 = 0
    private var createdAt: [String: Int64] = [:]
    /// Every request issued, the first one of each key first.
    private(set) var issued: [DebitCommand] = []
    private var nextKey = 0
    private var nextRun = 0
    private var nextAccount = 0
    private var grants: [(account: String, key: String, micros: Int64)] = []

    init(rng: SplitMix64) { self.rng = rng }

    /// A new account's id and plan: Free, Trial, Pro and Enterprise in turn-ish.
    mutating func newAccount() -> Account {
        let plan = rng.pick(["free", "free", "trial", "trial", "pro", "pro", "pro", "enterprise"])
        let account = Account(id: "acct-\(nextAccount)", plan: plan)
        nextAccount += 1
        createdAt[account.id] = elapsed
        accounts.append(account)
        return account
    }

    /// Initial credits: enough for a few debits, less for the plans that accrue overage.
    mutating func initialGrant(for account: Account) -> Int64 {
        switch account.plan {
        case "free": rng.int64(20_000...150_000)
        case "trial": rng.int64(50_000...300_000)
        case "pro": rng.int64(1...100_000)
        default: rng.int64(1...200_000)
        }
    }

    mutating func next() -> Operation {
        let roll = rng.int(0...99)
        switch roll {
        case 0..<60:
            return .debit(fresh())
        case 60..<74:
            return .debit(earlier() ?? fresh())
        case 74..<79:
            guard let original = earlier() else { return .debit(fresh()) }
            return .debit(differentRequest(like: original))
        case 79..<82:
            return .debit(fresh(account: "acct-ghost-\(rng.int(0...3))"))
        case 82..<86:
            return .batch((0..<rng.int(2...6)).map { _ in rng.chance(0.25) ? (earlier() ?? fresh()) : fresh() })
        case 86..<92:
            // Now and then a retry of an earlier grant, with its key.
            if !grants.isEmpty, rng.chance(0.2) {
                let earlier = rng.pick(grants)
                return .grant(account: earlier.account, key: earlier.key, micros: earlier.micros)
            }
            let grant = (account: rng.pick(accounts).id, key: "grant-\(grants.count)", micros: rng.int64(10_000...150_000))
            grants.append(grant)
            return .grant(account: grant.account, key: grant.key, micros: grant.micros)
        case 92..<93:
            let account = newAccount()
            return .createAccount(id: account.id, plan: account.plan)
        default:
            let minutes: Int64 = switch rng.int(0...99) {
            case 0..<70: rng.int64(1...120)
            case 70..<95: rng.int64(60...1_800)
            default: rng.int64(5 * 1_440...35 * 1_440)
            }
            elapsed += minutes * 60
            return .advanceClock(seconds: minutes * 60)
        }
    }

    /// A new key for a random account (or `account`).
    mutating func fresh(account id: String? = nil) -> DebitCommand {
        let account = id.map { Account(id: $0, plan: "none") } ?? rng.pick(accounts)
        let key = "key-\(nextKey)"
        nextKey += 1
        let command = request(account: account, key: key)
        issued.append(command)
        return command
    }

    /// A request issued before, as is: a retry. Mostly a recent one, which
    /// may still be in flight.
    mutating func earlier() -> DebitCommand? {
        guard !issued.isEmpty else { return nil }
        let recent = rng.chance(0.7)
        let lower = recent ? max(0, issued.count - 48) : 0
        return issued[rng.int(lower...issued.count - 1)]
    }

    /// The same account and key with another request.
    mutating func differentRequest(like original: DebitCommand) -> DebitCommand {
        let plan = accounts.first { $0.id == original.accountID }?.plan ?? "none"
        while true {
            let command = request(account: Account(id: original.accountID, plan: plan), key: original.idempotencyKey)
            if command.fingerprint != original.fingerprint { return command }
        }
    }

    private mutating func request(account: Account, key: String) -> DebitCommand {
        // Free accounts keep to one workspace, mostly: a second one is refused.
        let workspace = account.plan == "free" && !rng.chance(0.12) ? "ws-0" : "ws-\(rng.int(0...3))"
        var accountRuns = runs[account.id] ?? []
        let run: String
        // After a trial's end (as the workload counts time), mostly a run
        // begun before it: it may go on, new ones are paused.
        let trialEnd = account.plan == "trial" ? createdAt[account.id].map { $0 + 14 * 86_400 } : nil
        let beforeEnd = trialEnd.map { end in elapsed >= end ? accountRuns.filter { $0.startedAt < end } : [] } ?? []
        if !beforeEnd.isEmpty, rng.chance(0.6) {
            run = beforeEnd[rng.int(max(0, beforeEnd.count - 6)...beforeEnd.count - 1)].name
        } else if accountRuns.isEmpty || rng.chance(0.25) {
            run = "run-\(nextRun)"
            nextRun += 1
            accountRuns.append((run, elapsed))
            runs[account.id] = accountRuns
        } else {
            run = accountRuns[rng.int(max(0, accountRuns.count - 6)...accountRuns.count - 1)].name
        }
        let items = (0..<rng.int(1...3)).map { _ in lineItem() }
        do {
            return try Fixtures.command(account: account.id, key: key, workspace: workspace,
                                        agent: "agent-\(rng.int(0...2))", run: run, items: items)
        } catch {
            preconditionFailure("the workload priced an invalid request: \(error)")
        }
    }

    private mutating func lineItem() -> LineItem {
        switch rng.int(0...5) {
        case 0, 1: .llm(model: "gpt-4o", inputTokens: rng.int64(0...4_000), outputTokens: rng.int64(0...1_500))
        case 2: .llm(model: "mini", inputTokens: rng.int64(0...20_000), outputTokens: rng.int64(0...5_000))
        case 3: .toolCall(integration: rng.pick(["slack", "github", "notion"]), calls: rng.int64(1...4))
        case 4: .storage(kind: .knowledgeBase, bytes: rng.int64(0...50_000_000))
        default: .storage(kind: .traces, bytes: rng.int64(0...20_000_000))
        }
    }
}
