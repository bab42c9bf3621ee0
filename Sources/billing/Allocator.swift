import CJemalloc
import Glibc

/// The process's allocator, as `billing serve` logs it at start. jemalloc is
/// linked into the executable and its `malloc` takes the place of glibc's
/// (the executable's libraries are searched before libc's); this checks it
/// rather than assumes it: a block from plain `malloc` must show up in
/// jemalloc's count of the bytes this thread allocated.
enum Allocator {
    static func describe() -> String {
        var version: UnsafePointer<CChar>?
        var length = MemoryLayout<UnsafePointer<CChar>?>.size
        guard mallctl("version", &version, &length, nil, 0) == 0, let version else { return "glibc" }
        let name = "jemalloc \(String(cString: version).prefix { $0 != "-" })"
        guard let before = allocatedByThread() else { return "\(name) (not checked: no statistics)" }
        let size = 1 << 16
        let block = malloc(size)
        let after = allocatedByThread() ?? before
        // The block goes to a call the compiler cannot see into, so the
        // malloc and free above cannot be dropped as unused.
        let usable = malloc_usable_size(block)
        free(block)
        guard usable >= size, after - before >= UInt64(size) else { return "not jemalloc (\(name) linked but not in use)" }
        return name
    }

    private static func allocatedByThread() -> UInt64? {
        var value: UInt64 = 0
        var length = MemoryLayout<UInt64>.size
        return mallctl("thread.allocated", &value, &length, nil, 0) == 0 ? value : nil
    }
}
