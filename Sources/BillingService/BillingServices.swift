public import BillingCore
public import BillingLedger
public import GRPC
public import InvoicePDF
import BillingProto
import SwiftProtobuf

/// The billing.v1 services, every method behind authentication.
public enum BillingServices {
    public static let names = ["billing.v1.Metering", "billing.v1.Accounts", "billing.v1.Payments", "billing.v1.Admin"]

    /// Every method path of the four services.
    public static var allPaths: [String] { AccessTable.rules.keys.sorted() }

    public static func register(into router: inout GRPCRouter, ledger: Ledger, catalog: PriceCatalog,
                                authenticator: Authenticator, seller: InvoiceDocument.Party = PaymentsService.defaultSeller) {
        var secured = SecuredRouter(router: router, authenticator: authenticator)
        MeteringService(ledger: ledger, catalog: catalog).register(into: &secured)
        ProvisioningService(ledger: ledger).register(into: &secured)
        AccountsService(ledger: ledger).register(into: &secured)
        PaymentsService(ledger: ledger, seller: seller).register(into: &secured)
        KeysService(ledger: ledger).register(into: &secured)
        precondition(Set(secured.router.paths).isSuperset(of: AccessTable.rules.keys), "a method of the access table is not registered")
        router = secured.router
    }
}
