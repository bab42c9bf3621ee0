/// The line-item table: description, quantity, unit price, amount. Numbers are
/// right-aligned; descriptions wrap within their column and never reach the numbers.
extension InvoiceLayout {
    /// Descriptions longer than this many lines end in an ellipsis: enough
    /// for the longest a request may give (200 bytes) and the dates after it
    /// in the narrowest description column (130 pt).
    static let maxDescriptionLines = 10
    private static let rowPadding = 6.0
    private static let rowLeading = 12.5

    /// Column names over a dark rule.
    /// The table's header where the table starts: on a new page when it and
    /// the first row would not fit above the footer (a customer printed
    /// across the page can leave too little room: session 31, a review
    /// found the header alone at a page's foot, or inside its margin).
    mutating func drawTableStart() {
        // (No line: the totals follow the header — a block moved whole.)
        let firstRow = document.lines.first.map { Self.rowHeight(lines: Self.descriptionLines($0.description, in: columns).count) }
            ?? totalsHeight
        if !fits(Self.headerHeight + firstRow) { startPage(withTableHeader: false) }
        drawTableHeader()
    }

    /// From the cursor to the header's rule.
    private static let headerHeight = 14.0

    /// A row's height: its description's lines and the padding around them.
    static func rowHeight(lines: Int) -> Double {
        2 * rowPadding + Double(lines) * rowLeading
    }

    mutating func drawTableHeader() {
        let style = Style.label
        let columns = self.columns
        let baseline = cursor - 8
        let ruleY = cursor - Self.headerHeight
        draw {
            $0.text(WinAnsi.encode("DESCRIPTION"), x: columns.description.left, y: baseline, style)
            $0.text(WinAnsi.encode("QTY"), right: columns.quantity.right, y: baseline, style)
            $0.text(WinAnsi.encode("UNIT PRICE"), right: columns.unitPrice.right, y: baseline, style)
            $0.text(WinAnsi.encode("AMOUNT"), right: columns.amount.right, y: baseline, style)
            $0.rule(from: Margin.left, to: Margin.right, y: ruleY, width: 0.75, Style.ink)
        }
        cursor = ruleY
    }

    /// One line item over a hairline; on a new page (with the header again) when
    /// it does not fit above the footer. A row is never split across pages.
    mutating func drawRow(_ line: InvoiceDocument.Line) {
        let columns = self.columns
        let description = Self.descriptionLines(line.description, in: columns)
        let height = Self.rowHeight(lines: description.count)
        if !fits(height) { startPage(withTableHeader: true) }
        assert(fits(height), "a row of \(description.count) lines must fit on a fresh page")
        let style = Style.body
        let numbers = [
            (line.quantity, columns.quantity), (line.unitPrice, columns.unitPrice), (line.amount, columns.amount),
        ].map { text, column in
            (style.font.truncated(WinAnsi.encode(text), toWidth: column.right - column.left, size: style.size), column.right)
        }
        // Baselines sit 3.2 pt above the bottom of each line's box, centring the
        // x-height band between the hairlines.
        let top = cursor - Self.rowPadding
        draw {
            for (index, text) in description.enumerated() {
                $0.text(text, x: columns.description.left, y: top - Double(index + 1) * Self.rowLeading + 3.2, style)
            }
            for (text, right) in numbers {
                $0.text(text, right: right, y: top - Self.rowLeading + 3.2, style)
            }
        }
        cursor -= height
        let ruleY = cursor
        draw { $0.rule(from: Margin.left, to: Margin.right, y: ruleY, width: 0.5, Style.hairline) }
    }

    /// `text` wrapped to the description column.
    static func descriptionLines(_ text: String, in columns: TableColumns) -> [[UInt8]] {
        let style = Style.body
        return style.font.wrapped(WinAnsi.encode(text), toWidth: columns.description.right - columns.description.left,
                                  size: style.size, maxLines: maxDescriptionLines)
    }
}
