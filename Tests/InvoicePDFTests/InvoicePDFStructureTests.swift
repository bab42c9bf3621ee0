import Testing
@testable import InvoicePDF

/// The file's bookkeeping, checked by our own reader: xref offsets, stream
/// lengths, the page tree, and the bytes text turns into.
@Suite struct InvoicePDFStructureTests {
    @Test(arguments: [1, 4, 40, 300])
    func crossReferencesAndStreamLengthsAreExact(lines: Int) throws {
        let pdf = try ParsedPDF(InvoicePDF.render(.withLines(lines)))
        let streams = try pdf.streams()
        #expect(streams.count == pdf.pageObjects.count, "one content stream per page")
        #expect(pdf.trailer.contains("/Root 1 0 R"))
        #expect(pdf.object(1).contains("/Type /Catalog"))
    }

    @Test func declaresBothHelveticasInWinAnsi() throws {
        let pdf = try ParsedPDF(InvoicePDF.render(.sample))
        let fonts = (1...pdf.objectCount).map(pdf.object).filter { $0.contains("/Type /Font") }
        #expect(fonts.count == 2)
        for name in ["/BaseFont /Helvetica ", "/BaseFont /Helvetica-Bold "] {
            #expect(fonts.contains { $0.contains(name) && $0.contains("/Encoding /WinAnsiEncoding") }, "\(name)")
        }
    }

    @Test func manyLinesContinueOnPagesCountedByThePageTree() throws {
        let pdf = try ParsedPDF(InvoicePDF.render(.withLines(300)))
        let pages = pdf.pageObjects
        #expect(pages.count > 1)
        let tree = pdf.object(2)
        #expect(tree.contains("/Type /Pages"))
        #expect(tree.contains("/Count \(pages.count) "))
        let content = try pdf.streams().map { String(decoding: $0.data, as: UTF8.self) }
        #expect(content.last?.contains("(Page \(pages.count) of \(pages.count)) Tj") == true)
        // The table header is repeated on every page that has rows; totals come last.
        #expect(content.dropLast().allSatisfy { $0.contains("(DESCRIPTION) Tj") })
        #expect(content.last?.contains("(Amount due) Tj") == true)
        #expect(content.dropLast().allSatisfy { !$0.contains("(Amount due) Tj") })
    }

    @Test func fewLinesFitOnOnePage() throws {
        let pdf = try ParsedPDF(InvoicePDF.render(.sample))
        #expect(pdf.pageObjects.count == 1)
        #expect(pdf.object(2).contains("/Count 1 "))
    }

    @Test func parenthesesBackslashesAndNonASCIIAreEscaped() throws {
        var document = InvoiceDocument.sample
        document.lines[0].description = "Café (large) \\ tier ) ( \u{20AC}"
        let pdf = try ParsedPDF(InvoicePDF.render(document))
        let content = try #require(try pdf.streams().first).data
        // é is WinAnsi 351 (octal), € is 200: both written as octal escapes.
        #expect(content.firstRange(of: Array(#"(Caf\351 \(large\) \\ tier \) \( \200) Tj"#.utf8)) != nil)
    }

    @Test func controlCharactersCannotBreakTheStream() throws {
        var document = InvoiceDocument.sample
        document.lines[0].description = "a\u{0}b\u{7}c\td\r\ne\u{1B}f"
        document.number = "INV-\u{0}\n)"
        let pdf = try ParsedPDF(InvoicePDF.render(document))
        let content = try #require(try pdf.streams().first).data
        #expect(content.firstRange(of: Array("(a?b?c d e?f) Tj".utf8)) != nil)
        #expect(content.allSatisfy { $0 == 0x0A || (0x20...0x7E).contains($0) }, "content streams are plain ASCII")
    }

    /// Overlong everything: every run must still sit inside the margins and above
    /// the footer, and no description may reach into the quantity column.
    @Test func textStaysInsideThePage() throws {
        let long = "Consolidated enterprise workspace billing for the EMEA region, all subsidiaries"
        var document = InvoiceDocument.withLines(30)
        document.title = String(repeating: "Proforma ", count: 12)
        document.status = String(repeating: "PAST DUE ", count: 8)
        document.seller = .init(name: long, lines: (1...20).map { "\($0) \(long)" })
        document.facts = [.init(long, long), .init("Due", long)]
        document.lines[3] = .init(description: long + long + long, quantity: long, unitPrice: long, amount: long)
        document.lines[4].description = String(repeating: "x", count: 500)
        document.totals = [.init(long, long), .init("Amount due", "$1,234,567,890,123.45")]
        document.notes = [long + long + long + long + long + long]
        let pdf = try ParsedPDF(InvoicePDF.render(document))
        let columns = TableColumns(for: document.lines)
        let descriptions = Set(document.lines.flatMap { InvoiceLayout.descriptionLines($0.description, in: columns) })
        let margin = InvoiceLayout.Margin.self
        var descriptionRuns = 0
        for content in try pdf.streams() {
            let runs = TextRun.all(in: content.data)
            for (index, run) in runs.enumerated() {
                for other in runs[(index + 1)...] where run.overlaps(other) {
                    Issue.record("'\(String(decoding: run.text, as: UTF8.self))' overlaps '\(String(decoding: other.text, as: UTF8.self))'")
                }
                let text = String(decoding: run.text, as: UTF8.self)
                #expect(run.x >= margin.left - 0.01 && run.x + run.width <= margin.right + 0.01, "\(text)")
                // Helvetica's capitals are 0.72 em tall.
                #expect(run.y >= margin.footerBaseline - 0.01 && run.y + 0.72 * run.size <= margin.top + 0.01, "\(text)")
                // (Left-aligned in their column: a wrapped party line or fact
                // value of the same text is elsewhere.)
                if descriptions.contains(run.text) && run.font == .helvetica && abs(run.x - columns.description.left) < 0.01 {
                    descriptionRuns += 1
                    #expect(run.x + run.width < columns.quantity.left, "\(text)")
                }
            }
        }
        #expect(descriptionRuns >= document.lines.count)
        #expect(try pdf.streams().flatMap { TextRun.all(in: $0.data) }.contains { $0.text == Array("$1,234,567,890,123.45".utf8) },
                "amounts are not cut")
    }

    @Test func sameDocumentSameBytes() {
        #expect(InvoicePDF.render(.withLines(50)) == InvoicePDF.render(.withLines(50)))
        var other = InvoiceDocument.sample
        other.status = "PAID"
        #expect(InvoicePDF.render(other) != InvoicePDF.render(.sample))
    }

    @Test func emptyDocumentIsStillOneValidPage() throws {
        let empty = InvoiceDocument(
            title: "", number: "", status: "", seller: .init(name: "", lines: []), customer: .init(name: "", lines: []),
            facts: [], lines: [], totals: [], notes: [])
        let pdf = try ParsedPDF(InvoicePDF.render(empty))
        _ = try pdf.streams()
        #expect(pdf.pageObjects.count == 1)
    }

    @Test func totalsTallerThanAPageFlowOntoFurtherPages() throws {
        var document = InvoiceDocument.sample
        document.totals = (1...60).map { InvoiceDocument.Fact("Adjustment \($0)", "$\($0).00") }
        let pdf = try ParsedPDF(InvoicePDF.render(document))
        let content = try pdf.streams().map { String(decoding: $0.data, as: UTF8.self) }
        #expect(content.count > 2)
        #expect(content.joined().contains("(Adjustment 60) Tj"))
    }

    @Test func longNotesFlowOntoFurtherPages() throws {
        var document = InvoiceDocument.sample
        document.notes = (1...120).map { "Note \($0): terms and conditions apply." }
        let pdf = try ParsedPDF(InvoicePDF.render(document))
        let content = try pdf.streams().map { String(decoding: $0.data, as: UTF8.self) }
        #expect(content.count > 1)
        #expect(content.joined().contains("(Note 120: terms and conditions apply.) Tj"))
    }
}

/// Long names, e-mail addresses, contract references and descriptions wrap
/// in their columns: every word reaches the page (they were cut to the
/// column, "Acme Widgets International…", and a custom line lost its dates).
@Suite struct InvoiceWrappingTests {
    @Test func longPartyLinesFactValuesAndDescriptionsAppearWhole() throws {
        var document = InvoiceDocument.sample
        let name = "Acme Widgets International Holdings (Europe) GmbH & Co. KG"
        let email = "accounts-payable.department@acme-widgets-international.example.com"
        let reference = "MSA-2026-ACME-WIDGETS-INTL-ENTERPRISE-0042"
        let description = String(repeating: "Quarterly business reviews and dedicated support ", count: 3)
            + "Dedicated, 2027-03-11 to 2027-04-10"
        document.customer = .init(name: name, lines: [email])
        document.facts.append(.init("Contract", reference))
        document.lines.append(.init(description: description, quantity: "1", unitPrice: "$123,456,789,012.123456",
                                    amount: "$123,456,789,012.123456"))
        let pdf = try ParsedPDF(InvoicePDF.render(document))
        let runs = try pdf.streams().flatMap { TextRun.all(in: $0.data) }
        let text = runs.map { String(decoding: $0.text, as: UTF8.self) }.joined(separator: " ")
        // Wrapped words and words broken inside (an address) read back joined.
        let squeezed = text.replacingOccurrences(of: " ", with: "")
        for whole in [name, email, reference, description] {
            #expect(squeezed.contains(whole.replacingOccurrences(of: " ", with: "")), "\(whole) not whole in: \(text)")
        }
        #expect(!runs.contains { $0.text.contains(WinAnsi.ellipsis) }, "something was cut: \(text)")
        // The unit price is as whole as the amount.
        #expect(runs.filter { $0.text == Array("$123,456,789,012.123456".utf8) }.count == 2)
    }

    /// The longest a customer's display name (1,024 bytes), e-mail (320)
    /// and contract reference (200) can be at the API print whole: the
    /// customer across the page under the party row, the reference down
    /// the facts column (session 31: past 4 lines they ended in "…").
    @Test func theLongestCustomerTheAPITakesPrintsWhole() throws {
        var document = InvoiceDocument.withLines(40)
        let name = String((String(repeating: "Worldwide Widgets ", count: 57)).prefix(1_024))
        let email = String(repeating: "W", count: 300) + "@acme.example"
        let reference = String(repeating: "W", count: 200)
        document.customer = .init(name: name, lines: ["acme-account-id", email])
        document.facts.append(.init("Paid", "2026-04-01"))
        document.facts.append(.init("Contract", reference))
        #expect(!InvoiceLayout.columnLines(of: document.customer).fits)
        let pdf = try ParsedPDF(InvoicePDF.render(document))
        let runs = try pdf.streams().flatMap { TextRun.all(in: $0.data) }
        let text = runs.map { String(decoding: $0.text, as: UTF8.self) }.joined(separator: " ")
        let squeezed = text.replacingOccurrences(of: " ", with: "")
        for whole in [name, email, reference, "acme-account-id", "BILL TO", "FROM", "Line item 040"] {
            #expect(squeezed.contains(whole.replacingOccurrences(of: " ", with: "")), "\(whole.prefix(40))… not whole")
        }
        #expect(!runs.contains { $0.text.contains(WinAnsi.ellipsis) }, "something was cut")
        let margin = InvoiceLayout.Margin.self
        for content in try pdf.streams() {
            let runs = TextRun.all(in: content.data)
            for (index, run) in runs.enumerated() {
                let text = String(decoding: run.text, as: UTF8.self).prefix(30)
                #expect(run.x >= margin.left - 0.01 && run.x + run.width <= margin.right + 0.01, "\(text)")
                #expect(run.y >= margin.footerBaseline - 0.01 && run.y + 0.72 * run.size <= margin.top + 0.01, "\(text)")
                for other in runs[(index + 1)...] where run.overlaps(other) {
                    Issue.record("'\(text)' overlaps '\(String(decoding: other.text, as: UTF8.self).prefix(30))'")
                }
            }
        }
        // A customer that fits keeps its column beside the seller.
        #expect(InvoiceLayout.columnLines(of: InvoiceDocument.sample.customer).fits)
    }

    /// However long the customer (up to the API's limits), nothing but the
    /// footer goes below the bottom margin, and the table's header never
    /// ends a page without a row under it (session 31, a review: a customer
    /// printed across the page left the header alone at page 1's foot in
    /// 750 of 12,496 cases, inside the margin in 30).
    /// (No line items — the library allows it, the service never issues
    /// one: the header keeps the totals under it.) The contract reference
    /// prints whole beside a renewal's dates (a review: cut at 20 lines).
    @Test(arguments: [(false, 5), (true, 5), (true, 0)])
    func theTableHeaderKeepsItsFirstRowWhateverTheCustomersLength(contract: Bool, lines: Int) throws {
        let margin = InvoiceLayout.Margin.self
        for length in stride(from: 0, through: 1_024, by: 12) {
            var document = InvoiceDocument.withLines(max(lines, 1))
            if lines == 0 { document.lines = [] }
            document.customer = .init(name: String(String(repeating: "Worldwide Widgets ", count: 57).prefix(length)),
                                      lines: ["acme", String(repeating: "w", count: 300) + "@acme.example"])
            document.facts = [.init("Invoice number", "INV-000042"), .init("Issued", "2026-04-01"), .init("Due", "2026-04-01"),
                              .init("Period closed", "2026-03-01 to 2026-04-01"), .init("Paid", "2026-04-01")]
            if contract { document.facts.append(.init("Contract", String(repeating: "W", count: 200))) }
            let pdf = try ParsedPDF(InvoicePDF.render(document))
            for (page, content) in try pdf.streams().enumerated() {
                let runs = TextRun.all(in: content.data).filter { abs($0.y - margin.footerBaseline) > 0.01 }
                for run in runs {
                    #expect(run.y >= margin.bottom - 0.01, "name of \(length) bytes, page \(page + 1): \(String(decoding: run.text, as: UTF8.self).prefix(30)) at \(run.y)")
                }
                if let header = runs.first(where: { $0.text == Array("DESCRIPTION".utf8) }) {
                    let under = lines == 0 ? "Subtotal" : "Line item"
                    #expect(runs.contains { $0.y < header.y - 1 && $0.text.starts(with: Array(under.utf8)) },
                            "name of \(length) bytes: page \(page + 1) ends with the table's header alone")
                }
                #expect(!runs.contains { $0.text.contains(WinAnsi.ellipsis) }, "name of \(length) bytes: something was cut")
            }
        }
    }

    /// A customer that fits is drawn in its column between the seller's and
    /// the facts, in that order in the page's content (as before session 31:
    /// the same document, the same bytes).
    @Test func thePartyRowIsDrawnFromLeftToRight() throws {
        let pdf = try ParsedPDF(InvoicePDF.render(.sample))
        let labels = TextRun.all(in: try #require(try pdf.streams().first).data).map { String(decoding: $0.text, as: UTF8.self) }
            .filter { ["FROM", "BILL TO", "DETAILS"].contains($0) }
        #expect(labels == ["FROM", "BILL TO", "DETAILS"])
    }
}
