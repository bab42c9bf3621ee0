import InvoicePDF

extension InvoiceDocument {
    /// A one-page invoice whose descriptions each fit on one line, so a text
    /// extractor finds every one whole.
    static let sample = InvoiceDocument(
        title: "Invoice", number: "INV-000042", status: "PAST DUE",
        seller: Party(name: "Acme Cloud Inc.", lines: ["1 Infinite Loop, Suite 400", "Springfield, OR 97477"]),
        customer: Party(name: "Jane Customer", lines: ["Globex Corporation", "42 Elm Road", "Cambridge CB2 1TN"]),
        facts: [Fact("Issued", "2026-04-01"), Fact("Due", "2026-05-01"), Fact("Period", "2026-04-01 to 2026-05-01")],
        lines: [
            Line(description: "Pro plan (monthly)", quantity: "1", unitPrice: "$49.00", amount: "$49.00"),
            Line(description: "Additional seats", quantity: "3", unitPrice: "$12.00", amount: "$36.00"),
            Line(description: "Crème brûlée (large) \\ tier – “café” €", quantity: "2", unitPrice: "€7.50", amount: "$16.20"),
            Line(description: "Storage (GB-months)", quantity: "1,024.5", unitPrice: "$0.023", amount: "$23.56"),
        ],
        totals: [Fact("Subtotal", "$124.76"), Fact("Total", "$124.76"), Fact("Amount paid", "$0.00"),
                 Fact("Amount due", "$124.76")],
        notes: ["Pay by bank transfer, reference INV-000042.", "Thank you for your business."])

    /// `sample` with `count` numbered line items ("Line item 001", …).
    static func withLines(_ count: Int) -> InvoiceDocument {
        var document = sample
        document.lines = (1...count).map { index in
            let number = String(repeating: "0", count: 3 - String(index).count) + String(index)
            return Line(description: "Line item \(number)", quantity: "\(index)", unitPrice: "$1.00", amount: "$\(index).00")
        }
        return document
    }
}
