/// Sorting of 64-bit hashes for checkpoints: a checkpoint lists every run
/// counted in each account's period in ascending order (equal states encode
/// equally), and at 10 million debits that is millions of hashes sorted per
/// checkpoint; its index rows go to SQLite in (hash, seq) order. Uniformly
/// random keys defeat a comparison sort's branch prediction; counting
/// passes over one byte each do not care.
enum RadixSort {
    /// `values` in ascending order; the same result as `values.sorted()`.
    static func sorted(_ values: some Collection<Int64>) -> [Int64] {
        // Small sets: a comparison sort is cheaper than eight passes of 256 buckets.
        guard values.count >= 256 else { return values.sorted() }
        // Flipping the sign bit orders Int64 as UInt64 does bit patterns.
        var keys = values.map { UInt64(bitPattern: $0) ^ (1 << 63) }
        lsd(&keys, passes: 8) { key, pass in key >> (8 * pass) }
        return keys.map { Int64(bitPattern: $0 ^ (1 << 63)) }
    }

    /// Index rows in `(hash, seq)` order; the same result as `rows.sorted()`:
    /// the seq's bytes first, then the hash's (most of a seq's bytes are
    /// shared, and those passes are skipped).
    static func sorted(_ rows: [JournalIndexRows.Row]) -> [JournalIndexRows.Row] {
        guard rows.count >= 256 else { return rows.sorted() }
        var keys = rows.map { (hash: UInt64(bitPattern: $0.hash) ^ (1 << 63), seq: UInt64(bitPattern: $0.seq) ^ (1 << 63)) }
        lsd(&keys, passes: 16) { key, pass in pass < 8 ? key.seq >> (8 * pass) : key.hash >> (8 * (pass - 8)) }
        return keys.map { .init(hash: Int64(bitPattern: $0.hash ^ (1 << 63)), seq: Int64(bitPattern: $0.seq ^ (1 << 63))) }
    }

    /// Least-significant-digit radix sort: `passes` stable counting passes,
    /// pass `p` on the low byte of `digit(key, p)`; a pass is skipped when
    /// every key shares its byte (it would move nothing).
    @inline(__always)
    private static func lsd<Key>(_ keys: inout [Key], passes: Int, digit: (Key, Int) -> UInt64) {
        var scratch = keys
        keys.withUnsafeMutableBufferPointer { keys in
            scratch.withUnsafeMutableBufferPointer { scratch in
                var source = keys
                var target = scratch
                var counts = [Int](repeating: 0, count: 256)
                for pass in 0..<passes {
                    for index in counts.indices { counts[index] = 0 }
                    for key in source { counts[Int(digit(key, pass) & 0xFF)] += 1 }
                    if counts.contains(source.count) { continue }
                    var offset = 0
                    for index in counts.indices {
                        let count = counts[index]
                        counts[index] = offset
                        offset += count
                    }
                    for key in source {
                        let bucket = Int(digit(key, pass) & 0xFF)
                        target[counts[bucket]] = key
                        counts[bucket] += 1
                    }
                    swap(&source, &target)
                }
                // An odd number of passes left the keys in the scratch buffer.
                if source.baseAddress != keys.baseAddress {
                    keys.baseAddress!.update(from: source.baseAddress!, count: source.count)
                }
            }
        }
    }
}
