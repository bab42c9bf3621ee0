import Glibc

/// Nanoseconds on CLOCK_MONOTONIC: the clock of the load's time bound and latencies.
public func monotonicNow() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}
