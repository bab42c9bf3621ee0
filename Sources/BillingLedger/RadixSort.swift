/// Sorting of 64-bit hashes for checkpoints: a checkpoint lists every run
/// counted in each account's period in ascending order (equal states encode
/// equally), and at 10 million debits that is millions of hashes sorted per
/// checkpoint. Uniformly random keys defeat a comparison sort's branch
/// prediction; eight counting passes over one byte each do not care.
enum RadixSort {
    /// `values` in ascending order; the same result as `values.sorted()`.
    static func sorted(_ values: some Collection<Int64>) -> [Int64] {
        // Small sets: a comparison sort is cheaper than eight passes of 256 buckets.
        guard values.count >= 256 else { return values.sorted() }
        // Flipping the sign bit orders Int64 as UInt64 does bit patterns.
        var keys = values.map { UInt64(bitPattern: $0) ^ (1 << 63) }
        var scratch = [UInt64](repeating: 0, count: keys.count)
        keys.withUnsafeMutableBufferPointer { keys in
            scratch.withUnsafeMutableBufferPointer { scratch in
                var source = keys
                var target = scratch
                var counts = [Int](repeating: 0, count: 256)
                for shift in stride(from: UInt64(0), to: 64, by: 8) {
                    for index in counts.indices { counts[index] = 0 }
                    for key in source { counts[Int((key >> shift) & 0xFF)] += 1 }
                    // Every key shares this byte: the pass would move nothing.
                    if counts.contains(source.count) { continue }
                    var offset = 0
                    for index in counts.indices {
                        let count = counts[index]
                        counts[index] = offset
                        offset += count
                    }
                    for key in source {
                        let bucket = Int((key >> shift) & 0xFF)
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
        return keys.map { Int64(bitPattern: $0 ^ (1 << 63)) }
    }

    /// Index rows in `(hash, seq)` order; the same result as `rows.sorted()`.
    /// LSD over the seq's bytes, then the hash's (a stable counting pass per
    /// byte; a pass skipped when every row shares its byte: most of a seq's).
    static func sorted(_ rows: [JournalIndexRows.Row]) -> [JournalIndexRows.Row] {
        guard rows.count >= 256 else { return rows.sorted() }
        // Sign bits flipped: Int64 order as unsigned bit patterns.
        var keys = rows.map { (UInt64(bitPattern: $0.hash) ^ (1 << 63), UInt64(bitPattern: $0.seq) ^ (1 << 63)) }
        var scratch = keys
        keys.withUnsafeMutableBufferPointer { keys in
            scratch.withUnsafeMutableBufferPointer { scratch in
                var source = keys
                var target = scratch
                var counts = [Int](repeating: 0, count: 256)
                for (word, shift) in (0..<2).flatMap({ word in stride(from: UInt64(0), to: 64, by: 8).map { (word, $0) } }) {
                    @inline(__always) func digit(_ key: (UInt64, UInt64)) -> Int {
                        Int(((word == 0 ? key.1 : key.0) >> shift) & 0xFF)
                    }
                    for index in counts.indices { counts[index] = 0 }
                    for key in source { counts[digit(key)] += 1 }
                    if counts.contains(source.count) { continue }
                    var offset = 0
                    for index in counts.indices {
                        let count = counts[index]
                        counts[index] = offset
                        offset += count
                    }
                    for key in source {
                        let bucket = digit(key)
                        target[counts[bucket]] = key
                        counts[bucket] += 1
                    }
                    swap(&source, &target)
                }
                if source.baseAddress != keys.baseAddress {
                    keys.baseAddress!.update(from: source.baseAddress!, count: source.count)
                }
            }
        }
        return keys.map { .init(hash: Int64(bitPattern: $0.0 ^ (1 << 63)), seq: Int64(bitPattern: $0.1 ^ (1 << 63))) }
    }
}
