@testable import BillingLedger
import Testing

/// When the journal slows down for checkpoints to catch up.
@Suite struct CheckpointPacingTests {
    @Test func commitsSlowOnlyPastTheLag() {
        #expect(!GroupCommitter.checkpointsBehind(durable: 300_000, indexed: 0, maxLag: 300_000))
        #expect(GroupCommitter.checkpointsBehind(durable: 300_001, indexed: 0, maxLag: 300_000))
        #expect(!GroupCommitter.checkpointsBehind(durable: 1_000_000, indexed: 900_000, maxLag: 300_000))
        #expect(!GroupCommitter.checkpointsBehind(durable: 5, indexed: 0, maxLag: .max))
    }
}
