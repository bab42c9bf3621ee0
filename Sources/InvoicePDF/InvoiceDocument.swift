/// One invoice, ready to print: every string arrives formatted (money, dates,
/// quantities), so the writer only lays text out and never interprets it.
public struct InvoiceDocument: Sendable, Hashable {
    /// A seller or a customer: a name in bold and address lines under it.
    public struct Party: Sendable, Hashable {
        public var name: String
        public var lines: [String]

        public init(name: String, lines: [String]) {
            self.name = name
            self.lines = lines
        }
    }

    /// One row of the line-item table.
    public struct Line: Sendable, Hashable {
        public var description: String
        public var quantity: String
        public var unitPrice: String
        public var amount: String

        public init(description: String, quantity: String, unitPrice: String, amount: String) {
            self.description = description
            self.quantity = quantity
            self.unitPrice = unitPrice
            self.amount = amount
        }
    }

    /// A labelled value: ("Issued", "2026-04-01"), ("Amount due", "$49.00").
    public struct Fact: Sendable, Hashable {
        public var label: String
        public var value: String

        public init(_ label: String, _ value: String) {
            self.label = label
            self.value = value
        }
    }

    /// "Invoice", "Credit note".
    public var title: String
    /// "INV-000042".
    public var number: String
    /// "PAID", "OPEN", "PAST DUE", "VOID": shown as a coloured badge.
    public var status: String
    public var seller: Party
    public var customer: Party
    /// Dates and references beside the parties: issued, due, period.
    public var facts: [Fact]
    public var lines: [Line]
    /// Under the table, right-aligned; the last one is emphasised (the amount due).
    public var totals: [Fact]
    /// Footer lines at the bottom of the last page.
    public var notes: [String]

    public init(
        title: String, number: String, status: String,
        seller: Party, customer: Party, facts: [Fact],
        lines: [Line], totals: [Fact], notes: [String]
    ) {
        self.title = title
        self.number = number
        self.status = status
        self.seller = seller
        self.customer = customer
        self.facts = facts
        self.lines = lines
        self.totals = totals
        self.notes = notes
    }
}
