public import SwiftProtobuf
import HTTP2

/// What a handler sees of the call besides its request message.
public struct GRPCCallContext: Sendable {
    /// The method path, e.g. "/billing.v1.Metering/Debit".
    public let path: String
    /// The request's headers, kept raw; read with `metadata(_:)`.
    let headers: HTTP2HeaderBlock
    /// Absolute deadline on the server's monotonic clock (nanoseconds), if the caller set one.
    public let deadlineNanos: UInt64?
    /// The peer's address, for logs.
    public let peer: String
    /// What the method's admission (`GRPCAdmission`) returned at the
    /// call's headers (nil: it has none).
    public let admitted: (any Sendable)?

    public init(path: String, metadata: [(name: String, value: String)], deadlineNanos: UInt64?, peer: String,
                admitted: (any Sendable)? = nil) {
        self.init(path: path, headers: HTTP2HeaderBlock(metadata.map { HTTP2Header($0.name, $0.value) }),
                  deadlineNanos: deadlineNanos, peer: peer, admitted: admitted)
    }

    init(path: String, headers: HTTP2HeaderBlock, deadlineNanos: UInt64?, peer: String, admitted: (any Sendable)? = nil) {
        self.path = path
        self.headers = headers
        self.deadlineNanos = deadlineNanos
        self.peer = peer
        self.admitted = admitted
    }

    /// The first value of a metadata key (lower-case), never a pseudo-header.
    public func metadata(_ name: String) -> String? {
        name.hasPrefix(":") ? nil : headers.value(name)
    }

    /// How many times a metadata key occurs (a credential must occur once).
    public func metadataCount(_ name: String) -> Int {
        name.hasPrefix(":") ? 0 : headers.count(of: name)
    }

    /// Every metadata entry (pseudo-headers excluded), in order.
    public var metadata: [(name: String, value: String)] {
        headers.regularHeaders.map { ($0.name, $0.value) }
    }
}

/// A method's check of a call at its headers, before any of its request
/// is read (its credentials): a refusal answers the call at once and its
/// request bytes are dropped as they come, never buffered — a caller that
/// cannot authenticate holds no memory. What it returns reaches the
/// handler as `GRPCCallContext.admitted` (the authenticated caller).
public typealias GRPCAdmission = @Sendable (_ context: GRPCCallContext) throws(GRPCStatus) -> (any Sendable)?

/// A unary method: serialized request in, serialized response out; throws a
/// `GRPCStatus` to refuse.
public typealias GRPCUnaryHandler = @Sendable (_ request: [UInt8], _ context: GRPCCallContext) async throws -> [UInt8]

/// A method that runs on the event loop itself, synchronously. Only for
/// handlers that take microseconds and never block (the health check):
/// anything that waits, does I/O or may be slow must be a `GRPCUnaryHandler`.
public typealias GRPCInlineHandler = @Sendable (_ request: [UInt8], _ context: GRPCCallContext) throws -> [UInt8]

/// A method that starts on the event loop, synchronously, with no task,
/// and answers through `respond` — at once, or later from any thread (a
/// callback the loop runs once a commit is durable, or a task) — exactly once. Like an
/// inline handler it must take microseconds and never block; what needs to
/// wait continues as a task through `respond.continueAsTask`.
public typealias GRPCDeferredHandler = @Sendable (_ request: [UInt8], _ context: GRPCCallContext, _ respond: GRPCResponder) -> Void

/// Where a `GRPCUnaryHandler`'s task runs.
public enum GRPCHandlerPlacement: Sendable {
    /// Swift's global concurrent executor: for anything that may block or
    /// run long (SQLite reads, rendering, payment calls, large batches).
    case pool
    /// The connection's event loop (its `handlerExecutor`), between socket
    /// events, and so do the actors it calls while it runs there: no thread
    /// hand-off from the loop to a pool thread and back per call. Only for
    /// handlers that take microseconds of CPU and do not block; their
    /// suspensions (awaiting a commit) free the loop. A request larger than
    /// `maxRequestBytes` runs on the pool instead: the loop's share of work
    /// per call stays bounded (a batch of thousands does not stall it).
    case loop(maxRequestBytes: Int)

    /// Where a request of `bytes` runs: on the loop only when placed there and small enough.
    func onLoop(requestBytes bytes: Int) -> Bool {
        if case .loop(let limit) = self { return bytes <= limit }
        return false
    }
}

enum GRPCMethod: Sendable {
    case task(GRPCUnaryHandler, GRPCHandlerPlacement)
    case inline(GRPCInlineHandler)
    /// Requests up to `maxRequestBytes` go to the deferred handler on the
    /// loop; larger ones to `otherwise`, as a task on the pool.
    case deferred(GRPCDeferredHandler, maxRequestBytes: Int, otherwise: GRPCUnaryHandler)
}

/// Methods by path. Built once before the server starts; read-only after.
public struct GRPCRouter: Sendable {
    var routes: [String: GRPCMethod] = [:]
    var admissions: [String: GRPCAdmission] = [:]

    public init() {}

    public var paths: [String] { routes.keys.sorted() }

    func method(for path: String) -> GRPCMethod? { routes[path] }

    func admission(for path: String) -> GRPCAdmission? { admissions.isEmpty ? nil : admissions[path] }

    /// Checks every call of `path` at its headers (see `GRPCAdmission`).
    public mutating func admit(path: String, _ admission: @escaping GRPCAdmission) {
        precondition(admissions[path] == nil, "\(path) admitted twice")
        admissions[path] = admission
    }

    public mutating func register(path: String, placement: GRPCHandlerPlacement = .pool,
                                  _ handler: @escaping GRPCUnaryHandler) {
        precondition(routes[path] == nil, "\(path) registered twice")
        routes[path] = .task(handler, placement)
    }

    public mutating func registerInline(path: String, _ handler: @escaping GRPCInlineHandler) {
        precondition(routes[path] == nil, "\(path) registered twice")
        routes[path] = .inline(handler)
    }

    /// Registers a deferred method (`GRPCDeferredHandler`) for requests of
    /// up to `maxRequestBytes`; a larger one runs `otherwise` on the pool
    /// (the loop's share of work per call stays bounded).
    public mutating func registerDeferred(path: String, maxRequestBytes: Int, _ handler: @escaping GRPCDeferredHandler,
                                          otherwise: @escaping GRPCUnaryHandler) {
        precondition(routes[path] == nil, "\(path) registered twice")
        routes[path] = .deferred(handler, maxRequestBytes: maxRequestBytes, otherwise: otherwise)
    }

    /// Registers a typed method that runs inline on the event loop (see
    /// `GRPCInlineHandler` for when that is allowed).
    public mutating func registerInline<Request: Message, Response: Message>(
        _ path: String, _ handler: @escaping @Sendable (Request, GRPCCallContext) throws -> Response
    ) {
        registerInline(path: path) { bytes, context in
            try handler(try decode(Request.self, bytes), context).serializedBytes()
        }
    }

    /// Registers a typed unary method. A request that does not decode is
    /// refused with INVALID_ARGUMENT before the handler runs.
    public mutating func register<Request: Message, Response: Message>(
        _ path: String, placement: GRPCHandlerPlacement = .pool,
        _ handler: @escaping @Sendable (Request, GRPCCallContext) async throws -> Response
    ) {
        register(path: path, placement: placement) { bytes, context in
            try await handler(try decode(Request.self, bytes), context).serializedBytes()
        }
    }
}

/// A request that does not decode is refused with INVALID_ARGUMENT.
public func decode<Request: Message>(_ type: Request.Type, _ bytes: [UInt8]) throws(GRPCStatus) -> Request {
    do {
        return try Request(serializedBytes: bytes)
    } catch {
        throw GRPCStatus(.invalidArgument, "request is not a valid \(Request.protoMessageName)", reason: "MALFORMED_REQUEST")
    }
}
