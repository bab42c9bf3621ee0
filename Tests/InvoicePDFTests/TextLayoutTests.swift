import Testing
@testable import InvoicePDF

/// Encoding, metrics and fitting: the pieces that keep text inside its column.
@Suite struct TextLayoutTests {
    @Test(arguments: [
        ("A", 0x41), ("é", 0xE9), ("e\u{301}", 0xE9), ("€", 0x80), ("–", 0x96), ("—", 0x97), ("“", 0x93),
        ("”", 0x94), ("•", 0x95), ("ÿ", 0xFF), ("\t", 0x20), ("\r\n", 0x20), ("\u{A0}", 0x20),
        ("\u{7}", 0x3F), ("\u{7F}", 0x3F), ("😀", 0x3F), ("中", 0x3F), ("\u{2212}", 0x2D),
    ] as [(String, UInt8)])
    func winAnsiMapsEachCharacterToOneByte(character: String, byte: UInt8) {
        #expect(WinAnsi.encode(character) == [byte])
    }

    @Test func helveticaWidthsAreAdobesMetrics() {
        // Values from Helvetica.afm and Helvetica-Bold.afm.
        #expect(Font.helvetica.units(of: Array("Helvetica".utf8)) == 4112)
        #expect(Font.helvetica.units(of: UInt8(ascii: "@")) == 1015)
        #expect(Font.helveticaBold.units(of: UInt8(ascii: "@")) == 975)
        #expect(Font.helvetica.units(of: UInt8(ascii: "'")) == 191)
        #expect(Font.helveticaBold.units(of: UInt8(ascii: "i")) == 278)
        #expect(Font.helvetica.units(of: WinAnsi.ellipsis) == 1000)
        #expect(Font.helvetica.width(of: Array("0123456789".utf8), size: 10) == 55.6)
    }

    @Test func truncationFitsTheWidthAndEndsInAnEllipsis() {
        let text = Array("Enterprise support, 24/7, with a named engineer".utf8)
        let cut = Font.helvetica.truncated(text, toWidth: 100, size: 10)
        #expect(Font.helvetica.width(of: cut, size: 10) <= 100)
        #expect(cut.last == WinAnsi.ellipsis)
        #expect(Font.helvetica.truncated(Array("$49.00".utf8), toWidth: 100, size: 10) == Array("$49.00".utf8))
        #expect(Font.helvetica.truncated(text, toWidth: 5, size: 10).isEmpty)
        // Exactly as wide as the text itself, at a size where points are inexact.
        let amount = Array("$1,234,567,890,123.45".utf8)
        #expect(Font.helvetica.truncated(amount, toWidth: Font.helvetica.width(of: amount, size: 9.5), size: 9.5) == amount)
    }

    @Test(arguments: [
        String(repeating: "compute hours billed per region ", count: 40),
        String(repeating: "x", count: 1_300),
        "Short",
        "",
    ])
    func descriptionsWrapInsideTheirColumn(description: String) {
        let columns = TableColumns(for: [.init(description: description, quantity: "1", unitPrice: "$1", amount: "$1")])
        let lines = InvoiceLayout.descriptionLines(description, in: columns)
        let style = InvoiceLayout.Style.body
        #expect(!lines.isEmpty && lines.count <= InvoiceLayout.maxDescriptionLines)
        for line in lines {
            #expect(style.font.width(of: line, size: style.size) <= columns.description.right - columns.description.left)
        }
        #expect(columns.description.right < columns.quantity.left, "descriptions stop short of the numbers")
        // (Ten lines of the widest column hold about 550 characters.)
        if description.utf8.count > 1_000 { #expect(lines.last?.last == WinAnsi.ellipsis) }
    }

    @Test func numberColumnsWidenForLongAmountsAndStayInOrder() {
        let short = TableColumns(for: [.init(description: "a", quantity: "1", unitPrice: "$1.00", amount: "$1.00")])
        let long = TableColumns(for: [
            .init(description: "a", quantity: "1,000,000.5", unitPrice: "$1,234,567.00", amount: "$1,234,567,890.12"),
        ])
        let style = InvoiceLayout.Style.body
        #expect(long.amount.right - long.amount.left >= style.font.width(of: Array("$1,234,567,890.12".utf8), size: style.size))
        #expect(long.amount.left < short.amount.left)
        #expect(long.description.right < short.description.right)
        for columns in [short, long] {
            #expect(columns.description.right < columns.quantity.left)
            #expect(columns.quantity.right < columns.unitPrice.left)
            #expect(columns.unitPrice.right < columns.amount.left)
            #expect(columns.amount.right == InvoiceLayout.Margin.right)
        }
    }

    @Test func wrappingKeepsEveryWordWhenItFits() {
        let lines = Font.helvetica.wrapped(Array("alpha beta gamma delta".utf8), toWidth: 60, size: 10, maxLines: 5)
        #expect(lines.map { String(decoding: $0, as: UTF8.self) } == ["alpha beta", "gamma delta"])
    }

    @Test(arguments: [
        (0, "0"), (612, "612"), (12.5, "12.5"), (0.05, "0.05"), (-3.456, "-3.46"), (0.000001, "0"), (-0.001, "0"),
        (1e9, "1000000000"),
    ] as [(Double, String)])
    func numbersHaveNoExponent(value: Double, text: String) {
        #expect(PDFSyntax.number(value) == text)
    }
}
