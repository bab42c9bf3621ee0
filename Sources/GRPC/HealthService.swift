public import BillingProto
import Synchronization

/// grpc.health.v1.Health: the one service open to every caller. The overall
/// server is the empty service name; shutdown turns everything NOT_SERVING
/// for good (`beginDrain`), and so does, while it lasts, `available`
/// answering false (asked at each check: a ledger that cannot write).
public final class HealthService: Sendable {
    public typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus

    private struct State {
        var statuses: [String: Status]
        var draining = false
    }

    private let state: Mutex<State>
    private let available: @Sendable () -> Bool

    public init(services: [String], available: @escaping @Sendable () -> Bool = { true }) {
        var initial: [String: Status] = ["": .serving]
        for service in services { initial[service] = .serving }
        state = Mutex(State(statuses: initial))
        self.available = available
    }

    /// Shutdown: NOT_SERVING from now on, whatever `available` says.
    public func beginDrain() {
        state.withLock { s in
            s.draining = true
            for key in s.statuses.keys { s.statuses[key] = .notServing }
        }
    }

    public func status(of service: String) -> Status? {
        state.withLock { $0.statuses[service] }.map { Self.status($0, available: available()) }
    }

    /// A service's status as answered: SERVING only while `available`.
    private static func status(_ stored: Status, available: Bool) -> Status {
        stored == .serving && !available ? .notServing : stored
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
            let serving = available()
            for (service, status) in state.withLock({ $0.statuses }) {
                var check = Grpc_Health_V1_HealthCheckResponse()
                check.status = Self.status(status, available: serving)
                response.statuses[service] = check
            }
            return try response.serializedBytes()
        }
    }
}
