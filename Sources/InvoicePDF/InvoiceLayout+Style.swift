/// The invoice's type scale and palette: near-black ink, two greys, and one
/// colour per status for the badge.
extension InvoiceLayout {
    enum Style {
        static let ink = Color(gray: 0.12)
        static let muted = Color(gray: 0.38)
        static let faint = Color(gray: 0.55)
        static let hairline = Color(gray: 0.86)

        static let title = TextStyle(font: .helveticaBold, size: 24, color: ink)
        static let number = TextStyle(font: .helvetica, size: 11, color: muted)
        static let continuation = TextStyle(font: .helveticaBold, size: 11, color: ink)
        /// Small headings: "FROM", "BILL TO", the table's column names.
        static let label = TextStyle(font: .helveticaBold, size: 7.5, color: faint)
        static let partyName = TextStyle(font: .helveticaBold, size: 10, color: ink)
        static let body = TextStyle(font: .helvetica, size: 9.5, color: ink)
        static let secondary = TextStyle(font: .helvetica, size: 9.5, color: muted)
        static let total = TextStyle(font: .helvetica, size: 10, color: ink)
        static let totalLabel = TextStyle(font: .helvetica, size: 10, color: muted)
        static let grandTotal = TextStyle(font: .helveticaBold, size: 11.5, color: ink)
        static let note = TextStyle(font: .helvetica, size: 8.5, color: muted)
        static let footer = TextStyle(font: .helvetica, size: 8, color: faint)

        /// Text and background colours of the status badge. Statuses arrive as
        /// display text, so the colour is chosen by the words we know.
        static func badge(for status: String) -> (text: Color, background: Color) {
            switch status.uppercased() {
            case "PAID":
                (Color(0.07, 0.45, 0.23), Color(0.86, 0.95, 0.89))
            case "PAST DUE", "OVERDUE", "UNCOLLECTIBLE":
                (Color(0.70, 0.11, 0.11), Color(0.99, 0.89, 0.89))
            case "VOID", "DRAFT":
                (Color(gray: 0.35), Color(gray: 0.91))
            default:
                (Color(0.12, 0.32, 0.70), Color(0.88, 0.92, 0.99))
            }
        }
    }
}
