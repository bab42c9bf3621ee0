import BillingCore
import CLinux
import Glibc
public import Foundation
import Logging
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
        words = Self.allocateWords(count, bytes: 64 << bits)
        for index in 0..<count { (words + index).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: 8 << blockBits)
        // The advice outlives `free`: the allocator would hand the range out
        // again, huge pages and all, for small allocations.
        if bytes >= Self.hugePage { _ = madvise(words, bytes, MADV_NOHUGEPAGE) }
        free(words)
    }

    /// A transparent huge page on x86-64.
    static let hugePage = 2 << 20

    /// Whether the words start on a huge page boundary (tests).
    var wordsAreHugePageAligned: Bool { Int(bitPattern: words) % Self.hugePage == 0 }

    /// Every probe lands on a random block of the whole filter: with 4 KiB
    /// pages a 16 MiB filter has 4,096 of them, far more than the TLB maps,
    /// so most probes paid a page walk on top of the cache miss. The words
    /// are aligned to 2 MiB and marked for transparent huge pages (where the
    /// kernel offers them: `madvise` mode, Debian's default): eight pages.
    private static func allocateWords(_ count: Int, bytes: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        precondition(bytes == count * MemoryLayout<Atomic<UInt64>>.stride)
        var memory: UnsafeMutableRawPointer?
        let alignment = bytes >= hugePage ? hugePage : 64
        guard posix_memalign(&memory, alignment, bytes) == 0, let memory else {
            fatalError("cannot allocate the \(bytes)-byte key filter")
        }
        if bytes >= hugePage { _ = madvise(memory, bytes, MADV_HUGEPAGE) }  // advice: ignored where unsupported
        return memory.bindMemory(to: Atomic<UInt64>.self, capacity: count)
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

    /// The chance that a key never inserted gets "maybe" (a needless
    /// read): the mean over blocks of the product of each word's set-bit
    /// fraction. Grows as keys accumulate; past a few percent the filter is
    /// too small for the journal (`--key-filter-mib`).
    public func falsePositiveRate() -> Double {
        Self.falsePositiveRate(blocks: 1 << blockBits) { words[$0].load(ordering: .relaxed) }
    }

    /// The same for `contents()` of a filter.
    public static func falsePositiveRate(of contents: Data) -> Double {
        guard contents.count >= 64 else { return 0 }
        return contents.withUnsafeBytes { raw in
            falsePositiveRate(blocks: contents.count / 64) {
                UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))
            }
        }
    }

    /// A rate as a percentage with two decimals, for logs.
    public static func percent(_ rate: Double) -> String {
        let hundredths = Int((rate * 10_000).rounded())
        return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)%"
    }

    /// Logs a warning when more than 5 % of new keys would need a read.
    static func warnIfSaturated(_ rate: Double, bytes: Int, logger: Logger) {
        guard rate > 0.05 else { return }
        logger.warning("the key filter is too small for the journal: new idempotency keys often need a SQLite read", metadata: [
            "filter_false_positives": "\(percent(rate))", "key_filter_mib": "\(bytes >> 20)",
            "remedy": "restart with a larger --key-filter-mib (16 MiB suits ~10 million keys; double it per doubling)",
        ])
    }

    private static func falsePositiveRate(blocks: Int, word: (Int) -> UInt64) -> Double {
        var sum = 0.0
        for block in 0..<blocks {
            var product = 1.0
            for index in block * 8..<block * 8 + 8 {
                product *= Double(word(index).nonzeroBitCount) / 64
                if product == 0 { break }
            }
            sum += product
        }
        return sum / Double(blocks)
    }

    /// Starts loading the key's block into the cache, for a `mightContain`
    /// or `insert` soon after: a batch asks for its keys' blocks ahead, so
    /// their cache misses (a random block of 16 MiB each) overlap instead
    /// of stalling one debit after another.
    public func prefetch(_ hash: Int64) {
        billing_prefetch(UnsafeRawPointer(words + position(hash).base))
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
