import BillingCore
import BillingLedger
import BillingProto

struct SimulationParameters: Sendable {
    var operations = 2_000
    /// Client calls in flight at most.
    var concurrency = 32
    var initialAccounts = 24
    /// Every this many operations, the process may crash...
    var crashCheckEvery = 100
    /// ...with this probability.
    var crashChance = 0.35
    var faults = FaultRates(appendFails: 0.03, ackLost: 0.03, checkpointFails: 0.2, checkpointCrashes: 0.2)
}

/// What a run leaves for the auditor: the disk, a ledger rebuilt on it after
/// the last crash, and everything the clients saw.
struct SimulationResult {
    let seed: UInt64
    let disk: any SimulationDisk
    let store: any LedgerStore
    let ledger: Ledger
    let plans: PlanCatalog
    let record: ClientRecord.Contents
    /// Every request issued, by identity, to re-decide the journal's debits.
    let requests: [RequestIdentity: DebitCommand]
    let crashes: Int
}

/// A seeded workload of debits, retries, duplicates, refusals, grants and
/// clock moves from concurrent clients, against a disk that injects faults,
/// with crashes at random points; each crash abandons the ledger and rebuilds
/// one from the disk (the in-memory one by default, or a SQLite file).
enum Simulation {
    static func run(seed: UInt64, on disk: (any SimulationDisk)? = nil,
                    parameters: SimulationParameters = SimulationParameters()) async throws -> SimulationResult {
        var workload = Workload(rng: SplitMix64(seed: seed))
        let disk = disk ?? SimulatedDisk(seed: seed)
        let clock = ManualClock(year: 2026, month: 1, day: 31, hour: 9, minute: 30)
        let configuration = Fixtures.configuration(
            maxBatch: 16, maxQueued: workload.rng.chance(0.25) ? 12 : 4_096, checkpointEvery: 50)
        let record = ClientRecord()
        var store = try disk.openStore()
        var ledger = try Ledger.open(on: store, clock: clock, configuration: configuration)

        // Accounts opened over a few hours (so their periods start apart), without faults.
        for _ in 0..<parameters.initialAccounts {
            let account = workload.newAccount()
            record.acknowledged(try await ledger.createAccount(id: account.id, plan: account.plan, actor: "simulation"))
            let micros = workload.initialGrant(for: account)
            let grant = try await ledger.grantCredits(accountID: account.id, amountMicros: micros, kind: "promotional",
                                                      note: "", actor: "simulation", idempotencyKey: "initial")
            record.acknowledged(AcknowledgedGrant(seq: grant.seq, account: account.id, key: "initial", micros: micros))
            clock.advance(seconds: workload.rng.int64(0...3_600))
        }
        disk.setFaults(parameters.faults)

        var crashes = 0
        var generation = 0
        var ledgers = [0: ledger]
        var inFlight = [0: 0]
        var crashed: Set<Int> = []
        var nudges = 0
        let tick = -1

        /// An abandoned ledger is closed (stopping its journal thread) once
        /// no client call is using it any more.
        func finished(_ finishedGeneration: Int) async {
            inFlight[finishedGeneration, default: 0] -= 1
            if crashed.contains(finishedGeneration), inFlight[finishedGeneration] == 0, let abandoned = ledgers[finishedGeneration] {
                await abandoned.close()
                ledgers[finishedGeneration] = nil
            }
        }

        await withTaskGroup(of: Int.self) { group in
            var running = 0
            for index in 0..<parameters.operations {
                // A process that died in a checkpoint write is restarted before the next call.
                if disk.crashPending
                    || (index > 0 && index % parameters.crashCheckEvery == 0 && workload.rng.chance(parameters.crashChance)) {
                    crashes += 1
                    crashed.insert(generation)
                    do {
                        store = try disk.openStore()
                        ledger = try Ledger.open(on: store, clock: clock, configuration: configuration)
                    } catch {
                        record.unexpected("recovery after crash \(crashes) failed: \(error)")
                        return
                    }
                    if inFlight[generation] == 0, let abandoned = ledgers[generation] {
                        await abandoned.close()
                        ledgers[generation] = nil
                    }
                    generation += 1
                    ledgers[generation] = ledger
                    inFlight[generation] = 0
                }
                let operation = workload.next()
                if case .advanceClock(let seconds) = operation {
                    clock.advance(seconds: seconds)
                    continue
                }
                if running >= parameters.concurrency, let done = await group.next() {
                    running -= 1
                    await finished(done)
                }
                running += 1
                inFlight[generation, default: 0] += 1
                group.addTask { [ledger, generation] in
                    await perform(operation, on: ledger, record: record)
                    return generation
                }
            }
            // The tail, without faults. A call still waiting after a while of no
            // progress waits for a seq its ledger never reaches (see the auditor's
            // acknowledgement check): nudge each ledger with calls in flight with
            // a grant, so that the call returns and what it was told is audited.
            // "A while": some ticks and a second. Ticks alone are too short on a
            // busy machine: the ledger runs on its own serial queue, whose
            // thread the kernel may not schedule for some milliseconds while
            // the ticks spin (a slow call, not a lost one).
            disk.setFaults(.none)
            var idleTicks = 0
            var busyTicks = 0
            var lastProgress = ContinuousClock.now
            while running > 0 {
                group.addTask {
                    for _ in 0..<2_000 { await Task.yield() }
                    return tick
                }
                var progressed = false
                while true {
                    guard let done = await group.next(), done != tick else { break }
                    running -= 1
                    progressed = true
                    await finished(done)
                }
                idleTicks = progressed ? 0 : idleTicks + 1
                if progressed { lastProgress = ContinuousClock.now }
                guard idleTicks >= 3, ContinuousClock.now - lastProgress > .seconds(10) else { continue }
                // Entries appended but not yet committed: the journal thread is
                // slow (a loaded machine), not the call lost; unless it never
                // commits them, which is a failure of its own.
                var journalBusy = false
                for (generation, stalled) in inFlight where stalled > 0 && !crashed.contains(generation) {
                    if let busy = ledgers[generation], await busy.lastSeq > busy.durableSeq { journalBusy = true }
                }
                if journalBusy {
                    busyTicks += 1
                    guard busyTicks < 5_000 else {
                        record.unexpected("the journal never committed what it was given (\(running) calls waiting)")
                        break
                    }
                    continue
                }
                guard nudges < 200 else {
                    record.unexpected("\(running) calls never returned, even after \(nudges) nudges")
                    break
                }
                for (nudged, stalled) in inFlight where stalled > 0 {
                    nudges += 1
                    _ = try? await ledgers[nudged]?.grantCredits(accountID: "acct-0", amountMicros: 1, kind: "nudge", note: "",
                                                                 actor: "simulation")
                }
            }
        }
        if nudges > 0 { record.unexpected("calls were left waiting for their commit; they returned after \(nudges) nudges") }
        for (_, abandoned) in ledgers where abandoned !== ledger { await abandoned.close() }

        // The end: a clean shutdown or one more crash, then the ledger the auditor checks.
        let cleanShutdown = workload.rng.chance(0.5)
        if cleanShutdown { await ledger.close() }
        disk.setFaults(.none)
        let finalStore = try disk.openStore()
        if !cleanShutdown { await ledger.close() }
        let finalLedger = try Ledger.open(on: finalStore, clock: clock, configuration: configuration)

        var requests: [RequestIdentity: DebitCommand] = [:]
        for attempt in record.snapshot.attempts { requests[RequestIdentity(attempt.command)] = attempt.command }
        return SimulationResult(seed: seed, disk: disk, store: finalStore, ledger: finalLedger, plans: Fixtures.plans,
                                record: record.snapshot, requests: requests, crashes: crashes)
    }

    /// One client call, its outcome recorded.
    static func perform(_ operation: Operation, on ledger: Ledger, record: ClientRecord) async {
        switch operation {
        case .debit(let command):
            do {
                record.record(Attempt(command: command, outcome: SeenOutcome(try await ledger.frontEndDebit(command))))
            } catch {
                failed([command], error, record)
            }
        case .batch(let commands):
            do {
                let pairs = try commands.map { ($0, try ledger.priorLookup($0)) }
                let outcomes = try await ledger.debitBatch(pairs)
                for (command, outcome) in zip(commands, outcomes) {
                    record.record(Attempt(command: command, outcome: SeenOutcome(outcome)))
                }
            } catch {
                failed(commands, error, record)
            }
        case .grant(let account, let key, let micros):
            do {
                let grant = try await ledger.grantCredits(accountID: account, amountMicros: micros, kind: "purchase", note: "",
                                                          actor: "simulation", idempotencyKey: key)
                record.acknowledged(AcknowledgedGrant(seq: grant.seq, account: account, key: key, micros: micros))
            } catch where error.isExpectedInSimulation {
            } catch {
                record.unexpected("grant of \(micros) to \(account): \(error)")
            }
        case .createAccount(let id, let plan):
            do {
                record.acknowledged(try await ledger.createAccount(id: id, plan: plan, actor: "simulation"))
            } catch where error.isExpectedInSimulation {
            } catch {
                record.unexpected("creating account \(id): \(error)")
            }
        case .advanceClock:
            preconditionFailure("the driver moves the clock itself")
        }
    }

    private static func failed(_ commands: [DebitCommand], _ error: any Error, _ record: ClientRecord) {
        if !error.isExpectedInSimulation {
            record.unexpected("debit of \(commands.map(\.idempotencyKey)): \(error)")
        }
        for command in commands { record.record(Attempt(command: command, outcome: .failed("\(error)"))) }
    }
}
