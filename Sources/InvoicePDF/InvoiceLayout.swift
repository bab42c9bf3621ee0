/// Lays an invoice out on Letter pages. A cursor moves down the page; a block
/// that would reach into the footer starts a new page instead. Coordinates are
/// points from the bottom-left corner, as PDF draws them.
struct InvoiceLayout {
    /// Page geometry: 0.75 in margins, footer in the bottom margin.
    enum Margin {
        static let left = 54.0
        static let right = PDFFile.pageSize.width - 54
        static let top = PDFFile.pageSize.height - 54
        /// Nothing but the footer goes below this.
        static let bottom = 64.0
        static let footerBaseline = 36.0
    }

    let document: InvoiceDocument
    let columns: TableColumns
    private(set) var pages: [ContentStream] = [ContentStream()]
    /// The top of the free space on the current page.
    var cursor = Margin.top

    /// The content streams of `document`'s pages, first page first.
    static func pages(for document: InvoiceDocument) -> [[UInt8]] {
        var layout = InvoiceLayout(document: document, columns: TableColumns(for: document.lines))
        layout.drawHeading()
        layout.drawParties()
        layout.drawTableStart()
        for line in document.lines {
            layout.drawRow(line)
        }
        layout.drawTotals()
        layout.drawNotes()
        layout.drawFooters()
        return layout.pages.map(\.bytes)
    }

    /// Draws on the current page.
    mutating func draw(_ body: (inout ContentStream) -> Void) {
        body(&pages[pages.count - 1])
    }

    /// Whether a block `height` tall fits between the cursor and the footer.
    func fits(_ height: Double) -> Bool {
        cursor - height >= Margin.bottom
    }

    /// Continues on a fresh page under a one-line reminder of whose invoice it is.
    mutating func startPage(withTableHeader tableHeader: Bool) {
        pages.append(ContentStream())
        cursor = Margin.top
        let style = Style.continuation
        let heading = style.font.truncated(WinAnsi.encode("\(document.title) \(document.number)"),
                                           toWidth: Margin.right - Margin.left, size: style.size)
        let baseline = cursor - 10
        draw { $0.text(heading, x: Margin.left, y: baseline, style) }
        cursor -= 34
        if tableHeader { drawTableHeader() }
    }

    /// "INV-000042" on the left and "Page n of m" on the right of every page.
    private mutating func drawFooters() {
        let style = Style.footer
        let number = style.font.truncated(WinAnsi.encode(document.number), toWidth: 300, size: style.size)
        for index in pages.indices {
            pages[index].text(number, x: Margin.left, y: Margin.footerBaseline, style)
            pages[index].text(WinAnsi.encode("Page \(index + 1) of \(pages.count)"),
                              right: Margin.right, y: Margin.footerBaseline, style)
        }
    }
}
