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
}
