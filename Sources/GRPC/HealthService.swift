public import BillingProto
import Synchronization

/// grpc.health.v1.Health: the one service open to every caller. The overall
/// server is the empty service name; shutdown turns everything NOT_SERVING
/// for good (`beginDrain`), and so does, while it lasts, a ledger that
/// cannot write (`setServing(false)`).
public final class HealthService: Sendable {
    public typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus

    private struct State {
        var statuses: [String: Status]
        var draining = false
    }

    private let state: Mutex<State>

    public init(services: [String]) {
        var initial: [String: Status] = ["": .serving]
        for service in services { initial[service] = .serving }
        state = Mutex(State(statuses: initial))
    }

    /// Shutdown: NOT_SERVING from now on, whatever `setServing` says later.
    public func beginDrain() {
        state.withLock { s in
            s.draining = true
            for key in s.statuses.keys { s.statuses[key] = .notServing }
        }
    }

    /// SERVING or NOT_SERVING for every service (the server's too); ignored
    /// once draining.
    public func setServing(_ serving: Bool) {
        state.withLock { s in
            guard !s.draining else { return }
            for key in s.statuses.keys { s.statuses[key] = serving ? .serving : .notServing }
        }
    }

    public func status(of service: String) -> Status? {
        state.withLock { $0.statuses[service] }
    }

    public func register(into router: inout GRPCRouter) {
        // Inline: a lookup in a small locked dictionary, never blocks. The
        // response for each status is serialized once.
        let serialized = Dictionary(uniqueKeysWithValues: [Status.unknown, .serving, .notServing, .serviceUnknown].map { status in
            var response = Grpc_Health_V1_HealthCheckResponse()
            response.status = status
            return (status, (try? response.serializedBytes()) ?? [])
        })
        router.registerInline(path: "/grpc.health.v1.Health/Check") { [self] bytes, _ in
            let service = bytes.isEmpty ? "" : try decode(Grpc_Health_V1_HealthCheckRequest.self, bytes).service
            guard let status = status(of: service) else {
                throw GRPCStatus(.notFound, "unknown service \(service)", reason: "SERVICE_NOT_FOUND")
            }
            return serialized[status] ?? []
        }
        // Every service's status, the server's own ("") included.
        router.registerInline(path: "/grpc.health.v1.Health/List") { [self] bytes, _ in
            _ = try decode(Grpc_Health_V1_HealthListRequest.self, bytes)
            var response = Grpc_Health_V1_HealthListResponse()
            for (service, status) in state.withLock({ $0.statuses }) {
                var check = Grpc_Health_V1_HealthCheckResponse()
                check.status = status
                response.statuses[service] = check
            }
            return try response.serializedBytes()
        }
    }
}
