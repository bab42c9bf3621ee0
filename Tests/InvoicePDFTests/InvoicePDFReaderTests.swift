import Foundation
import Testing
import InvoicePDF

/// Rendered invoices opened by a real reader (poppler): the text comes back out,
/// the first page rasterises, the page count agrees. Poppler reports damage it
/// repairs on standard error while still succeeding, so that must stay empty.
@Suite struct InvoicePDFReaderTests {
    @Test func textExtractsWithNumberStatusDescriptionsAndTotal() throws {
        let document = InvoiceDocument.sample
        let text = try withScratchDirectory { directory in
            let file = try write(document, in: directory)
            let result = try Poppler.run("pdftotext", ["-layout", file.path, "-"], in: directory)
            expectClean(result, "pdftotext")
            return result.output
        }
        #expect(text.contains(document.number))
        #expect(text.contains(document.status))
        for line in document.lines {
            #expect(text.contains(line.description), "missing line \(line.description)")
            #expect(text.contains(line.amount))
        }
        #expect(text.contains("Crème brûlée (large) \\ tier – “café” €"), "non-ASCII survives the round trip")
        let total = try #require(document.totals.last)
        #expect(text.contains(total.label) && text.contains(total.value))
        #expect(text.contains("Page 1 of 1"))
    }

    /// Balanced parentheses are legal unescaped, so only unbalanced ones and
    /// backslashes show whether escaping works.
    @Test func unbalancedParenthesesAndBackslashesRoundTrip() throws {
        var document = InvoiceDocument.sample
        document.lines[0].description = #"Fee :-) \ C:\path\ ( ((x"#
        let text = try withScratchDirectory { directory in
            let file = try write(document, in: directory)
            let result = try Poppler.run("pdftotext", ["-layout", file.path, "-"], in: directory)
            expectClean(result, "pdftotext")
            return result.output
        }
        #expect(text.contains(document.lines[0].description))
        #expect(text.contains(document.lines[1].description))
    }

    @Test func firstPageRasterises() throws {
        try withScratchDirectory { directory in
            let file = try write(.withLines(60), in: directory)
            let result = try Poppler.run("pdftoppm", ["-png", "-r", "50", "-f", "1", "-l", "1", file.path, "page"],
                                         in: directory)
            expectClean(result, "pdftoppm")
            // pdftoppm pads the page number to the width of the page count.
            let images = try FileManager.default.contentsOfDirectory(atPath: directory.path)
                .filter { $0.hasPrefix("page-") && $0.hasSuffix(".png") }
            #expect(images.count == 1, "one PNG for page 1, found \(images)")
            let png = try Data(contentsOf: directory.appendingPathComponent(try #require(images.first)))
            #expect(png.count > 1000)
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "PNG signature")
        }
    }

    @Test(arguments: [4, 300])
    func pageCountAgreesAndEveryLineIsOnSomePage(lines: Int) throws {
        let document = InvoiceDocument.withLines(lines)
        let expectedPages = try ParsedPDF(InvoicePDF.render(document)).pageObjects.count
        let (info, text) = try withScratchDirectory { directory in
            let file = try write(document, in: directory)
            let info = try Poppler.run("pdfinfo", [file.path], in: directory)
            expectClean(info, "pdfinfo")
            let text = try Poppler.run("pdftotext", ["-layout", file.path, "-"], in: directory)
            expectClean(text, "pdftotext")
            return (info.output, text.output)
        }
        #expect(field("Pages", in: info) == "\(expectedPages)", "pdfinfo says:\n\(info)")
        #expect(field("PDF version", in: info) == "1.4")
        #expect(lines < 300 || expectedPages > 1)
        for line in document.lines {
            #expect(text.contains(line.description), "missing line \(line.description)")
        }
        #expect(text.contains("Page \(expectedPages) of \(expectedPages)"))
    }

    private func write(_ document: InvoiceDocument, in directory: URL) throws -> URL {
        let file = directory.appendingPathComponent("invoice.pdf")
        try Data(InvoicePDF.render(document)).write(to: file)
        return file
    }

    /// The value of `name` in pdfinfo's "Name:   value" lines.
    private func field(_ name: String, in info: String) -> String? {
        info.split(separator: "\n")
            .first { $0.hasPrefix("\(name):") }
            .map { $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces) }
    }

    private func expectClean(_ result: Poppler.Result, _ tool: String) {
        #expect(result.status == 0, "\(tool) exited \(result.status): \(result.errors)")
        #expect(result.errors.isEmpty, "\(tool) complained: \(result.errors)")
    }
}
