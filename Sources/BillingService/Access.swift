import BillingAuth

/// Who may call a method. Service keys need the scope; users (platform JWTs)
/// reach only their own account, and only in the ways their role allows.
enum Access: Sendable {
    /// Service keys with this scope only (the metering hot path, Admin).
    case service(Scope)
    /// Service keys with this scope, or a user of the account who may read
    /// billing: Owner, Admin, or anyone with the `billing:read` permission.
    case read(Scope)
    /// Service keys with this scope, or an Owner or Admin of the account.
    case act(Scope)
    /// Service keys with this scope, or any user of the account whatever
    /// their role: what the app shows everyone in it (the banners).
    case member(Scope)
}

/// The access rule of every method of the billing.v1 services, in one table.
enum AccessTable {
    static let rules: [String: Access] = [
        "/billing.v1.Metering/Debit": .service(.meteringWrite),
        "/billing.v1.Metering/DebitBatch": .service(.meteringWrite),
        "/billing.v1.Metering/Quote": .service(.meteringRead),
        "/billing.v1.Metering/GetDebit": .service(.meteringRead),
        "/billing.v1.Metering/GetExecutionCost": .read(.meteringRead),
        "/billing.v1.Metering/GetUsage": .read(.meteringRead),

        "/billing.v1.Accounts/CreateAccount": .service(.accountsAdmin),
        "/billing.v1.Accounts/GetAccount": .read(.accountsAdmin),
        "/billing.v1.Accounts/GetBanners": .member(.accountsAdmin),
        "/billing.v1.Accounts/ListPlans": .read(.accountsAdmin),
        "/billing.v1.Accounts/ChangePlan": .act(.accountsAdmin),
        "/billing.v1.Accounts/CancelPendingChange": .act(.accountsAdmin),

        "/billing.v1.Payments/PurchaseCredits": .act(.accountsAdmin),
        "/billing.v1.Payments/SetPaymentMethod": .act(.accountsAdmin),
        "/billing.v1.Payments/GetPaymentMethod": .read(.accountsAdmin),
        "/billing.v1.Payments/ListCharges": .read(.accountsAdmin),
        "/billing.v1.Payments/ListInvoices": .read(.accountsAdmin),
        "/billing.v1.Payments/GetInvoicePdf": .read(.accountsAdmin),
        "/billing.v1.Payments/PayInvoice": .act(.accountsAdmin),

        "/billing.v1.Admin/GrantCredits": .service(.accountsAdmin),
        "/billing.v1.Admin/SetEnterpriseContract": .service(.accountsAdmin),
        "/billing.v1.Admin/CreateApiKey": .service(.accountsAdmin),
        "/billing.v1.Admin/ListApiKeys": .service(.accountsAdmin),
        "/billing.v1.Admin/RevokeApiKey": .service(.accountsAdmin),
        "/billing.v1.Admin/AdvanceClock": .service(.accountsAdmin),
        "/billing.v1.Admin/ListAuditLog": .service(.accountsAdmin),
    ]
}
