import Foundation
import Synchronization

/// One run of the load: a thread per connection, the merged tally offered
/// once a second while they run, and each connection's failure if any.
public struct LoadRun: Sendable {
    public let workers: [LoadWorker]

    /// `requests` calls in all (0: no count bound), split exactly over the connections.
    public init(plan: LoadPlan, connections: Int, requests: Int) {
        precondition(connections > 0 && requests >= 0)
        workers = (0..<connections).map { index in
            LoadWorker(index: index, plan: plan,
                       requests: Self.share(of: requests, connections: connections, index: index))
        }
    }

    /// Connection `index`'s share of `requests` (0: unbounded): the first
    /// `requests % connections` connections take one call more.
    public static func share(of requests: Int, connections: Int, index: Int) -> Int64 {
        precondition(requests >= 0 && (0..<connections).contains(index))
        guard requests > 0 else { return Int64.max }
        return Int64(requests / connections + (index < requests % connections ? 1 : 0))
    }

    /// Runs every worker on its own thread and waits for all; calls
    /// `progress` with the merged tally each second that none finished.
    /// Returns the merged tally and one line per connection that failed.
    public func run(progress: (LoadTally) -> Void) -> (tally: LoadTally, failures: [String]) {
        let finished = DispatchSemaphore(value: 0)
        let failures = FailureList()
        for worker in workers {
            Thread {
                do { try worker.run() } catch { failures.append("connection \(worker.index): \(error)") }
                finished.signal()
            }.start()
        }
        var done = 0
        while done < workers.count {
            if finished.wait(timeout: .now() + 1) == .success {
                done += 1
            } else {
                progress(merged())
            }
        }
        return (merged(), failures.all)
    }

    /// Every worker's tally so far, merged.
    public func merged() -> LoadTally {
        var total = LoadTally()
        for worker in workers { total.merge(worker.tallySoFar) }
        return total
    }
}

/// Connection failures, appended from the workers' threads.
private final class FailureList: Sendable {
    private let failures = Mutex<[String]>([])

    func append(_ failure: String) { failures.withLock { $0.append(failure) } }

    var all: [String] { failures.withLock { $0 } }
}
