import BillingProto
import LoadGenerator
import Testing

@Suite struct LoadKeysTests {
    @Test func keysAreDistinctAcrossSixtyFourConnectionsOfTenThousandCalls() {
        var keys = Set<String>()
        for connection in 0..<64 {
            for sequence in Int64(1)...10_000 {
                keys.insert(LoadKeys.key(runID: "load-lx3k9q2a-1z141z4", connection: connection, sequence: sequence))
            }
        }
        #expect(keys.count == 64 * 10_000)
    }

    @Test func keysOfTwoRunsNeverMeet() {
        let runs = ["load-lx3k9q2a-1z141z4", "load-lx3k9q2a-1z141z5"]
        let keys = runs.map { run in
            Set((0..<8).flatMap { connection in
                (Int64(1)...1000).map { LoadKeys.key(runID: run, connection: connection, sequence: $0) }
            })
        }
        #expect(keys[0].isDisjoint(with: keys[1]) && keys[0].count == 8000 && keys[1].count == 8000)
    }

    @Test func runIDsNameTheTimeAndTheRandomBitsInBase36() {
        #expect(LoadKeys.runID(millisSince1970: 0, random: 0) == "load-0-0")
        #expect(LoadKeys.runID(millisSince1970: 1_700_000_000_000, random: 35) == "load-loyw3v28-z")
        #expect(LoadKeys.runID(millisSince1970: 36, random: .max) == "load-10-1z141z3")
        let fresh = (0..<100).map { _ in LoadKeys.newRunID() }
        #expect(Set(fresh).count == 100 && fresh.allSatisfy { $0.hasPrefix("load-") })
    }

    @Test func namesOfAccountsRunsAndGrants() {
        #expect(LoadKeys.account(runID: "load-a-b", index: 7) == "load-a-b-a7")
        #expect(LoadKeys.creditGrant(account: "load-a-b-a7") == "load-a-b-a7-credits")
        // Four debits per agent run: sequences 4…7 share run r1.
        #expect((1...8).map { LoadKeys.run(runID: "load-a-b", connection: 2, sequence: $0) }
                == ["r0", "r0", "r0", "r1", "r1", "r1", "r1", "r2"].map { "load-a-b-c2-\($0)" })
    }
}

/// The keys as the workers send them: decoded from the requests they build.
@Suite struct LoadRequestsTests {
    static let plan = testPlan(deadlineNanos: 0, mix: [.batch], accounts: 5, batchSize: 100, runID: "load-lx3k9q2a-9")

    /// The key function alone is checked at 64 × 10,000 above; building and
    /// decoding the messages costs more, so 1,000 debits per worker here.
    @Test func everyDebitOfSixtyFourWorkersHasItsOwnKey() throws {
        var keys = Set<String>()
        var debits = 0
        for connection in 0..<64 {
            var requests = LoadRequests(connection: connection, plan: Self.plan)
            for _ in 0..<10 {  // 10 batches of 100 debits
                let request = try requests.next()
                for debit in try Billing_V1_DebitBatchRequest(serializedBytes: request.message).debits {
                    keys.insert(debit.idempotencyKey)
                    debits += 1
                }
            }
        }
        #expect(debits == 64 * 1000)
        #expect(keys.count == debits)
    }

    @Test func theSameConnectionOfTheSameRunSendsTheSameRequests() throws {
        let plan = testPlan(deadlineNanos: 0, mix: [.debit, .debit, .quote, .batch, .cost, .usage], accounts: 7)
        func messages(_ connection: Int) throws -> [[UInt8]] {
            var requests = LoadRequests(connection: connection, plan: plan)
            return try (0..<200).map { _ in try requests.next().message }
        }
        #expect(try messages(3) == messages(3))
        #expect(try messages(3) != messages(4))
    }

    @Test func executionCostQueriesNameARunOfTheAccountTheyName() throws {
        let plan = testPlan(deadlineNanos: 0, mix: [.debit, .cost, .cost], accounts: 3)
        var requests = LoadRequests(connection: 0, plan: plan)
        var newest: [String: String] = [:]  // per account, the run of its newest debit answered OK
        var debited = Set<[String]>()
        var costs = 0
        var seeded = 0
        for step in 0..<2000 {
            let request = try requests.next()
            if request.rpc == .debit {
                let debit = try Billing_V1_DebitRequest(serializedBytes: request.message)
                #expect(request.debited?.account == debit.accountID && request.debited?.run == debit.runID)
                debited.insert([debit.accountID, debit.runID])
                // Every other debit is answered OK; the rest stay in flight (or were refused).
                if step % 2 == 0 {
                    requests.acknowledged(account: debit.accountID, run: debit.runID)
                    newest[debit.accountID] = debit.runID
                }
            } else {
                let cost = try Billing_V1_GetExecutionCostRequest(serializedBytes: request.message)
                // The newest acknowledged run of that account, else its seed run: never a run still in flight.
                #expect(cost.runID == newest[cost.accountID] ?? LoadKeys.seedRun(account: cost.accountID))
                if cost.runID == LoadKeys.seedRun(account: cost.accountID) { seeded += 1 }
                costs += 1
            }
        }
        #expect(seeded > 0)
        #expect(costs > 1000 && debited.count > 100)
    }
}
