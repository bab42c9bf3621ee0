/// Renders invoices as PDF 1.4 files: Letter pages, the standard Helvetica fonts
/// (not embedded: every reader has them), uncompressed content streams. No
/// dependencies and no clock: the same document always gives the same bytes.
public enum InvoicePDF {
    /// The document as PDF bytes.
    public static func render(_ document: InvoiceDocument) -> [UInt8] {
        let pages = InvoiceLayout.pages(for: document)
        return PDFFile.document(pages: pages, title: "\(document.title) \(document.number)")
    }
}
