import GRPC
@testable import BillingService
import Testing

/// ListCharges and ListInvoices pages: newest first, every item once, even
/// when items are added between pages (an offset token repeated one).
@Suite struct PageTests {
    static func walk(_ list: inout [Int], size: Int32, addingAfterPage add: Int = 0) throws -> [Int] {
        var seen: [Int] = []
        var token = ""
        for pageNumber in 0..<1_000 {
            let (items, next) = try Page(size: size, token: token).slice(list)
            seen += items
            if pageNumber == 0 { for _ in 0..<add { list.append(list.count) } }  // newer items arrive
            guard !next.isEmpty else { return seen }
            token = next
        }
        Issue.record("never ended")
        return seen
    }

    @Test func everyItemOnceNewestFirstThoughItemsArriveBetweenPages() throws {
        for count in [0, 1, 2, 5, 50, 51, 101] {
            for size: Int32 in [1, 2, 7, 50] {
                var list = Array(0..<count)
                #expect(try Self.walk(&list, size: size) == Array((0..<count).reversed()), "\(count) by \(size)")
                list = Array(0..<count)
                #expect(try Self.walk(&list, size: size, addingAfterPage: 3) == Array((0..<count).reversed()),
                        "\(count) by \(size), three added after the first page")
            }
        }
    }

    @Test func tokensAreCheckedAndAnOffsetTokenStillReads() throws {
        for bad in ["x", "b", "b0", "b-1", "-3", "0", "b99999999999999", "1e3", "b+4", "+3", "b 4"] {
            #expect(throws: GRPCStatus.self, "\(bad)") { try Page(size: 2, token: bad) }
        }
        #expect(try Page(size: 2, token: "b4").slice(Array(0..<10)) == ([3, 2], "b2"))
        // A position past the list's end was never issued for it.
        #expect(throws: GRPCStatus.self) { try Page(size: 2, token: "b11").slice(Array(0..<10)) }
        #expect(try Page(size: 2, token: "b10").slice(Array(0..<10)) == ([9, 8], "b8"))
        #expect(try Page(size: 2, token: "3").slice(Array(0..<10)) == ([6, 5], "b5"))  // (before session 19)
        #expect(try Page(size: 2, token: "10").slice(Array(0..<10)) == ([], ""))
        #expect(throws: GRPCStatus.self) { try Page(size: 2, token: "11").slice(Array(0..<10)) }
        #expect(try Page(size: 0, token: "").size == PaymentsService.defaultPageSize)
        #expect(try Page(size: 10_000, token: "").size == PaymentsService.maxPageSize)
    }
}
