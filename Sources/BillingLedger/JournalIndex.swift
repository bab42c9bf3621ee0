import BillingCore

/// The durable indexes of the journal, by hash: which entry holds an
/// (account, idempotency key)'s outcome, which entries are a run's debits.
///
/// They are written with each checkpoint, for the debits up to its seq, as
/// one generation of rows appended in hash order (SQLite appends them at the
/// end of its b-tree instead of touching a random page per debit). Debits
/// after the newest checkpoint are found in memory (`IdempotencyCache`).
/// A hash is only a pointer: a lookup reads the entries it names and keeps
/// those whose account and key (or run) match, so collisions cost a read,
/// never a wrong answer.
public struct JournalIndexRows: Sendable, Equatable {
    public struct Row: Sendable, Equatable, Comparable {
        public var hash: Int64
        public var seq: Int64

        public init(hash: Int64, seq: Int64) {
            self.hash = hash
            self.seq = seq
        }

        public static func < (a: Row, b: Row) -> Bool { (a.hash, a.seq) < (b.hash, b.seq) }
    }

    /// One per debit entry (accepted or refused): hash of (account, key).
    public var keys: [Row] = []
    /// One per accepted debit: hash of (account, run).
    public var runs: [Row] = []

    public init(keys: [Row] = [], runs: [Row] = []) {
        self.keys = keys
        self.runs = runs
    }

    public mutating func append(contentsOf other: JournalIndexRows) {
        keys.append(contentsOf: other.keys)
        runs.append(contentsOf: other.runs)
    }
}

/// Stable 64-bit hashes of journal keys (FNV-1a over length-prefixed UTF-8,
/// then a SplitMix64 finalizer). Stored in the database, so they must never
/// change; Swift's `Hasher` is seeded per process and cannot be used.
public enum JournalKeyHash {
    /// (account, idempotency key) of a debit.
    public static func debit(account: String, key: String) -> Int64 {
        hash(domain: 0x6B, account, key)
    }

    /// (account, run) of an accepted debit.
    public static func run(account: String, run: String) -> Int64 {
        hash(domain: 0x72, account, run)
    }

    /// FNV-1a over the domain byte, then each text's UTF-8 length (four
    /// bytes, little-endian) and bytes; finished with SplitMix64's mixer.
    /// Stored in the indexes: the value must never change (pinned by tests).
    static func hash(domain: UInt8, _ first: String, _ second: String) -> Int64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        mix(domain, into: &h)
        mix(first, into: &h)
        mix(second, into: &h)
        return Int64(bitPattern: SplitMix64.mix(h))
    }

    @inline(__always) private static func mix(_ byte: UInt8, into h: inout UInt64) {
        h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }

    /// One text, read in place (no per-call array, no per-byte iterator).
    @inline(__always) private static func mix(_ text: String, into h: inout UInt64) {
        var text = text
        text.withUTF8 { utf8 in
            var count = UInt32(utf8.count)
            for _ in 0..<4 {
                mix(UInt8(truncatingIfNeeded: count), into: &h)
                count >>= 8
            }
            for byte in utf8 { mix(byte, into: &h) }
        }
    }
}
