/// An RGB fill or stroke colour, components in 0...1.
struct Color: Hashable, Sendable {
    var red: Double
    var green: Double
    var blue: Double

    init(_ red: Double, _ green: Double, _ blue: Double) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    init(gray: Double) {
        self.init(gray, gray, gray)
    }
}

/// A font, size and colour for a run of text.
struct TextStyle: Hashable, Sendable {
    var font: Font
    var size: Double
    var color: Color
}

/// The drawing operators of one page (PDF 1.4 §4.4, §5.3), written as text in
/// points from the bottom-left corner. Each call leaves the graphics state as
/// it found it, so calls can come in any order.
struct ContentStream: Sendable {
    private(set) var bytes: [UInt8] = []

    /// `text` with its baseline starting at (`x`, `y`).
    mutating func text(_ text: [UInt8], x: Double, y: Double, _ style: TextStyle) {
        guard !text.isEmpty else { return }
        append("BT /\(style.font.resourceName) \(PDFSyntax.number(style.size)) Tf \(fill(style.color)) ")
        append("\(PDFSyntax.number(x)) \(PDFSyntax.number(y)) Td ")
        bytes += PDFSyntax.literalString(text)
        append(" Tj ET\n")
    }

    /// `text` with its baseline ending at (`right`, `y`).
    mutating func text(_ text: [UInt8], right: Double, y: Double, _ style: TextStyle) {
        self.text(text, x: right - style.font.width(of: text, size: style.size), y: y, style)
    }

    /// A horizontal line from `x0` to `x1` at height `y`.
    mutating func rule(from x0: Double, to x1: Double, y: Double, width: Double, _ color: Color) {
        let c = color
        append("q \(PDFSyntax.number(width)) w \(PDFSyntax.number(c.red)) \(PDFSyntax.number(c.green)) \(PDFSyntax.number(c.blue)) RG ")
        append("\(PDFSyntax.number(x0)) \(PDFSyntax.number(y)) m \(PDFSyntax.number(x1)) \(PDFSyntax.number(y)) l S Q\n")
    }

    /// A filled rectangle with corners of `radius`, drawn with four Bézier arcs.
    mutating func roundedRectangle(x: Double, y: Double, width: Double, height: Double, radius: Double, _ color: Color) {
        let r = min(radius, width / 2, height / 2)
        let k = r * 0.5523  // control-point distance that makes a cubic Bézier approximate a quarter circle
        let (x1, y1) = (x + width, y + height)
        append("q \(fill(color))\n")
        move(x + r, y)
        line(x1 - r, y)
        curve(x1 - r + k, y, x1, y + r - k, x1, y + r)
        line(x1, y1 - r)
        curve(x1, y1 - r + k, x1 - r + k, y1, x1 - r, y1)
        line(x + r, y1)
        curve(x + r - k, y1, x, y1 - r + k, x, y1 - r)
        line(x, y + r)
        curve(x, y + r - k, x + r - k, y, x + r, y)
        append("f Q\n")
    }

    private func fill(_ c: Color) -> String {
        "\(PDFSyntax.number(c.red)) \(PDFSyntax.number(c.green)) \(PDFSyntax.number(c.blue)) rg"
    }

    private mutating func move(_ x: Double, _ y: Double) {
        append("\(PDFSyntax.number(x)) \(PDFSyntax.number(y)) m\n")
    }

    private mutating func line(_ x: Double, _ y: Double) {
        append("\(PDFSyntax.number(x)) \(PDFSyntax.number(y)) l\n")
    }

    private mutating func curve(_ xa: Double, _ ya: Double, _ xb: Double, _ yb: Double, _ x: Double, _ y: Double) {
        let points = [xa, ya, xb, yb, x, y].map(PDFSyntax.number).joined(separator: " ")
        append("\(points) c\n")
    }

    private mutating func append(_ operators: String) {
        bytes += operators.utf8
    }
}
