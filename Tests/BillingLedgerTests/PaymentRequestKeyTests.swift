@testable import BillingLedger
import BillingCore
import BillingProto
import Testing

/// A payment's idempotency key remembers what its request gave to pay
/// with (session 29): a retry with another method is a reused key, not the
/// first attempt's answer. And a purchase may be paid with a method given
/// with it, for that purchase only.
@Suite struct PaymentRequestKeyTests {
    static let good = LifecycleLedgerTests.good
    static let declining = LifecycleLedgerTests.declining
    static let other = TokenizedMethod(token: "tok_test_ok_3", kind: .card(brand: "visa", last4: "1111", expMonth: 12, expYear: 2099))

    static func reused(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch let refused as AccountRequestRefused {
            return refused.code == .alreadyExists ? refused.reason : "\(refused)"
        } catch {
            return "\(error)"
        }
    }

    @Test func aPaymentKeyRetriedWithAnotherMethodIsAReusedKey() async throws {
        let h = try await LifecycleEdgeTests.pastDue("acct")  // its declining card on file
        let invoice = try #require(try await h.ledger.invoices(of: "acct").last { $0.status == .pastDue })
        // Declined on the card on file...
        await #expect(throws: PaymentDeclined.self) {
            try await h.ledger.payInvoice(accountID: "acct", invoiceID: invoice.invoiceID, newMethod: nil, key: "k1", actor: "t")
        }
        // ...the same key with a new card is another request (it was answered
        // with the first decline, the new card never tried).
        let refusal = await Self.reused {
            _ = try await h.ledger.payInvoice(accountID: "acct", invoiceID: invoice.invoiceID, newMethod: Self.good, key: "k1", actor: "t")
        }
        #expect(refusal == "IDEMPOTENCY_KEY_REUSED")
        #expect(await Self.reused {
            _ = try await h.ledger.paymentWouldCharge(accountID: "acct", invoiceID: invoice.invoiceID, key: "k1", hasNewMethod: true,
                                                      requested: RequestedMethod.describing(Self.good))
        } == "IDEMPOTENCY_KEY_REUSED")
        // Its own retry is still answered from the key.
        await #expect(throws: PaymentDeclined.self) {
            try await h.ledger.payInvoice(accountID: "acct", invoiceID: invoice.invoiceID, newMethod: nil, key: "k1", actor: "t")
        }
        // Paid with a good card under k2; k2 with another card is reused, not "paid".
        let paid = try await h.ledger.payInvoice(accountID: "acct", invoiceID: invoice.invoiceID, newMethod: Self.good, key: "k2", actor: "t")
        #expect(paid.charge.status == .succeeded)
        #expect(await Self.reused {
            _ = try await h.ledger.payInvoice(accountID: "acct", invoiceID: invoice.invoiceID, newMethod: Self.declining, key: "k2", actor: "t")
        } == "IDEMPOTENCY_KEY_REUSED")
        #expect(try await h.ledger.payInvoice(accountID: "acct", invoiceID: invoice.invoiceID, newMethod: Self.good, key: "k2",
                                              actor: "t").charge.chargeID == paid.charge.chargeID)
        // The keys survive a replay of the journal as they were.
        let replayed = try LedgerState.recover(from: h.store, plans: Fixtures.plans).state
        #expect(replayed.accounts["acct"]?.requestKeys == (await h.ledger.snapshot.accounts["acct"]?.requestKeys))
        #expect(replayed.accounts["acct"]?.requestKeys["pay:k2"]?.request == "\(invoice.invoiceID)\ntoken tok_test_ok_1")
        await h.ledger.close()
    }

    @Test func aPurchaseIsPaidWithAMethodGivenWithItForThatPurchaseOnly() async throws {
        let h = try LifecycleEdgeTests.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "acct", plan: .free, actor: "t")
        _ = try await h.ledger.setPaymentMethod(accountID: "acct", method: Self.declining, actor: "t")
        await #expect(throws: PaymentDeclined.self) {
            try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy-1", actor: "t")
        }
        // A card that works, given with the purchase: paid, the credits in.
        let bought = try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy-2", newMethod: Self.other,
                                                        actor: "t")
        #expect(bought.charge.status == .succeeded && bought.charge.paymentMethodLabel == "visa •••• 1111")
        #expect(bought.invoice.status == .paid)
        var book = try #require(await h.ledger.snapshot.accounts["acct"])
        #expect(book.balance == 5_000_000)
        // Not put on file: the card on file is still the one it was.
        #expect(book.paymentMethod?.gatewayToken == Self.declining.token)
        // Its retry is answered from the key; with the card on file instead, or another, it is a reused key.
        let retried = try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy-2", newMethod: Self.other,
                                                         actor: "t")
        #expect(retried.charge.chargeID == bought.charge.chargeID)
        #expect(await Self.reused {
            _ = try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy-2", actor: "t")
        } == "IDEMPOTENCY_KEY_REUSED")
        #expect(await Self.reused {
            _ = try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy-2", newMethod: Self.good, actor: "t")
        } == "IDEMPOTENCY_KEY_REUSED")
        #expect(try await h.ledger.purchaseWouldCharge(accountID: "acct", amountMicros: 5_000_000, key: "buy-2",
                                                       requested: "token tok_test_ok_3") == false)
        #expect(try await h.ledger.purchaseWouldCharge(accountID: "acct", amountMicros: 5_000_000, key: "buy-3",
                                                       requested: RequestedMethod.none))
        book = try #require(await h.ledger.snapshot.accounts["acct"])
        #expect(book.balance == 5_000_000 && book.charges.count == 2)
        let replayed = try LedgerState.recover(from: h.store, plans: Fixtures.plans).state
        #expect(replayed.accounts["acct"] == book)
        await h.ledger.close()
    }

    /// Keys of entries from before session 29 remember no method: they
    /// compare the invoice (or amount) only, as they did.
    @Test func aKeyWithoutAMethodComparesWhatItAskedForOnly() {
        #expect(RequestedMethod.split("in_3") == ("in_3", nil))
        #expect(RequestedMethod.split(RequestedMethod.join("in_3", "none")) == ("in_3", "none"))
        #expect(RequestedMethod.join("5000000", "") == "5000000")
        #expect(RequestedMethod.split(RequestedMethod.join("5000000", "bank 6789 11\n0")) == ("5000000", "bank 6789 11\n0"))
    }
}
