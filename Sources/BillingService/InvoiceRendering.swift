import BillingCore
import BillingLedger
import BillingProto
import InvoicePDF

/// An invoice as the document its PDF prints.
enum InvoiceRendering {
    /// "Period closed" for an invoice issued at (or after) its period's end
    /// — a renewal, whose period is the one that closed (its usage) while
    /// its plan line pays for the next — else "Period" (a subscription's
    /// start, an upgrade's rest of the period): two consecutive invoices
    /// showing the same dates must not read as the same month billed twice.
    static func periodLabel(_ invoice: Billing_V1_Invoice) -> String {
        invoice.periodEndUnixSeconds <= invoice.issuedUnixSeconds ? "Period closed" : "Period"
    }

    static func document(_ invoice: Billing_V1_Invoice, book: AccountBook, seller: InvoiceDocument.Party) -> InvoiceDocument {
        var facts = [
            InvoiceDocument.Fact("Invoice number", invoice.number),
            InvoiceDocument.Fact("Issued", date(invoice.issuedUnixSeconds)),
            InvoiceDocument.Fact("Due", date(invoice.dueUnixSeconds)),
        ]
        if invoice.periodStartUnixSeconds != 0 || invoice.periodEndUnixSeconds != 0 {
            facts.append(.init(periodLabel(invoice), "\(date(invoice.periodStartUnixSeconds)) to \(date(invoice.periodEndUnixSeconds))"))
        }
        if invoice.paidUnixSeconds != 0 { facts.append(.init("Paid", date(invoice.paidUnixSeconds))) }
        // The contract as issued, not the account's current one.
        if !invoice.contractReference.isEmpty { facts.append(.init("Contract", invoice.contractReference)) }
        // The account id under the display name; as the name when there is
        // none (session 28: printed twice then).
        var customerLines = book.displayName.isEmpty ? [] : [book.accountID]
        if !book.billingEmail.isEmpty { customerLines.append(book.billingEmail) }
        let customer = InvoiceDocument.Party(name: book.displayName.isEmpty ? book.accountID : book.displayName, lines: customerLines)
        var notes = ["Amounts in \(invoice.currency). Questions: reply to your invoice email or contact support."]
        if invoice.status == .void {
            notes.insert("This invoice is void: nothing is owed.", at: 0)
        }
        if invoice.status == .pastDue {
            // (Its pay link is a route of the app, no address a reader of the PDF could open.)
            notes.insert("This invoice is past due. Pay it in the Billing tab of the app (Invoices) to keep your runs going.", at: 0)
        }
        return InvoiceDocument(
            title: "Invoice",
            number: invoice.number,
            status: status(invoice.status),
            seller: seller,
            customer: customer,
            facts: facts,
            lines: invoice.lineItems.map { item in
                InvoiceDocument.Line(
                    description: item.description_p, quantity: String(item.quantity),
                    unitPrice: money(item.unitAmountMicros), amount: money(item.amountMicros))
            },
            totals: [
                .init("Subtotal", money(invoice.subtotalMicros)),
                .init("Total", money(invoice.totalMicros)),
                .init("Amount paid", money(invoice.amountPaidMicros)),
                .init("Amount due", money(invoice.amountDueMicros)),
            ],
            notes: notes)
    }

    static func status(_ status: Billing_V1_InvoiceStatus) -> String {
        switch status {
        case .paid: "PAID"
        case .pastDue: "PAST DUE"
        case .void: "VOID"
        default: "OPEN"
        }
    }

    static func money(_ micros: Int64) -> String { Money(micros: micros).formatted(.significant) }

    static func date(_ unix: Int64) -> String { "\(CivilDate(unixSeconds: unix))" }
}
