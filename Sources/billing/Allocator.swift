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
        escaped = block  // kept reachable, so the compiler cannot drop the call
        let after = allocatedByThread() ?? before
        free(block)
        escaped = nil
        return after - before >= UInt64(size) ? name : "glibc (\(name) linked but not in use)"
    }

    nonisolated(unsafe) private static var escaped: UnsafeMutableRawPointer?

    private static func allocatedByThread() -> UInt64? {
        var value: UInt64 = 0
        var length = MemoryLayout<UInt64>.size
        return mallctl("thread.allocated", &value, &length, nil, 0) == 0 ? value : nil
    }
}
