import BillingCore
public import Foundation
import Synchronization

/// A fixed-size filter over every debit key ever journaled (a split-block
/// Bloom filter: one 64-byte block per key, one bit in each of its eight
/// words). "Absent" is certain, so a new key — the common case — needs no
/// SQLite read; "maybe" sends the lookup to the store, which answers exactly.
///
/// Its memory never grows: as keys accumulate past its sizing, false
/// "maybe"s (extra reads) become more frequent, answers never wrong. Sized
/// at 16 MiB by default: about 0.3 % false positives at 10 million keys.
/// Each checkpoint carries a copy; start-up loads the newest one's and adds
/// the replayed journal's keys (or, without a copy of the right size, reads
/// every key hash from the store's index).
///
/// Readers (request handlers) and the one writer (the ledger actor) touch
/// words with relaxed atomics: a key's bits are set before anybody can be
/// told it exists, and every reader whose answer matters learns of the key
/// through the cache or the store, which synchronise on their own.
public final class KeyFilter: Sendable {
    /// Only ever accessed through the atomics it holds.
    nonisolated(unsafe) private let words: UnsafeMutablePointer<Atomic<UInt64>>
    private let blockBits: Int
    private let inserted = Atomic<Int>(0)

    /// - Parameter bytes: the filter's size, rounded down to a power of two (at least 64).
    public init(bytes: Int) {
        var bits = 0
        while (64 << (bits + 1)) <= bytes && bits < 40 { bits += 1 }
        blockBits = bits
        let count = 8 << bits
        words = .allocate(capacity: count)
        for index in 0..<count { (words + index).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: 8 << blockBits)
        words.deallocate()
    }

    /// The filter's size in bytes.
    public var bytes: Int { 64 << blockBits }
    /// Keys inserted since start-up (with repeats).
    public var insertions: Int { inserted.load(ordering: .relaxed) }

    public func insert(_ hash: Int64) {
        let (base, bits) = position(hash)
        for word in 0..<8 {
            let bit: UInt64 = 1 << ((bits >> (6 * UInt64(word))) & 63)
            if words[base + word].load(ordering: .relaxed) & bit == 0 {
                words[base + word].bitwiseOr(bit, ordering: .relaxed)
            }
        }
        inserted.wrappingAdd(1, ordering: .relaxed)
    }

    /// The filter's words, little-endian, for a checkpoint. A copy taken
    /// while keys are inserted holds every key inserted before it began.
    public func contents() -> Data {
        let count = 8 << blockBits
        var bytes = Data(count: count * 8)
        bytes.withUnsafeMutableBytes { raw in
            for index in 0..<count {
                raw.storeBytes(of: words[index].load(ordering: .relaxed).littleEndian, toByteOffset: index * 8, as: UInt64.self)
            }
        }
        return bytes
    }

    /// ORs in `contents()` of a filter of the same size; false (nothing
    /// changed) when the size differs (`--key-filter-mib` changed) or it is empty.
    public func load(_ bytes: Data) -> Bool {
        let count = 8 << blockBits
        guard bytes.count == count * 8 else { return false }
        bytes.withUnsafeBytes { raw in
            for index in 0..<count {
                let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
                if word != 0 { words[index].bitwiseOr(word, ordering: .relaxed) }
            }
        }
        return true
    }

    /// False: the key was never inserted. True: it may have been.
    public func mightContain(_ hash: Int64) -> Bool {
        let (base, bits) = position(hash)
        for word in 0..<8 {
            let bit: UInt64 = 1 << ((bits >> (6 * UInt64(word))) & 63)
            if words[base + word].load(ordering: .relaxed) & bit == 0 { return false }
        }
        return true
    }

    /// The block's first word (from the hash's top bits) and the bits to
    /// set in it (six per word, from a remix of the hash).
    private func position(_ hash: Int64) -> (base: Int, bits: UInt64) {
        let value = UInt64(bitPattern: hash)
        let block = blockBits == 0 ? 0 : Int(value >> UInt64(64 - blockBits))
        return (block * 8, SplitMix64.mix(value ^ 0x9E37_79B9_7F4A_7C15))
    }
}
