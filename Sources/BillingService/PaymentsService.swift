public import BillingLedger
import BillingCore
import BillingProto
import GRPC
import Foundation
import InvoicePDF

/// billing.v1.Payments: credits, payment methods, charges, invoices and
/// their PDFs. Card and account numbers go to the gateway and nowhere else.
public final class PaymentsService: Sendable {
    let ledger: Ledger
    let seller: InvoiceDocument.Party

    /// Largest single credit purchase: $1,000,000.
    static let maxPurchaseMicros: Int64 = 1_000_000 * 1_000_000
    static let minPurchaseMicros: Int64 = 1_000_000
    static let defaultPageSize = 50
    static let maxPageSize = 500

    public init(ledger: Ledger, seller: InvoiceDocument.Party = PaymentsService.defaultSeller) {
        self.ledger = ledger
        self.seller = seller
    }

    public static let defaultSeller = InvoiceDocument.Party(
        name: "Agent Platform, Inc.",
        lines: ["100 Example Street", "San Francisco, CA 94105", "billing@agent-platform.example"])

    func register(into router: inout SecuredRouter) {
        router.register("/billing.v1.Payments/PurchaseCredits") { [self] (request: Billing_V1_PurchaseCreditsRequest, principal) in
            try await purchaseCredits(request, actor: principal.auditName)
        }
        router.register("/billing.v1.Payments/SetPaymentMethod") { [self] (request: Billing_V1_SetPaymentMethodRequest, principal) in
            try await setPaymentMethod(request, actor: principal.auditName)
        }
        router.register("/billing.v1.Payments/GetPaymentMethod") { [self] (request: Billing_V1_GetPaymentMethodRequest, _) in
            try requireID(request.accountID, "account_id")
            return try await Refusals.mapping {
                let book = try await ledger.currentBook(request.accountID)
                var response = Billing_V1_GetPaymentMethodResponse()
                if let method = book.paymentMethod { response.current = method.method }
                if let pending = book.pendingPaymentMethod { response.pending = pending.method }
                return response
            }
        }
        router.register("/billing.v1.Payments/ListCharges") { [self] (request: Billing_V1_ListChargesRequest, _) in
            try requireID(request.accountID, "account_id")
            let page = try Page(size: request.pageSize, token: request.pageToken)
            return try await Refusals.mapping {
                let charges = try await ledger.currentBook(request.accountID).charges
                var response = Billing_V1_ListChargesResponse()
                (response.charges, response.nextPageToken) = try page.slice(charges)
                return response
            }
        }
        router.register("/billing.v1.Payments/ListInvoices") { [self] (request: Billing_V1_ListInvoicesRequest, _) in
            try requireID(request.accountID, "account_id")
            let page = try Page(size: request.pageSize, token: request.pageToken)
            return try await Refusals.mapping {
                _ = try await ledger.currentBook(request.accountID)
                let invoices = try await ledger.invoices(of: request.accountID)
                var response = Billing_V1_ListInvoicesResponse()
                (response.invoices, response.nextPageToken) = try page.slice(invoices)
                return response
            }
        }
        router.register("/billing.v1.Payments/GetInvoicePdf") { [self] (request: Billing_V1_GetInvoicePdfRequest, _) in
            try requireID(request.accountID, "account_id")
            try requireID(request.invoiceID, "invoice_id")
            return try await Refusals.mapping {
                let book = try await ledger.currentBook(request.accountID)
                let invoice = try await ledger.invoice(accountID: request.accountID, invoiceID: request.invoiceID)
                var response = Billing_V1_GetInvoicePdfResponse()
                response.pdf = Data(InvoicePDF.render(InvoiceRendering.document(invoice, book: book, seller: seller)))
                response.filename = "\(invoice.number).pdf"
                response.contentType = "application/pdf"
                return response
            }
        }
        router.register("/billing.v1.Payments/PayInvoice") { [self] (request: Billing_V1_PayInvoiceRequest, principal) in
            try await payInvoice(request, actor: principal.auditName)
        }
    }

    func purchaseCredits(_ request: Billing_V1_PurchaseCreditsRequest, actor: String) async throws -> Billing_V1_PurchaseCreditsResponse {
        try requireID(request.accountID, "account_id")
        try requireID(request.idempotencyKey, "idempotency_key")
        // A card is charged whole cents, and a gateway has a minimum charge:
        // $1.00 to $1,000,000.00, in cents (10,000 micros).
        guard (Self.minPurchaseMicros...Self.maxPurchaseMicros).contains(request.amountMicros),
              Money(micros: request.amountMicros).isWholeCents else {
            throw GRPCStatus(.invalidArgument,
                             "amount_micros must be whole cents (a multiple of 10000) from \(Self.minPurchaseMicros) ($1.00) to \(Self.maxPurchaseMicros) ($1,000,000.00)",
                             reason: "INVALID_AMOUNT", metadata: ["field": "amount_micros"])
        }
        // As PayInvoice: the key is checked before a card given to pay with
        // is tokenized (a retry answered from its key tokenizes nothing).
        let requested = Self.requestedMethod(request.hasPaymentMethod ? request.paymentMethod : nil)
        let charges = try await Refusals.mapping {
            try await ledger.purchaseWouldCharge(accountID: request.accountID, amountMicros: request.amountMicros,
                                                 key: request.idempotencyKey, requested: requested)
        }
        let method = charges && request.hasPaymentMethod ? try await tokenize(request.paymentMethod, field: "payment_method") : nil
        return try await Refusals.mapping {
            let result = try await ledger.purchaseCredits(
                accountID: request.accountID, amountMicros: request.amountMicros, key: request.idempotencyKey,
                newMethod: method, requested: requested, actor: actor)
            var response = Billing_V1_PurchaseCreditsResponse()
            response.charge = result.charge
            response.invoice = result.invoice
            response.creditBalanceMicros = result.balance
            return response
        }
    }

    func setPaymentMethod(_ request: Billing_V1_SetPaymentMethodRequest, actor: String) async throws -> Billing_V1_SetPaymentMethodResponse {
        try requireID(request.accountID, "account_id")
        // Refused before the gateway is asked: a real one would keep a token
        // made for a request that changes nothing.
        try await requireAccount(request.accountID)
        let method = try await tokenize(request.paymentMethod, field: "payment_method")
        return try await Refusals.mapping {
            let (appliedNow, charge) = try await ledger.setPaymentMethod(accountID: request.accountID, method: method, actor: actor)
            let book = try await ledger.currentBook(request.accountID)
            var response = Billing_V1_SetPaymentMethodResponse()
            response.appliedNow = appliedNow
            if let charge { response.charge = charge }
            if let current = book.paymentMethod { response.current = current.method }
            if let pending = book.pendingPaymentMethod { response.pending = pending.method }
            return response
        }
    }

    /// NOT_FOUND (ACCOUNT_NOT_FOUND) unless the account exists.
    func requireAccount(_ id: String) async throws {
        guard await ledger.hasAccount(id) else { throw Refusals.status(LedgerError.accountNotFound(id)) }
    }

    func payInvoice(_ request: Billing_V1_PayInvoiceRequest, actor: String) async throws -> Billing_V1_PayInvoiceResponse {
        try requireID(request.accountID, "account_id")
        try requireID(request.invoiceID, "invoice_id")
        try requireID(request.idempotencyKey, "idempotency_key", required: false)
        // The ledger's checks first (the key, the invoice, whether it is
        // owed): a card is tokenized only for a payment that will charge —
        // not for a refusal, nor for a retry answered from its key.
        let requested = Self.requestedMethod(request.hasPaymentMethod ? request.paymentMethod : nil)
        let charges = try await Refusals.mapping {
            try await ledger.paymentWouldCharge(accountID: request.accountID, invoiceID: request.invoiceID,
                                                key: request.idempotencyKey, hasNewMethod: request.hasPaymentMethod, requested: requested)
        }
        let method = charges && request.hasPaymentMethod ? try await tokenize(request.paymentMethod, field: "payment_method") : nil
        return try await Refusals.mapping {
            let (invoice, charge) = try await ledger.payInvoice(
                accountID: request.accountID, invoiceID: request.invoiceID, newMethod: method, requested: requested,
                key: request.idempotencyKey, actor: actor)
            var response = Billing_V1_PayInvoiceResponse()
            response.invoice = invoice
            response.charge = charge
            return response
        }
    }

    /// What a request gives to pay with, as its idempotency key remembers it
    /// (`RequestedMethod`): read from the input itself, before (and whether
    /// or not) it is tokenized; the numbers' last 4 digits only.
    static func requestedMethod(_ input: Billing_V1_PaymentMethodInput?) -> String {
        func last4(_ number: String) -> String { String(number.filter(\.isASCII).filter(\.isNumber).suffix(4)) }
        switch input?.source {
        case nil: return input == nil ? RequestedMethod.none : "empty"
        case .card(let card)?: return RequestedMethod.card(last4: last4(card.number), expMonth: Int(card.expMonth), expYear: Int(card.expYear))
        case .bankAccount(let bank)?: return RequestedMethod.bank(last4: last4(bank.accountNumber), routing: String(bank.routingNumber.prefix(40)))
        case .gatewayToken(let token)?: return RequestedMethod.token(String(token.prefix(MeteringLimits.maxIDBytes)))
        }
    }

    /// Validates the input's shape, then has the gateway tokenize it. The
    /// numbers in `input` are never logged or stored.
    func tokenize(_ input: Billing_V1_PaymentMethodInput, field: String) async throws -> TokenizedMethod {
        let source: PaymentSource
        switch input.source {
        case .card(let card)?:
            try requireText(card.holderName, "\(field).card.holder_name", max: 200)
            guard card.number.utf8.count <= 40 else {
                throw GRPCStatus(.invalidArgument, "the card number is not valid", reason: "INVALID_CARD_NUMBER", metadata: ["field": "\(field).card.number"])
            }
            source = .card(number: card.number, expMonth: Int(card.expMonth), expYear: Int(card.expYear), holder: card.holderName)
        case .bankAccount(let bank)?:
            try requireText(bank.bankName, "\(field).bank_account.bank_name", max: 100)
            try requireText(bank.holderName, "\(field).bank_account.holder_name", max: 200)
            guard bank.accountNumber.utf8.count <= 40, bank.routingNumber.utf8.count <= 40 else {
                throw GRPCStatus(.invalidArgument, "the account or routing number is not valid", reason: "INVALID_ACCOUNT_NUMBER")
            }
            source = .bankAccount(bankName: bank.bankName, routingNumber: bank.routingNumber,
                                  accountNumber: bank.accountNumber, holder: bank.holderName)
        case .gatewayToken(let token)?:
            try requireID(token, "\(field).gateway_token")
            source = .token(token)
        case nil:
            throw GRPCStatus(.invalidArgument, "\(field) needs a card, a bank account or a gateway token",
                             reason: "MISSING_FIELD", metadata: ["field": field])
        }
        do {
            return try await ledger.gateway.tokenize(source, now: ledger.currentUnix)
        } catch {
            throw GRPCStatus(.invalidArgument, error.message, reason: error.reason, metadata: ["field": field])
        }
    }
}

/// A page of a list shown newest first, taken from the list as it grows
/// (oldest first, only ever appended to). The token names where the next
/// page ends: "b<n>", the items before the n-th. An item added between two
/// pages shifts nothing (with an offset from the newest, as tokens were
/// before session 19, it repeated an item on the next page; such a token,
/// plain digits, is still read that way).
struct Page {
    enum Position: Equatable {
        case newest
        case before(Int)
        case offsetFromNewest(Int)
    }

    let size: Int
    let position: Position

    init(size: Int32, token: String) throws(GRPCStatus) {
        guard size >= 0 else {
            throw GRPCStatus(.invalidArgument, "page_size must be >= 0", reason: "INVALID_FIELD", metadata: ["field": "page_size"])
        }
        self.size = size == 0 ? PaymentsService.defaultPageSize : min(Int(size), PaymentsService.maxPageSize)
        // Digits only ("+5" is no token this service issued).
        let digits = token.utf8.dropFirst(token.hasPrefix("b") ? 1 : 0).allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        if token.isEmpty {
            position = .newest
        } else if !digits {
            throw Self.malformed
        } else if token.utf8.count <= 13, token.hasPrefix("b"), let count = Int(token.dropFirst()), count > 0 {
            position = .before(count)
        } else if token.utf8.count <= 12, let offset = Int(token), offset > 0 {
            position = .offsetFromNewest(offset)
        } else {
            throw Self.malformed
        }
    }

    static let malformed = GRPCStatus(.invalidArgument, "malformed page_token", reason: "INVALID_FIELD", metadata: ["field": "page_token"])

    /// The page of `oldestFirst`, newest first, and the next page's token
    /// ("" after the oldest item). A token past the list's end — "b<n>", or
    /// an older build's offset — was never issued for it (lists only grow):
    /// refused.
    func slice<T>(_ oldestFirst: [T]) throws(GRPCStatus) -> ([T], String) {
        let end = switch position {
        case .newest: oldestFirst.count
        case .before(let count):
            if count > oldestFirst.count { throw Self.malformed } else { count }
        case .offsetFromNewest(let offset):
            if offset > oldestFirst.count { throw Self.malformed } else { oldestFirst.count - offset }
        }
        let start = max(0, end - size)
        return (Array(oldestFirst[start..<end].reversed()), start > 0 ? "b\(start)" : "")
    }
}
