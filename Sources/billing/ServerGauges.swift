import BillingLedger
import Foundation
import GRPC
import Prometheus
import Server
import Synchronization

/// Point-in-time values, set when /metrics is scraped (and the reload
/// counter brought up to the ledger's count then).
final class ServerGauges: Sendable {
    let connections: Gauge
    let calls: Gauge
    let journalEntries: Gauge
    let checkpointAge: Gauge
    let checkpointLag: Gauge
    let paced: Gauge
    let walBytes: Gauge
    let serving: Gauge
    let failingTransitions: Gauge
    let reloads: Counter
    /// The ledger's reloads already added to `reloads` (scrapes may run at once).
    private let reloadsCounted = Mutex<Int>(0)
    /// The database's `-wal` file.
    let wal: String

    init(registry: PrometheusCollectorRegistry, recoveryMillis: Int64, wal: String) {
        self.wal = wal
        func gauge(_ name: String, _ unit: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "billing", metricName: name, unitName: unit, helpText: help))
        }
        connections = gauge("open", "connections", "Open client connections")
        calls = gauge("open", "calls", "Calls in progress (streams with a call)")
        journalEntries = gauge("journal", "entries", "Committed journal entries (last durable seq)")
        checkpointAge = gauge("checkpoint_age", "seconds", "Seconds since this process wrote a checkpoint (-1: none yet)")
        checkpointLag = gauge("checkpoint_lag", "entries",
                              "Durable journal entries after the newest checkpoint (what a start-up would replay: those this start replayed count until this process writes one)")
        paced = gauge("journal_paced", "", "1 while commits wait for a checkpoint to catch up (lag over 2 checkpoint intervals)")
        gauge("recovery", "seconds", "Start-up recovery time (checkpoint load + journal replay)").set(Double(recoveryMillis) / 1000)
        walBytes = gauge("wal", "bytes",
                         "Size of the database's write-ahead log (<db>-wal): up to ~64 MiB is normal (SQLite reuses it; journal_size_limit truncates it past 64 MiB); steady growth beyond means a reader outside the server holds its checkpoints back")
        serving = gauge("ledger_serving", "", "1 while the ledger takes changes; 0 from a failed journal commit until the reload after it succeeds")
        failingTransitions = gauge("accounts_failing", "transitions",
                                   "Accounts whose due transition or payment failed the last time it was tried (each logged; the others go on): a payment gateway giving no answer, else a bug or damaged data")
        reloads = registry.makeCounter(descriptor: MetricNameDescriptor(
            namespace: "billing", metricName: "ledger_reloads", unitName: "total",
            helpText: "Reloads of the ledger from the store after failed journal commits since start (a full disk: one every 1-8 s)"))
    }

    func update(server: GRPCServer, calls callMetrics: GRPCServerMetrics, ledger: Ledger) {
        connections.set(Double(server.openConnectionCount))
        calls.set(Double(callMetrics.openCalls.load(ordering: .relaxed)))
        journalEntries.set(Double(ledger.durableSeq))
        let last = ledger.lastCheckpointMicros
        checkpointAge.set(last == 0 ? -1 : (Date().timeIntervalSince1970 * 1_000_000 - Double(last)) / 1_000_000)
        let lag = ledger.checkpointLag
        checkpointLag.set(Double(lag.entries))
        paced.set(lag.paced ? 1.0 : 0.0)
        var info = stat()
        walBytes.set(stat(wal, &info) == 0 ? Double(info.st_size) : 0)
        serving.set(ledger.isServing ? 1.0 : 0.0)
        failingTransitions.set(Double(ledger.accountsFailingTransitions.load(ordering: .relaxed)))
        let reloadsNow = ledger.reloads.load(ordering: .relaxed)
        reloadsCounted.withLock { counted in
            guard reloadsNow > counted else { return }
            reloads.increment(by: Int64(reloadsNow - counted))
            counted = reloadsNow
        }
    }
}
