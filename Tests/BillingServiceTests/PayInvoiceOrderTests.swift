import BillingCore
import BillingLedger
import BillingProto
@testable import BillingService
import GRPC
import Synchronization
import Testing

/// PayInvoice asks the ledger first — its key, then the invoice, then
/// whether it is owed — and tokenizes a card given with it only for a
/// payment that will charge: a refused request or a retry answered from
/// its key leaves no new token at the gateway (README "Test cards").
@Suite struct PayInvoiceOrderTests {
    static let jan1: Int64 = 1_767_225_600  // 2026-01-01T00:00:00Z
    static let feb1: Int64 = 1_769_904_000

    /// The test gateway, counting tokenizations.
    final class CountingGateway: PaymentGateway {
        let inner = TestPaymentGateway()
        let tokenized = Atomic(0)

        func tokenize(_ source: PaymentSource, now: Int64) async throws(GatewayRefusal) -> TokenizedMethod {
            tokenized.add(1, ordering: .relaxed)
            return try await inner.tokenize(source, now: now)
        }

        func charge(token: String, amount: Money, idempotencyKey: String) async -> ChargeOutcome {
            await inner.charge(token: token, amount: amount, idempotencyKey: idempotencyKey)
        }
    }

    /// `body` with a Pro account on a test clock whose first invoice
    /// (February's) was charged to `card` at the period's close.
    static func withInvoice(card: String,
                            _ body: (CountingGateway, PaymentsService, Billing_V1_Invoice) async throws -> Void) async throws {
        let gateway = CountingGateway()
        try await withSQLiteLedger(clock: TestClock(startMicros: jan1 * 1_000_000), gateway: gateway) { ledger in
            _ = try await ledger.createAccount(id: "acme", plan: .pro, actor: "t")
            let method = try await gateway.tokenize(.card(number: card, expMonth: 12, expYear: 2099, holder: "Ada"), now: jan1)
            _ = try await ledger.setPaymentMethod(accountID: "acme", method: method, actor: "t")
            _ = try await ledger.advanceClock(to: feb1 + 10, actor: "t")
            let invoice = try #require(try await ledger.invoices(of: "acme").first)
            try await body(gateway, PaymentsService(ledger: ledger), invoice)
        }
    }

    static func request(_ invoiceID: String, key: String, card: String? = nil) -> Billing_V1_PayInvoiceRequest {
        var request = Billing_V1_PayInvoiceRequest()
        request.accountID = "acme"
        request.invoiceID = invoiceID
        request.idempotencyKey = key
        if let card {
            var input = Billing_V1_CardInput()
            input.number = card
            input.expMonth = 12
            input.expYear = 2099
            request.paymentMethod.card = input
        }
        return request
    }

    static func refusal(_ body: () async throws -> Billing_V1_PayInvoiceResponse) async -> GRPCStatus? {
        do {
            let answer = try await body()
            Issue.record("answered \(answer)")
            return nil
        } catch {
            return error as? GRPCStatus
        }
    }

    @Test func theKeyIsCheckedBeforeTheInvoice() async throws {
        try await Self.withInvoice(card: "4000000000000002") { _, payments, invoice in
            #expect(invoice.status == .pastDue)
            let declined = await Self.refusal { try await payments.payInvoice(Self.request(invoice.invoiceID, key: "k1"), actor: "t") }
            #expect(declined?.errorInfo?.reason == "PAYMENT_DECLINED")
            // The same key for an invoice that does not exist: the key is reused.
            let reused = await Self.refusal { try await payments.payInvoice(Self.request("in_999", key: "k1"), actor: "t") }
            #expect(reused?.code == .alreadyExists)
            #expect(reused?.errorInfo?.reason == "IDEMPOTENCY_KEY_REUSED")
        }
    }

    @Test func aCardIsTokenizedOnlyForAPaymentThatCharges() async throws {
        try await Self.withInvoice(card: "4000000000000002") { gateway, payments, invoice in
            let good = "4242424242424242"
            var tokens = gateway.tokenized.load(ordering: .relaxed)
            // Refused before any charge: no token.
            let missing = await Self.refusal { try await payments.payInvoice(Self.request("in_999", key: "a", card: good), actor: "t") }
            #expect(missing?.errorInfo?.reason == "INVOICE_NOT_FOUND")
            #expect(gateway.tokenized.load(ordering: .relaxed) == tokens)
            // Paid with a new card: one token.
            let paid = try await payments.payInvoice(Self.request(invoice.invoiceID, key: "b", card: good), actor: "t")
            #expect(paid.invoice.status == .paid)
            #expect(gateway.tokenized.load(ordering: .relaxed) == tokens + 1)
            tokens += 1
            // Its retry (same key) and another payment of the paid invoice: no token.
            let retried = try await payments.payInvoice(Self.request(invoice.invoiceID, key: "b", card: good), actor: "t")
            #expect(retried.charge.chargeID == paid.charge.chargeID)
            let again = await Self.refusal { try await payments.payInvoice(Self.request(invoice.invoiceID, key: "c", card: good), actor: "t") }
            #expect(again?.errorInfo?.reason == "INVOICE_ALREADY_PAID")
            #expect(gateway.tokenized.load(ordering: .relaxed) == tokens)
        }
    }
}
