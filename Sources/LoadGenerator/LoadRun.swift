import Client
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

    /// Runs every connection from one thread (`LoadWorker.runTogether`, as
    /// h2load does) and waits for all; calls `progress` with the merged tally
    /// each second until they finish. Returns the merged tally and one line
    /// per connection that failed.
    public func run(progress: (LoadTally) -> Void) -> (tally: LoadTally, failures: [String]) {
        let finished = DispatchSemaphore(value: 0)
        let failures = FailureList()
        let workers = self.workers
        Thread {
            var pairs: [(LoadWorker, GRPCClientConnection)] = []
            for worker in workers {
                do {
                    pairs.append((worker, try GRPCClientConnection(host: worker.plan.host, port: worker.plan.port, tls: worker.plan.tls)))
                } catch {
                    failures.append("connection \(worker.index): \(error)")
                }
            }
            for (index, error) in LoadWorker.runTogether(pairs, wait: Self.readable) {
                failures.append("connection \(index): \(error)")
            }
            finished.signal()
        }.start()
        while finished.wait(timeout: .now() + 1) != .success {
            progress(merged())
        }
        return (merged(), failures.all)
    }

    /// The connections with bytes to read, waiting up to `timeoutMillis`.
    static func readable(_ connections: [GRPCClientConnection], _ timeoutMillis: Int32) throws -> [Int] {
        var descriptors = connections.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        let ready = poll(&descriptors, nfds_t(descriptors.count), timeoutMillis)
        if ready < 0 {
            guard errno == EINTR else { throw ClientError("poll: \(String(cString: strerror(errno)))") }
            return []
        }
        return descriptors.indices.filter { descriptors[$0].revents != 0 }
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
