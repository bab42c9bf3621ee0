/// Where the line-item table's four columns sit. Each number column is as wide
/// as its widest entry (within bounds), so amounts are not cut in any ordinary
/// invoice; the description takes the rest and wraps within it.
struct TableColumns: Sendable {
    typealias Span = (left: Double, right: Double)

    let description: Span
    let quantity: Span
    let unitPrice: Span
    let amount: Span

    /// Space between neighbouring columns.
    static let gap = 16.0

    init(for lines: [InvoiceDocument.Line]) {
        typealias Margin = InvoiceLayout.Margin
        let amount = Self.width(header: "AMOUNT", lines.map(\.amount), atLeast: 72, atMost: 130)
        // Unit price as wide as the amount may be (a quantity of one prints
        // the same figure in both: cut in one, whole in the other, it read
        // as two amounts).
        let unitPrice = Self.width(header: "UNIT PRICE", lines.map(\.unitPrice), atLeast: 72, atMost: 130)
        let quantity = Self.width(header: "QTY", lines.map(\.quantity), atLeast: 48, atMost: 66)
        self.amount = (Margin.right - amount, Margin.right)
        self.unitPrice = (self.amount.left - Self.gap - unitPrice, self.amount.left - Self.gap)
        self.quantity = (self.unitPrice.left - Self.gap - quantity, self.unitPrice.left - Self.gap)
        self.description = (Margin.left, self.quantity.left - Self.gap)
        // The caps leave the description at least 130 pt, about 25 characters.
        assert(description.right - description.left >= 130)
    }

    /// The width of the widest of `values` and the column's `header`, clamped.
    private static func width(header: String, _ values: [String], atLeast minimum: Double, atMost maximum: Double) -> Double {
        let body = InvoiceLayout.Style.body
        let label = InvoiceLayout.Style.label
        let widest = values.lazy.map { body.font.width(of: WinAnsi.encode($0), size: body.size) }.max() ?? 0
        let headerWidth = label.font.width(of: WinAnsi.encode(header), size: label.size)
        return min(max(widest, headerWidth, minimum), maximum)
    }
}
