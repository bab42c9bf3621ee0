/// The object graph of a document of Letter pages drawn with the two Helvetica fonts.
extension PDFFile {
    /// US Letter, 8.5 × 11 in, in points.
    static let pageSize = (width: 612.0, height: 792.0)

    /// A complete file whose pages show `pages` (content streams, first page first).
    static func document(pages: [[UInt8]], title: String) -> [UInt8] {
        precondition(!pages.isEmpty, "a PDF needs at least one page")
        // Numbering: 1 catalog, 2 page tree, then the fonts, the information
        // dictionary, and each page followed by its content stream.
        let catalog = 1, pageTree = 2
        let fonts = Font.allCases.enumerated().map { (font: $1, object: 3 + $0) }
        let info = 3 + fonts.count
        func pageObject(_ index: Int) -> Int { info + 1 + 2 * index }

        var file = PDFFile()
        file.add(catalog, "<< /Type /Catalog /Pages \(pageTree) 0 R >>")
        let kids = pages.indices.map { "\(pageObject($0)) 0 R" }.joined(separator: " ")
        file.add(pageTree, "<< /Type /Pages /Kids [\(kids)] /Count \(pages.count) >>")
        for (font, object) in fonts {
            file.add(object, "<< /Type /Font /Subtype /Type1 /BaseFont /\(font.baseFont) /Encoding /WinAnsiEncoding >>")
        }
        file.add(info, "<< /Title \(PDFSyntax.textString(title)) /Producer (InvoicePDF) >>")
        let fontResources = fonts.map { "/\($0.font.resourceName) \($0.object) 0 R" }.joined(separator: " ")
        let mediaBox = "[0 0 \(PDFSyntax.number(pageSize.width)) \(PDFSyntax.number(pageSize.height))]"
        for (index, content) in pages.enumerated() {
            file.add(
                pageObject(index),
                "<< /Type /Page /Parent \(pageTree) 0 R /MediaBox \(mediaBox) "
                    + "/Resources << /ProcSet [/PDF /Text] /Font << \(fontResources) >> >> "
                    + "/Contents \(pageObject(index) + 1) 0 R >>")
            file.addStream(pageObject(index) + 1, content)
        }
        return file.finish(root: catalog, info: info)
    }
}
