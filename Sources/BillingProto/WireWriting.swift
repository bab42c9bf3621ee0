import Foundation

/// Hand-written writing of the protobuf wire format for the hot encoders
/// (journal debit rows in BillingSQLite; checkpoints and a debit's
/// canonical bytes in BillingLedger; metering responses in BillingService):
/// the little of it they need (proto3: zero, empty and false are not
/// written), written through a pointer into memory of its own: an array's
/// `append` checks uniqueness through a runtime call and capacity per byte,
/// which made encoding a debit's journal row ~8 % of a `DebitBatch` call.
/// Every write makes room first (`reserve`); the bytes leave as one array
/// (`finish`, one copy).
package struct ProtobufWriter: ~Copyable {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    @usableFromInline var count = 0

    package init(capacity: Int = 256) {
        self.capacity = max(capacity, 1)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// The bytes written so far, in place (valid only inside `body`).
    package borrowing func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// The bytes written, as an array (the writer's memory is freed after).
    package consuming func finish() -> [UInt8] {
        [UInt8](UnsafeBufferPointer(start: base, count: count))
    }

    /// Room for `needed` more bytes.
    @inlinable @inline(__always)
    mutating func reserve(_ needed: Int) {
        if capacity - count < needed { grow(needed) }
    }

    @usableFromInline @inline(never)
    mutating func grow(_ needed: Int) {
        let larger = max(capacity * 2, count + needed)
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: larger)
        moved.update(from: base, count: count)
        base.deallocate()
        base = moved
        capacity = larger
    }

    @inlinable @inline(__always)
    package mutating func rawVarint(_ value: UInt64) {
        reserve(10)
        var v = value
        while v >= 0x80 {
            base[count] = UInt8(truncatingIfNeeded: v) | 0x80
            count += 1
            v >>= 7
        }
        base[count] = UInt8(v)
        count += 1
    }

    @inlinable @inline(__always)
    package mutating func varint(field: Int, _ value: UInt64) {
        rawVarint(UInt64(field) << 3)
        rawVarint(value)
    }

    /// int64 and enums: negative values take ten bytes (two's complement).
    @inlinable @inline(__always)
    package mutating func int64(_ field: Int, _ value: Int64) {
        if value != 0 { varint(field: field, UInt64(bitPattern: value)) }
    }

    /// Bytes as they are, no tag or length (a part encoded elsewhere).
    @inlinable
    package mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        (base + count).update(from: source.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        count += bytes.count
    }

    @inlinable
    package mutating func raw(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw($0) }
    }

    /// A native string's bytes are read in place; a bridged one is copied
    /// first. `always`: written even when empty (an element of a repeated field).
    @inlinable
    package mutating func string(_ field: Int, _ value: String, always: Bool = false) {
        guard always || !value.isEmpty else { return }
        let written: Void? = value.utf8.withContiguousStorageIfAvailable { utf8 in
            rawVarint(UInt64(field) << 3 | 2)
            rawVarint(UInt64(utf8.count))
            raw(UnsafeRawBufferPointer(utf8))
        }
        if written == nil { bytes(field, Array(value.utf8), always: always) }
    }

    /// `always`: written even when empty (a submessage that is set, an
    /// element of a repeated field).
    @inlinable
    package mutating func bytes(_ field: Int, _ value: [UInt8], always: Bool = false) {
        guard always || !value.isEmpty else { return }
        rawVarint(UInt64(field) << 3 | 2)
        rawVarint(UInt64(value.count))
        raw(value)
    }

    /// `Data` copied as one block (appending it as a collection goes
    /// through `Data`'s generic iteration: ~1 % of a debit's CPU).
    @inlinable
    package mutating func bytes(_ field: Int, _ value: Data) {
        guard !value.isEmpty else { return }
        rawVarint(UInt64(field) << 3 | 2)
        rawVarint(UInt64(value.count))
        value.withUnsafeBytes { raw($0) }
    }

    /// A little-endian 64-bit value with no tag (packed fixed64 elements).
    @inlinable
    package mutating func fixed64(_ value: Int64) {
        reserve(8)
        withUnsafeBytes(of: value.littleEndian) { (base + count).update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 8) }
        count += 8
    }

    /// A length-delimited submessage written in place: one byte is kept for
    /// its length and widened afterwards if the body needs more (the body
    /// moves up by the extra varint bytes).
    @inlinable
    package mutating func message(_ field: Int, _ body: (inout ProtobufWriter) throws -> Void) rethrows {
        rawVarint(UInt64(field) << 3 | 2)
        try delimited(body)
    }

    /// What `body` writes after its length as a varint, with no tag (the
    /// entries of a journal row of debits), written as `message` writes it.
    @inlinable
    package mutating func delimited(_ body: (inout ProtobufWriter) throws -> Void) rethrows {
        reserve(1)
        let lengthAt = count
        count += 1
        try body(&self)
        let length = count - lengthAt - 1
        guard length >= 0x80 else {
            base[lengthAt] = UInt8(length)
            return
        }
        var extra = 1
        while length >> (7 * (extra + 1)) != 0 { extra += 1 }
        reserve(extra)
        let start = base + lengthAt + 1
        (start + extra).update(from: start, count: length)  // overlapping: copied as memmove does
        count += extra
        var rest = length
        for index in lengthAt...(lengthAt + extra) {
            base[index] = UInt8(truncatingIfNeeded: rest) | (index < lengthAt + extra ? 0x80 : 0)
            rest >>= 7
        }
    }
}
