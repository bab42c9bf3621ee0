import BillingProto
import GRPC
import Testing

/// Health follows the ledger (NOT_SERVING while it cannot write, SERVING
/// again after) until shutdown, which is for good.
@Suite struct HealthServiceTests {
    @Test func servingFollowsTheLedgerUntilTheDrainWhichIsFinal() {
        let health = HealthService(services: ["billing.v1.Metering", "billing.v1.Accounts"])
        let names = ["", "billing.v1.Metering", "billing.v1.Accounts"]
        #expect(names.map { health.status(of: $0) } == [.serving, .serving, .serving])
        health.setServing(false)
        #expect(names.map { health.status(of: $0) } == [.notServing, .notServing, .notServing])
        health.setServing(true)
        #expect(names.map { health.status(of: $0) } == [.serving, .serving, .serving])
        health.beginDrain()
        health.setServing(true)
        #expect(names.map { health.status(of: $0) } == [.notServing, .notServing, .notServing])
        #expect(health.status(of: "billing.v1.Nope") == nil)
    }
}
