public import BillingCore
public import BillingLedger
public import GRPC
import BillingProto
import SwiftProtobuf

/// The billing.v1 services, every method behind authentication. Methods of
/// the contract whose issue has not landed check credentials, then answer
/// UNIMPLEMENTED.
public enum BillingServices {
    public static let names = ["billing.v1.Metering", "billing.v1.Accounts", "billing.v1.Payments", "billing.v1.Admin"]

    /// Methods of the contract not implemented yet, with their request types
    /// (decoded so the account scope is checked before UNIMPLEMENTED).
    static let pending: [(String, any Message.Type)] = [
        ("/billing.v1.Accounts/GetAccount", Billing_V1_GetAccountRequest.self),
        ("/billing.v1.Accounts/ListPlans", Billing_V1_ListPlansRequest.self),
        ("/billing.v1.Accounts/ChangePlan", Billing_V1_ChangePlanRequest.self),
        ("/billing.v1.Accounts/CancelPendingChange", Billing_V1_CancelPendingChangeRequest.self),
        ("/billing.v1.Payments/PurchaseCredits", Billing_V1_PurchaseCreditsRequest.self),
        ("/billing.v1.Payments/SetPaymentMethod", Billing_V1_SetPaymentMethodRequest.self),
        ("/billing.v1.Payments/GetPaymentMethod", Billing_V1_GetPaymentMethodRequest.self),
        ("/billing.v1.Payments/ListCharges", Billing_V1_ListChargesRequest.self),
        ("/billing.v1.Payments/ListInvoices", Billing_V1_ListInvoicesRequest.self),
        ("/billing.v1.Payments/GetInvoicePdf", Billing_V1_GetInvoicePdfRequest.self),
        ("/billing.v1.Payments/PayInvoice", Billing_V1_PayInvoiceRequest.self),
        ("/billing.v1.Admin/SetEnterpriseContract", Billing_V1_SetEnterpriseContractRequest.self),
        ("/billing.v1.Admin/AdvanceClock", Billing_V1_AdvanceClockRequest.self),
    ]

    /// Every method path of the four services.
    public static var allPaths: [String] { AccessTable.rules.keys.sorted() }

    public static func register(into router: inout GRPCRouter, ledger: Ledger, catalog: PriceCatalog,
                                authenticator: Authenticator) {
        var secured = SecuredRouter(router: router, authenticator: authenticator)
        MeteringService(ledger: ledger, catalog: catalog).register(into: &secured)
        ProvisioningService(ledger: ledger).register(into: &secured)
        KeysService(ledger: ledger).register(into: &secured)
        for (path, type) in pending where !secured.router.paths.contains(path) {
            secured.registerPending(path, type)
        }
        precondition(Set(secured.router.paths).isSuperset(of: AccessTable.rules.keys), "a method of the access table is not registered")
        router = secured.router
    }
}
