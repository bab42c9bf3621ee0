public import BillingCore
public import BillingLedger
public import GRPC

/// The billing.v1 services. Methods not registered here answer UNIMPLEMENTED
/// (the router's default) until their issue lands.
public enum BillingServices {
    public static let names = ["billing.v1.Metering", "billing.v1.Accounts", "billing.v1.Payments", "billing.v1.Admin"]

    public static func register(into router: inout GRPCRouter, ledger: Ledger, catalog: PriceCatalog) {
        MeteringService(ledger: ledger, catalog: catalog).register(into: &router)
        ProvisioningService(ledger: ledger).register(into: &router)
    }
}
