import BillingAuth
import BillingProto
import GRPC
import SwiftProtobuf
import Metrics

/// Requests that name the account they concern.
protocol AccountScoped { var accountID: String { get } }

extension Billing_V1_DebitRequest: AccountScoped {}
extension Billing_V1_QuoteRequest: AccountScoped {}
extension Billing_V1_GetDebitRequest: AccountScoped {}
extension Billing_V1_GetExecutionCostRequest: AccountScoped {}
extension Billing_V1_GetUsageRequest: AccountScoped {}
extension Billing_V1_CreateAccountRequest: AccountScoped {}
extension Billing_V1_GetAccountRequest: AccountScoped {}
extension Billing_V1_ListPlansRequest: AccountScoped {}
extension Billing_V1_ChangePlanRequest: AccountScoped {}
extension Billing_V1_CancelPendingChangeRequest: AccountScoped {}
extension Billing_V1_PurchaseCreditsRequest: AccountScoped {}
extension Billing_V1_SetPaymentMethodRequest: AccountScoped {}
extension Billing_V1_GetPaymentMethodRequest: AccountScoped {}
extension Billing_V1_ListChargesRequest: AccountScoped {}
extension Billing_V1_ListInvoicesRequest: AccountScoped {}
extension Billing_V1_GetInvoicePdfRequest: AccountScoped {}
extension Billing_V1_PayInvoiceRequest: AccountScoped {}
extension Billing_V1_GrantCreditsRequest: AccountScoped {}
extension Billing_V1_SetEnterpriseContractRequest: AccountScoped {}

/// Registers billing methods behind authentication and the access table:
/// the handler runs only for an allowed principal, and receives it.
struct SecuredRouter {
    var router: GRPCRouter
    let authenticator: Authenticator

    mutating func register<Request: Message, Response: Message>(
        _ path: String, placement: GRPCHandlerPlacement = .pool,
        _ handler: @escaping @Sendable (Request, Principal) async throws -> Response
    ) {
        guard let access = AccessTable.rules[path] else { preconditionFailure("no access rule for \(path)") }
        let authenticator = self.authenticator
        router.register(path: path, placement: placement) { bytes, context in
            do {
                // Credentials first: a caller who cannot authenticate learns
                // nothing, not even whether its message decodes.
                let principal = try authenticator.principal(context)
                let request = try decode(Request.self, bytes)
                try authenticator.authorize(principal, access, accountID: (request as? AccountScoped)?.accountID)
                return try await handler(request, principal).serializedBytes()
            } catch let status as GRPCStatus {
                RefusalMetrics.count(status)
                throw status
            }
        }
    }
}

/// Refusals by ErrorInfo reason (a bounded set: the reasons this code emits).
enum RefusalMetrics {
    static func count(_ status: GRPCStatus) {
        guard let reason = status.errorInfo?.reason else { return }
        Counter(label: "billing_refusals_total", dimensions: [("reason", reason)]).increment()
    }
}
