import Dispatch
import Foundation
import Synchronization

/// A task executor that runs nothing until told: each `step()` runs the
/// oldest job queued on it, on its own thread. A task started with it as
/// its executor preference stops at each suspension point (the hop from the
/// ledger actor back to a nonisolated function included) until the test
/// lets it go on, so a test can act in between.
final class SteppedExecutor: TaskExecutor {
    private let jobs = Mutex<[UnownedJob]>([])
    private let requests = Mutex<[CheckedContinuation<Bool, Never>]>([])
    private let permits = DispatchSemaphore(value: 0)

    init() {
        let thread = Thread { [self] in run() }
        thread.name = "stepped-executor"
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
    }

    /// Runs the oldest queued job; false when there was none.
    func step() async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            requests.withLock { $0.append(continuation) }
            permits.signal()
        }
    }

    /// Stops the thread (jobs still queued are never run).
    func shutdown() { permits.signal() }

    private func run() {
        while true {
            permits.wait()
            guard let request = requests.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { return }
            let job = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            job?.runSynchronously(on: asUnownedTaskExecutor())
            request.resume(returning: job != nil)
        }
    }
}
