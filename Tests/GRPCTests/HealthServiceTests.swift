import BillingProto
import GRPC
import Synchronization
import Testing

/// Health follows the ledger (NOT_SERVING while it cannot write, SERVING
/// again after) until shutdown, which is for good.
@Suite struct HealthServiceTests {
    @Test func servingFollowsTheLedgerUntilTheDrainWhichIsFinal() {
        let ledgerServing = Atomic(true)
        let health = HealthService(services: ["billing.v1.Metering", "billing.v1.Accounts"],
                                   available: { ledgerServing.load(ordering: .relaxed) })
        let names = ["", "billing.v1.Metering", "billing.v1.Accounts"]
        #expect(names.map { health.status(of: $0) } == [.serving, .serving, .serving])
        ledgerServing.store(false, ordering: .relaxed)
        #expect(names.map { health.status(of: $0) } == [.notServing, .notServing, .notServing])
        ledgerServing.store(true, ordering: .relaxed)
        #expect(names.map { health.status(of: $0) } == [.serving, .serving, .serving])
        health.beginDrain()
        #expect(names.map { health.status(of: $0) } == [.notServing, .notServing, .notServing])
        #expect(health.status(of: "billing.v1.Nope") == nil)
    }
}
