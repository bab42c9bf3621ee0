// The unary methods of schema/ with their message types, for `billing call`.
// Listed from the .proto files (each rpc line); keep in step when a method is added.
import BillingProto
import SwiftProtobuf

enum MethodCatalog {
    static let methods: [String: (request: any Message.Type, response: any Message.Type)] = [
        "/billing.v1.Accounts/CreateAccount": (Billing_V1_CreateAccountRequest.self, Billing_V1_CreateAccountResponse.self),
        "/billing.v1.Accounts/GetAccount": (Billing_V1_GetAccountRequest.self, Billing_V1_GetAccountResponse.self),
        "/billing.v1.Accounts/GetBanners": (Billing_V1_GetBannersRequest.self, Billing_V1_GetBannersResponse.self),
        "/billing.v1.Accounts/ListPlans": (Billing_V1_ListPlansRequest.self, Billing_V1_ListPlansResponse.self),
        "/billing.v1.Accounts/ChangePlan": (Billing_V1_ChangePlanRequest.self, Billing_V1_ChangePlanResponse.self),
        "/billing.v1.Accounts/CancelPendingChange": (Billing_V1_CancelPendingChangeRequest.self, Billing_V1_CancelPendingChangeResponse.self),
        "/billing.v1.Admin/GrantCredits": (Billing_V1_GrantCreditsRequest.self, Billing_V1_GrantCreditsResponse.self),
        "/billing.v1.Admin/SetEnterpriseContract": (Billing_V1_SetEnterpriseContractRequest.self, Billing_V1_SetEnterpriseContractResponse.self),
        "/billing.v1.Admin/CreateApiKey": (Billing_V1_CreateApiKeyRequest.self, Billing_V1_CreateApiKeyResponse.self),
        "/billing.v1.Admin/ListApiKeys": (Billing_V1_ListApiKeysRequest.self, Billing_V1_ListApiKeysResponse.self),
        "/billing.v1.Admin/RevokeApiKey": (Billing_V1_RevokeApiKeyRequest.self, Billing_V1_RevokeApiKeyResponse.self),
        "/billing.v1.Admin/AdvanceClock": (Billing_V1_AdvanceClockRequest.self, Billing_V1_AdvanceClockResponse.self),
        "/billing.v1.Admin/ListAuditLog": (Billing_V1_ListAuditLogRequest.self, Billing_V1_ListAuditLogResponse.self),
        "/billing.v1.Metering/Quote": (Billing_V1_QuoteRequest.self, Billing_V1_QuoteResponse.self),
        "/billing.v1.Metering/Debit": (Billing_V1_DebitRequest.self, Billing_V1_DebitResponse.self),
        "/billing.v1.Metering/DebitBatch": (Billing_V1_DebitBatchRequest.self, Billing_V1_DebitBatchResponse.self),
        "/billing.v1.Metering/GetExecutionCost": (Billing_V1_GetExecutionCostRequest.self, Billing_V1_GetExecutionCostResponse.self),
        "/billing.v1.Metering/GetDebit": (Billing_V1_GetDebitRequest.self, Billing_V1_GetDebitResponse.self),
        "/billing.v1.Metering/GetUsage": (Billing_V1_GetUsageRequest.self, Billing_V1_GetUsageResponse.self),
        "/billing.v1.Payments/PurchaseCredits": (Billing_V1_PurchaseCreditsRequest.self, Billing_V1_PurchaseCreditsResponse.self),
        "/billing.v1.Payments/SetPaymentMethod": (Billing_V1_SetPaymentMethodRequest.self, Billing_V1_SetPaymentMethodResponse.self),
        "/billing.v1.Payments/GetPaymentMethod": (Billing_V1_GetPaymentMethodRequest.self, Billing_V1_GetPaymentMethodResponse.self),
        "/billing.v1.Payments/ListCharges": (Billing_V1_ListChargesRequest.self, Billing_V1_ListChargesResponse.self),
        "/billing.v1.Payments/ListInvoices": (Billing_V1_ListInvoicesRequest.self, Billing_V1_ListInvoicesResponse.self),
        "/billing.v1.Payments/GetInvoicePdf": (Billing_V1_GetInvoicePdfRequest.self, Billing_V1_GetInvoicePdfResponse.self),
        "/billing.v1.Payments/PayInvoice": (Billing_V1_PayInvoiceRequest.self, Billing_V1_PayInvoiceResponse.self),
        "/billing.v1.Testing/Echo": (Billing_V1_EchoRequest.self, Billing_V1_EchoResponse.self),
        "/grpc.health.v1.Health/Check": (Grpc_Health_V1_HealthCheckRequest.self, Grpc_Health_V1_HealthCheckResponse.self),
        "/grpc.health.v1.Health/List": (Grpc_Health_V1_HealthListRequest.self, Grpc_Health_V1_HealthListResponse.self),
    ]
}
