import BillingService
import InvoicePDF
import Testing

/// `billing serve --seller`: the seller printed on invoice PDFs (it was a
/// placeholder no option could change, session 27).
@Suite struct SellerFileTests {
    @Test func aSellerFileIsReadWhole() throws {
        let party = try PaymentsService.seller(json: Array("""
            {"comment": "ours", "name": "Example Co", "lines": ["1 Main St", "billing@example.com"]}
            """.utf8))
        #expect(party == InvoiceDocument.Party(name: "Example Co", lines: ["1 Main St", "billing@example.com"]))
    }

    @Test(arguments: [
        ("[]", "not a JSON object"),
        (#"{"name": "A", "line": ["x"]}"#, "unknown key \"line\""),
        (#"{"lines": ["x"]}"#, "name must be"),
        (#"{"name": ""}"#, "name must be"),
        (#"{"name": "A\u0007"}"#, "name must be"),
        (#"{"name": "A", "lines": "x"}"#, "lines must be"),
        (#"{"name": "A", "lines": ["1","2","3","4","5","6","7","8","9"]}"#, "lines must be"),
        (#"{"name": "A", "lines": ["x\ny"]}"#, "lines must be"),
        (#"{"name": "   "}"#, "not blank"),
        (#"{"name": "東京 Example"}"#, "U+6771 is not in the invoice font"),
        (#"{"name": "A \u0301B"}"#, "U+20 U+301 is not in the invoice font"),
        (#"{"name": "A\u202EB"}"#, "U+202E is not in the invoice font"),
        (#"{"name": "A", "lines": ["Example Street Example Street Example Street Example Street Example Street Example Street Example Street Example Street Example Street Example Street Example Street Example Street"]}"#, "wraps to"),
        (#"{"name": "A", "lines": ["Example Street Example Street Example Street Example Street", "Example Street Example Street Example Street Example Street", "Example Street Example Street Example Street Example Street", "Example Street Example Street Example Street Example Street", "Example Street Example Street Example Street Example Street", "Example Street Example Street Example Street Example Street", "Example Street Example Street Example Street Example Street", "Example Street Example Street Example Street Example Street"]}"#, "lines; 12 print"),
    ])
    func aBadSellerFileIsRefusedWithTheReason(json: String, reason: String) {
        #expect {
            _ = try PaymentsService.seller(json: Array(json.utf8))
        } throws: { error in
            "\(error)".contains(reason)
        }
    }
}
