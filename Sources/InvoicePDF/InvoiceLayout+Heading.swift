/// The top of the first page: title and number on the left, the status badge on
/// the right, then three columns: seller, customer, and the invoice's facts.
extension InvoiceLayout {
    /// Columns of the party row; the facts column is widest, for date ranges.
    private enum PartyColumn {
        static let seller = (x: Margin.left, width: 150.0)
        static let customer = (x: Margin.left + 164, width: 150.0)
        static let facts = (x: Margin.left + 328, width: Margin.right - Margin.left - 328)
    }

    /// At most this many lines in each party column, so an overlong address
    /// cannot push the table off the first page (a customer that needs more
    /// gets the page's width instead: `drawWideParty`).
    private static let maxBlockLines = 12
    /// Lines one name or address line may wrap to in a party column.
    private static let maxEntryLines = 4
    /// Lines in the facts column: room for a contract reference the API
    /// takes (200 bytes, even of the widest glyphs: 15 lines) after the
    /// dates (a renewal's "Period closed" wraps to 2), whole.
    private static let maxFactLines = 24
    private static let blockLeading = 13.5

    mutating func drawHeading() {
        let titleBaseline = Margin.top - 18
        let badgeWidth = drawBadge(capCentre: titleBaseline + 8.6)
        let style = Style.title
        let titleWidth = Margin.right - Margin.left - badgeWidth - 24
        let title = style.font.truncated(WinAnsi.encode(document.title), toWidth: titleWidth, size: style.size)
        let number = Style.number.font.truncated(
            WinAnsi.encode(document.number), toWidth: titleWidth, size: Style.number.size)
        draw {
            $0.text(title, x: Margin.left, y: titleBaseline, style)
            $0.text(number, x: Margin.left, y: titleBaseline - 20, Style.number)
        }
        cursor = titleBaseline - 20 - 34
    }

    /// The status in a rounded, tinted box at the right margin, vertically centred
    /// on `capCentre`. Returns its width.
    private mutating func drawBadge(capCentre: Double) -> Double {
        let style = TextStyle(font: .helveticaBold, size: 10, color: Style.badge(for: document.status).text)
        let status = style.font.truncated(WinAnsi.encode(document.status), toWidth: 200, size: style.size)
        guard !status.isEmpty else { return 0 }
        let (padding, height) = (11.0, 22.0)
        let width = style.font.width(of: status, size: style.size) + 2 * padding
        let background = Style.badge(for: document.status).background
        draw {
            $0.roundedRectangle(x: Margin.right - width, y: capCentre - height / 2, width: width, height: height,
                                radius: 4, background)
            // Helvetica-Bold's capitals are 0.72 em tall: centre them in the box.
            $0.text(status, x: Margin.right - width + padding, y: capCentre - 0.72 * style.size / 2, style)
        }
        return width
    }

    mutating func drawParties() {
        let headingBaseline = cursor - 8
        let firstBaseline = headingBaseline - 17
        // A customer too long for its column (the API takes a 1,024-byte
        // display name and a 320-byte e-mail) is printed whole across the
        // page under the row, not cut (session 31; it ended in "…").
        let customerFits = Self.columnLines(of: document.customer).fits
        var rows = [drawParty(document.seller, heading: "FROM", column: PartyColumn.seller, headingBaseline, firstBaseline)]
        if customerFits {
            rows.append(drawParty(document.customer, heading: "BILL TO", column: PartyColumn.customer, headingBaseline, firstBaseline))
        }
        rows.append(drawFacts(headingBaseline, firstBaseline))
        let tallest = Double(rows.max() ?? 0)
        cursor = firstBaseline - (tallest - 1) * Self.blockLeading - 30
        if !customerFits { drawWideParty(document.customer, heading: "BILL TO") }
    }

    /// `party` under its heading across the page, every line of it: a new
    /// page (no table header yet) when the next line would reach the footer.
    private mutating func drawWideParty(_ party: InvoiceDocument.Party, heading: String) {
        let lines = Self.wrappedEntries(of: party, toWidth: Margin.right - Margin.left, maxLines: .max).joined()
        // The heading stays with the first line.
        if !fits(25 + Self.blockLeading) { startPage(withTableHeader: false) }
        let headingBaseline = cursor - 8
        draw { $0.text(WinAnsi.encode(heading), x: Margin.left, y: headingBaseline, Style.label) }
        var baseline = headingBaseline - 17
        for (line, style) in lines {
            if baseline < Margin.bottom {
                startPage(withTableHeader: false)
                baseline = cursor - 10
            }
            draw { $0.text(line, x: Margin.left, y: baseline, style) }
            baseline -= Self.blockLeading
        }
        cursor = baseline + Self.blockLeading - 30
    }

    /// Returns the number of lines drawn under the heading.
    private mutating func drawParty(
        _ party: InvoiceDocument.Party, heading: String, column: (x: Double, width: Double),
        _ headingBaseline: Double, _ firstBaseline: Double
    ) -> Int {
        // Each entry wrapped (a long company name or e-mail address cut to
        // the column addressed the invoice to someone else), then capped.
        let wrapped = Array(Self.wrappedEntries(of: party, toWidth: column.width, maxLines: Self.maxEntryLines).joined())
        let lines = wrapped.count <= Self.maxBlockLines ? wrapped
            : Array(wrapped.prefix(Self.maxBlockLines - 1)) + [(WinAnsi.encode("\u{2026}"), Style.secondary)]
        draw {
            $0.text(WinAnsi.encode(heading), x: column.x, y: headingBaseline, Style.label)
            for (index, (line, style)) in lines.enumerated() {
                $0.text(line, x: column.x, y: firstBaseline - Double(index) * Self.blockLeading, style)
            }
        }
        return lines.count
    }

    /// Label on the left of the column, value right-aligned at the margin.
    private mutating func drawFacts(_ headingBaseline: Double, _ firstBaseline: Double) -> Int {
        let column = PartyColumn.facts
        let facts = Array(document.facts.prefix(Self.maxFactLines))
        guard !facts.isEmpty else { return 0 }
        var row = 0
        draw {
            $0.text(WinAnsi.encode("DETAILS"), x: column.x, y: headingBaseline, Style.label)
            for fact in facts where row < Self.maxFactLines {
                let (labelStyle, valueStyle) = (Style.secondary, Style.body)
                let label = labelStyle.font.truncated(WinAnsi.encode(fact.label), toWidth: column.width * 0.45,
                                                      size: labelStyle.size)
                let labelWidth = labelStyle.font.width(of: label, size: labelStyle.size)
                // A long value (a contract reference) wraps onto the lines
                // below its label, right-aligned, instead of being cut.
                // (Up to the column's last line: a contract reference is the last fact.)
                let values = valueStyle.font.wrapped(WinAnsi.encode(fact.value), toWidth: column.width - labelWidth - 10,
                                                     size: valueStyle.size, maxLines: Self.maxFactLines - row)
                $0.text(label, x: column.x, y: firstBaseline - Double(row) * Self.blockLeading, labelStyle)
                for value in values {
                    $0.text(value, right: column.x + column.width, y: firstBaseline - Double(row) * Self.blockLeading, valueStyle)
                    row += 1
                }
            }
        }
        return row
    }
}

extension InvoiceLayout {
    /// Why `party` would not print whole in a party column (nil: it would):
    /// a character the PDF's fonts lack (printed "?"), an entry wrapping
    /// past `maxEntryLines`, or more than `maxBlockLines` lines in all.
    static func overflow(of party: InvoiceDocument.Party) -> String? {
        let texts = [party.name] + party.lines
        for text in texts {
            // (A space carrying a combining mark is not plain whitespace: the mark would be lost.)
            let plainSpace = { (character: Character) in character.isWhitespace && character.unicodeScalars.count == 1 }
            if let missing = text.first(where: {
                $0 != "?" && !plainSpace($0) && ($0.isWhitespace || WinAnsi.byte(for: $0) == WinAnsi.questionMark)
            }) {
                // Named by code point: the character itself may be invisible or reorder the line it is shown on.
                let points = missing.unicodeScalars.map { "U+" + String($0.value, radix: 16, uppercase: true) }.joined(separator: " ")
                return "\(points) is not in the invoice font's character set (Windows-1252): it would print as \"?\""
            }
        }
        let (perEntry, total, _) = columnLines(of: party)
        if let (text, lines) = zip(texts, perEntry).first(where: { $0.1 > maxEntryLines }) {
            return "\"\(text)\" wraps to \(lines) lines in its column; \(maxEntryLines) print"
        }
        guard total <= maxBlockLines else { return "the name and lines wrap to \(total) lines; \(maxBlockLines) print" }
        return nil
    }

    /// The lines each of `party`'s name and lines wraps to in a party
    /// column, their total, and whether they all print there.
    static func columnLines(of party: InvoiceDocument.Party) -> (perEntry: [Int], total: Int, fits: Bool) {
        let perEntry = wrappedEntries(of: party, toWidth: PartyColumn.seller.width, maxLines: .max).map(\.count)
        let total = perEntry.reduce(0, +)
        return (perEntry, total, total <= maxBlockLines && perEntry.allSatisfy { $0 <= maxEntryLines })
    }
}

extension InvoiceLayout {
    /// `party`'s name (bold) and lines, each wrapped to `width` in its style.
    static func wrappedEntries(of party: InvoiceDocument.Party, toWidth width: Double,
                               maxLines: Int) -> [[(text: [UInt8], style: TextStyle)]] {
        ([party.name] + party.lines).enumerated().map { index, text in
            let style = index == 0 ? Style.partyName : Style.secondary
            return style.font.wrapped(WinAnsi.encode(text), toWidth: width, size: style.size, maxLines: maxLines).map { ($0, style) }
        }
    }
}

extension InvoiceDocument.Party {
    /// Why this party would not print whole as an invoice's seller or
    /// customer (nil: it would): see `InvoiceLayout.overflow(of:)`.
    public var overflow: String? { InvoiceLayout.overflow(of: self) }
}
