public import BillingCore
public import BillingLedger
public import GRPC

/// The billing.v1 services, every method behind authentication. Methods of
/// the contract whose issue has not landed check credentials, then answer
/// UNIMPLEMENTED.
public enum BillingServices {
    public static let names = ["billing.v1.Metering", "billing.v1.Accounts", "billing.v1.Payments", "billing.v1.Admin"]

    /// Every method path of the four services.
    public static var allPaths: [String] { AccessTable.rules.keys.sorted() }

    public static func register(into router: inout GRPCRouter, ledger: Ledger, catalog: PriceCatalog,
                                authenticator: Authenticator) {
        var secured = SecuredRouter(router: router, authenticator: authenticator)
        MeteringService(ledger: ledger, catalog: catalog).register(into: &secured)
        ProvisioningService(ledger: ledger).register(into: &secured)
        KeysService(ledger: ledger).register(into: &secured)
        for path in AccessTable.rules.keys.sorted() where !secured.router.paths.contains(path) {
            secured.registerPending(path)
        }
        router = secured.router
    }
}
