import BillingCore
import BillingProto
import Foundation
import SwiftProtobuf
import Testing
@testable import BillingSQLite

/// The hand-written checkpoint encoding decodes to the message it encoded.
@Suite struct CheckpointEncodingTests {
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func checkpointsDecodeToWhatWasEncoded(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<40 {
            let checkpoint = Self.randomCheckpoint(&rng)
            let decoded = try Billing_Journal_V1_Checkpoint(serializedBytes: try CheckpointEncoding.bytes(checkpoint))
            #expect(decoded == checkpoint, "seed \(seed)")
        }
    }

    @Test func anEmptyCheckpointEncodesAsSwiftProtobufDoes() throws {
        var checkpoint = Billing_Journal_V1_Checkpoint()
        checkpoint.seq = 7
        #expect(try CheckpointEncoding.bytes(checkpoint) == (try checkpoint.serializedBytes() as [UInt8]))
    }

    @Test func unknownFieldsOfARollupAreKept() throws {
        var rollup = Billing_Journal_V1_UsageRollup()
        rollup.day = 20_000
        rollup.agentID = "agent"
        try rollup.merge(serializedBytes: [0x98, 0x06, 0x05] as [UInt8])  // field 99, varint 5
        var account = Billing_Journal_V1_AccountState()
        account.accountID = "a"
        account.usage = [rollup, rollup]
        var checkpoint = Billing_Journal_V1_Checkpoint()
        checkpoint.accounts = [account]
        let decoded = try Billing_Journal_V1_Checkpoint(serializedBytes: try CheckpointEncoding.bytes(checkpoint))
        #expect(decoded == checkpoint)
        #expect(!decoded.accounts[0].usage[1].unknownFields.data.isEmpty)
    }

    static func randomCheckpoint(_ rng: inout SplitMix64) -> Billing_Journal_V1_Checkpoint {
        func text() -> String { rng.wireText(maxRun: 40) }
        func number() -> Int64 { rng.wireNumber() }
        var checkpoint = Billing_Journal_V1_Checkpoint()
        checkpoint.seq = number()
        checkpoint.writtenUnixMicros = number()
        checkpoint.testClockUnix = number()
        checkpoint.keyFilter = Data((0..<[0, 8, 4_096][rng.next(below: 3)]).map { _ in UInt8(rng.next(below: 256)) })
        checkpoint.accounts = (0..<rng.next(below: 12)).map { _ in
            var account = Billing_Journal_V1_AccountState()
            account.accountID = text()
            account.plan = text()
            account.balanceMicros = number()
            account.overageMicros = number()
            account.periodStartUnix = number()
            account.workspaces = (0..<rng.next(below: 3)).map { _ in text() }
            account.grantedMicros = number()
            account.invoiceSequences = (0..<rng.next(below: 3)).map { _ in number() }
            if rng.next(below: 2) == 0 {
                var lifecycle = Billing_Journal_V1_LifecycleState()
                lifecycle.trialEndsUnix = number()
                lifecycle.graceSeconds = number()
                account.lifecycle = lifecycle
            }
            account.usage = (0..<rng.next(below: 20)).map { _ in
                var rollup = Billing_Journal_V1_UsageRollup()
                rollup.day = number()
                rollup.agentID = text()
                rollup.lineKey = text()
                rollup.amountMicros = number()
                rollup.quantity = number()
                rollup.inputTokens = number()
                rollup.outputTokens = number()
                return rollup
            }
            account.runHashes = (0..<rng.next(below: 3) * rng.next(below: 300)).map { _ in number() }
            return account
        }
        var key = Billing_Journal_V1_ApiKeyState()
        key.createdUnix = number()
        checkpoint.apiKeys = rng.next(below: 2) == 0 ? [key] : []
        return checkpoint
    }
}
