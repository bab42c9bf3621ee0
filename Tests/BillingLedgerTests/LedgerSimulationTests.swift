import BillingLedger
import BillingProto
import Foundation
import SwiftProtobuf
import Testing

/// The seeded simulation of issue 3: concurrent clients against a journal
/// that fails and a process that crashes; after a last rebuild, the auditor
/// checks every acknowledged debit survived exactly once and the books
/// balance. Each failure names its seed, which fixes the workload, the
/// crash points between calls and the fault draws; it does not fix how the
/// journal thread batches commits (thread timing), so a seed reproduces the
/// same run in kind, not always to the entry — run it a few times.
@Suite struct LedgerSimulationTests {
    /// LEDGER_SIMULATION_SEEDS="42 7" replays those seeds instead.
    static let seeds: [UInt64] = ProcessInfo.processInfo.environment["LEDGER_SIMULATION_SEEDS"]
        .map { $0.split(separator: " ").compactMap { UInt64($0) } }
        ?? [1, 2, 3, 7, 42, 1_337, 20_260_131, 0xDEAD_BEEF]

    /// Seeds of the same workload on a SQLite file under the server's own
    /// store (LEDGER_SQLITE_SIMULATION_SEEDS replays others): each crash
    /// rebuilds the ledger from the database, and processes also die between
    /// two transactions of a checkpoint write.
    static let sqliteSeeds: [UInt64] = ProcessInfo.processInfo.environment["LEDGER_SQLITE_SIMULATION_SEEDS"]
        .map { $0.split(separator: " ").compactMap { UInt64($0) } }
        ?? [5, 11, 2_026, 0xC0FFEE]

    @Test(.timeLimit(.minutes(10)), arguments: seeds)
    func seededWorkload(seed: UInt64) async throws {
        try await check(try await Simulation.run(seed: seed), seed: seed)
    }

    @Test(.timeLimit(.minutes(10)), arguments: sqliteSeeds)
    func seededWorkloadOnSQLite(seed: UInt64) async throws {
        let disk = try SQLiteDisk(seed: seed)
        defer { disk.remove() }
        // (Fewer accepted than in memory: processes also die in checkpoint writes.)
        try await check(try await Simulation.run(seed: seed, on: disk), seed: seed, minAccepted: 100)
        #expect(disk.checkpointCrashes > 0, "seed \(seed): no process died in a checkpoint write")
        #expect(disk.writtenCheckpoints().count > 3, "seed \(seed): \(disk.writtenCheckpoints().count) checkpoints stored")
    }

    private func check(_ result: SimulationResult, seed: UInt64, minAccepted: Int = 300) async throws {
        let auditor = try await Auditor.audit(result)
        // The checkpoint written straight from the books is SwiftProtobuf's bytes for the message.
        let state = await result.ledger.snapshot
        #expect(try state.encodedCheckpoint(writtenAtMicros: 1).bytes == (try state.checkpoint(writtenAtMicros: 1).serializedBytes() as [UInt8]),
                "seed \(seed)")
        await result.ledger.close()

        for unexpected in result.record.unexpected { Issue.record("seed \(seed): a client saw an unexpected error: \(unexpected)") }
        for problem in auditor.problems { Issue.record("seed \(seed): \(problem)") }
        #expect(auditor.problemCount == 0, "seed \(seed): \(auditor.problemCount) problems, the first \(auditor.problems.count) listed")

        // The workload reached what it is meant to exercise.
        let journal = result.disk.journal()
        let accepted = journal.count { if case .debitAccepted = $0.event { true } else { false } }
        let reasons = Set(journal.compactMap { entry -> String? in
            if case .debitRefused(let refused) = entry.event { refused.reason } else { nil }
        })
        let faults = result.disk.atomicallyFailed.count + result.disk.ackLost.count
        #expect(result.crashes > 0, "seed \(seed): no crash")
        #expect(faults > 0, "seed \(seed): no journal fault was injected")
        #expect(accepted > minAccepted, "seed \(seed): only \(accepted) debits accepted")
        #expect(reasons.isSuperset(of: ["ACCOUNT_NOT_FOUND", "ACCOUNT_PAUSED", "WORKSPACE_LIMIT", "RUN_QUOTA_EXCEEDED",
                                        "INSUFFICIENT_CREDITS"]),
                "seed \(seed): refusal reasons seen: \(reasons.sorted())")
        #expect(result.record.attempts.contains { $0.outcome.isKeyReused }, "seed \(seed): no key reused")
        #expect(result.record.attempts.contains { $0.outcome.isFailure }, "seed \(seed): no call failed")
    }
}

extension SeenOutcome {
    var isKeyReused: Bool {
        if case .keyReused = self { true } else { false }
    }

    var isFailure: Bool {
        if case .failed = self { true } else { false }
    }
}
