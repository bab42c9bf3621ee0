import BillingCore
@testable import BillingLedger
import Testing

/// `AccountBook.period(containing:)` answers from the period the book last
/// remembered when it contains the instant, else computes it: either way
/// exactly `BillingPeriod.containing` — across period ends, month lengths
/// (an anchor on the 31st), instants before a remembered period, and an
/// anchor that changes under a remembered period.
@Suite struct PeriodMemoTests {
    static func book(anchor: Int64) -> AccountBook {
        AccountBook(accountID: "acct-memo", lifecycle: .active(plan: .pro, startingAt: anchor, graceSeconds: 0,
                                                                hasPaymentMethod: false))
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func answersAsTheCalendarDoes(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        // 2024-01-31T12:00:00Z: month ends clamp (Feb 29, Apr 30...).
        let anchors: [Int64] = [1_706_702_400, 1_704_067_200, 0]
        for anchor in anchors {
            var book = Self.book(anchor: anchor)
            var now = anchor
            var hits = 0
            for _ in 0..<2_000 {
                // Mostly forward in steps of up to ~3 days, sometimes back.
                let step = Int64(rng.next(below: 260_000))
                now = rng.next(below: 10) == 0 ? max(anchor, now - step * 20) : now + step
                let expected = BillingPeriod.containing(now, anchor: anchor)
                if book.meteringPeriod.period.map({ now >= $0.start && now < $0.end }) == true { hits += 1 }
                #expect(book.period(containing: now) == expected, "anchor \(anchor), now \(now)")
                #expect(book.rememberPeriod(containing: now) == expected, "anchor \(anchor), now \(now)")
                #expect(book.meteringPeriod.period == expected)
            }
            #expect(hits > 1_000, "most instants fall in the remembered period")
        }
    }

    @Test func aNewAnchorIsNotAnsweredFromTheOldOnesPeriod() {
        let anchor: Int64 = 1_706_702_400
        var book = Self.book(anchor: anchor)
        _ = book.rememberPeriod(containing: anchor + 86_400)
        // The period restarts on another day of the month (a plan change).
        let newAnchor = anchor + 10 * 86_400
        book.lifecycle = .active(plan: .pro, startingAt: newAnchor, graceSeconds: 0, hasPaymentMethod: false)
        let now = newAnchor + 86_400
        #expect(book.period(containing: now) == BillingPeriod.containing(now, anchor: newAnchor))
        #expect(book.period(containing: now) != BillingPeriod.containing(now, anchor: anchor))
    }

    @Test func booksEqualWhateverTheyRemember() {
        var remembered = Self.book(anchor: 0)
        _ = remembered.rememberPeriod(containing: 5_000_000)
        #expect(remembered == Self.book(anchor: 0))
    }
}

/// `AccountBook.noteWorkspace` skips the set for the workspace it noted
/// last: the set must still hold every workspace ever noted, whatever the
/// order, and books compare by the set, not by the memo.
@Suite struct WorkspaceMemoTests {
    @Test func everyNotedWorkspaceIsInTheSet() {
        var book = PeriodMemoTests.book(anchor: 0)
        var rng = SplitMix64(seed: 11)
        var expected: Set<String> = []
        for _ in 0..<500 {
            // Runs of one workspace, switching among five (and sometimes none).
            let pick = rng.next(below: 7)
            let id = pick == 6 ? "" : "ws-\(pick % 5)"
            for _ in 0...rng.next(below: 3) {
                book.noteWorkspace(id)
                if !id.isEmpty { expected.insert(id) }
                #expect(book.workspaces == expected)
            }
        }
        #expect(book.workspaces.count == 5)
    }

    @Test func booksEqualWhateverWorkspaceTheyRemember() {
        var a = PeriodMemoTests.book(anchor: 0)
        var b = PeriodMemoTests.book(anchor: 0)
        a.noteWorkspace("ws-1"); a.noteWorkspace("ws-2")
        b.noteWorkspace("ws-2"); b.noteWorkspace("ws-1")
        #expect(a.lastWorkspace.id != b.lastWorkspace.id)
        #expect(a == b)
    }
}
