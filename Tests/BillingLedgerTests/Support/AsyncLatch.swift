import Synchronization

/// Opens once; every waiter, before or after, then proceeds. Lets a test
/// await what another thread does (a store entering `append`) without sleeping.
final class AsyncLatch: Sendable {
    private struct State {
        var open = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    init() {}

    /// Whether it has opened (to poll, where waiting would block the test).
    var isOpen: Bool { state.withLock { $0.open } }

    func open() {
        let waiters = state.withLock { s in
            s.open = true
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let proceed = state.withLock { s in
                if s.open { return true }
                s.waiters.append(continuation)
                return false
            }
            if proceed { continuation.resume() }
        }
    }
}
