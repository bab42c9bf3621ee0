/// What follows the last line item: the totals, right-aligned under the number
/// columns with the last one emphasised, and the notes at the foot of the page.
extension InvoiceLayout {
    private static let totalsLeading = 18.0
    private static let noteLeading = 11.5
    private static let maxNoteLines = 6

    /// One row of the totals block, encoded and styled.
    private struct TotalRow {
        var label: [UInt8]
        var value: [UInt8]
        var labelStyle: TextStyle
        var valueStyle: TextStyle
        var isLast: Bool

        var width: Double {
            labelStyle.font.width(of: label, size: labelStyle.size) + valueStyle.font.width(of: value, size: valueStyle.size)
        }
    }

    /// Each total as a label on the left and its value right-aligned at the
    /// margin. The block starts under the unit-price column, further left when
    /// its widest row needs it; values are cut only past 330 pt.
    /// The totals block's height (moved to a new page whole unless taller
    /// than a page).
    var totalsHeight: Double {
        document.totals.isEmpty ? 0 : 8 + Double(document.totals.count) * Self.totalsLeading + 6
    }

    mutating func drawTotals() {
        let count = document.totals.count
        let rows = document.totals.enumerated().map { index, total in
            let isLast = index == count - 1
            return TotalRow(
                label: WinAnsi.encode(total.label), value: WinAnsi.encode(total.value),
                labelStyle: isLast ? Style.grandTotal : Style.totalLabel, valueStyle: isLast ? Style.grandTotal : Style.total,
                isLast: isLast)
        }
        guard !rows.isEmpty else { return }
        let labelGap = 24.0
        let widest = (rows.map(\.width).max() ?? 0) + labelGap
        let left = max(min(columns.unitPrice.left, Margin.right - widest), Margin.right - 330)
        let width = Margin.right - left
        // The emphasised total sits 6 pt lower, under its own rule. The block
        // moves to a new page whole; only a block taller than a page is split.
        if !fits(totalsHeight) { startPage(withTableHeader: false) }
        var baseline = cursor - 8
        for row in rows {
            let advance = Self.totalsLeading + (row.isLast ? 6 : 0)
            if baseline - advance - 8 < Margin.bottom {
                startPage(withTableHeader: false)
                baseline = cursor - 8
            }
            baseline -= advance
            let value = row.valueStyle.font.truncated(row.value, toWidth: width - 40, size: row.valueStyle.size)
            let valueWidth = row.valueStyle.font.width(of: value, size: row.valueStyle.size)
            let label = row.labelStyle.font.truncated(row.label, toWidth: width - labelGap - valueWidth,
                                                      size: row.labelStyle.size)
            let y = baseline
            draw {
                if row.isLast { $0.rule(from: left, to: Margin.right, y: y + 15, width: 0.75, Style.ink) }
                $0.text(label, x: left, y: y, row.labelStyle)
                $0.text(value, right: Margin.right, y: y, row.valueStyle)
            }
        }
        cursor = baseline - 8
    }

    /// Notes wrapped to the text width, under a hairline at the bottom of the last
    /// page (a page of their own when the totals left no room). Notes too long
    /// for any page flow down from the cursor instead.
    mutating func drawNotes() {
        let style = Style.note
        let lines = document.notes.flatMap {
            style.font.wrapped(WinAnsi.encode($0), toWidth: Margin.right - Margin.left, size: style.size,
                               maxLines: Self.maxNoteLines)
        }
        guard !lines.isEmpty else { return }
        let gap = 20.0
        let height = 14 + Double(lines.count - 1) * Self.noteLeading + 4
        if !fits(gap + height) { startPage(withTableHeader: false) }
        if fits(gap + height) {
            let top = Margin.bottom + height
            draw {
                $0.rule(from: Margin.left, to: Margin.right, y: top, width: 0.5, Style.hairline)
                for (index, line) in lines.enumerated() {
                    $0.text(line, x: Margin.left, y: top - 14 - Double(index) * Self.noteLeading, style)
                }
            }
            cursor = Margin.bottom
            return
        }
        for line in lines {
            if !fits(Self.noteLeading) { startPage(withTableHeader: false) }
            cursor -= Self.noteLeading
            let y = cursor
            draw { $0.text(line, x: Margin.left, y: y, style) }
        }
    }
}
