@testable import BillingLedger
import BillingCore
import Testing

/// The checkpoint's sort of run hashes gives exactly `sorted()`.
@Suite struct RadixSortTests {
    @Test(arguments: [0, 1, 2, 255, 256, 257, 1_000, 20_001])
    func equalsTheStandardSort(count: Int) {
        var random = SplitMix64(seed: UInt64(count) &+ 17)
        let hashes = (0..<count).map { _ in Int64(bitPattern: random.next()) }
        #expect(RadixSort.sorted(hashes) == hashes.sorted())
        #expect(RadixSort.sorted(Set(hashes)) == Set(hashes).sorted(), "from a set, as checkpoints call it")
    }

    @Test func extremesDuplicatesAndSharedBytes() {
        var random = SplitMix64(seed: 5)
        // Both ends, zero and its neighbours, repeats; keys equal in their top
        // six bytes (passes skipped) and keys differing only in the top byte.
        let edges: [Int64] = [.min, .min + 1, -1, 0, 1, .max - 1, .max, 0, -1, .max, .min]
        let sharedTop = (0..<600).map { _ in Int64(0x1234_5678_9ABC_0000) | Int64(random.next() & 0xFFFF) }
        let topOnly = (0..<600).map { _ in Int64(bitPattern: (random.next() & 0xFF) << 56) }
        // Passes run, skipped, run: keys differing only in their lowest and
        // highest bytes; three passes (an odd number: the result copied back).
        let ends = (0..<600).map { _ in Int64(bitPattern: (random.next() & 0xFF) << 56 | (random.next() & 0xFF)) }
        let threeBytes = (0..<600).map { _ in Int64(bitPattern: random.next() & 0xFF_FFFF) }
        for values in [edges + sharedTop, sharedTop, topOnly, topOnly + edges, ends, threeBytes,
                       Array(repeating: 42, count: 500)] {
            #expect(RadixSort.sorted(values) == values.sorted())
        }
    }
}

/// Index rows: the same order as `sorted()` — by hash, equal hashes by seq —
/// whatever order they come in.
@Test(arguments: [0, 1, 255, 256, 257, 5_000, 40_001])
func indexRowsSortLikeSorted(count: Int) {
    var rng = SplitMix64(seed: UInt64(count) &+ 99)
    // Few distinct hashes for some rows (runs with many debits, collisions),
    // extreme values, and seqs that are not in order.
    let shared: [Int64] = [.min, -1, 0, 1, .max] + (0..<20).map { _ in Int64(bitPattern: rng.next()) }
    let rows = (0..<count).map { _ -> JournalIndexRows.Row in
        let hash = rng.next() % 3 == 0 ? shared[Int(rng.next() % UInt64(shared.count))] : Int64(bitPattern: rng.next())
        let seq = rng.next() % 4 == 0 ? Int64(bitPattern: rng.next()) : Int64(rng.next() % 1_000_000)
        return JournalIndexRows.Row(hash: hash, seq: seq)
    }
    #expect(RadixSort.sorted(rows) == rows.sorted())
}
