import BillingProto
import Foundation
@testable import GRPC
import HTTP2
import Logging
import SwiftProtobuf
import Synchronization
import Testing

/// Responders parked by a deferred handler for the test to answer.
final class Parked: Sendable {
    let responders = Mutex<[GRPCResponder]>([])
}

/// A real nghttp2 client session talking to a GRPCServerConnection in memory.
final class Harness {
    let loop = ManualLoop()
    /// Responders of "/test.Echo/DeferredLater" calls, for the test to answer.
    let parked = Parked()
    let client: HTTP2Session
    let server: GRPCServerConnection
    var events: [HTTP2Event] = []

    init(configuration: GRPCServerConfiguration = GRPCServerConfiguration(), clientLimits: HTTP2Limits = HTTP2Limits()) throws {
        var router = GRPCRouter()
        router.register(path: "/test.Echo/Echo") { bytes, _ in bytes }
        // Where a handler ran: 1 inside the loop's work, 0 elsewhere.
        router.register(path: "/test.Echo/WhereOnLoop", placement: .loop(maxRequestBytes: 16)) { [loop] _, _ in
            [loop.runningWork.load(ordering: .sequentiallyConsistent) ? 1 : 0]
        }
        router.register(path: "/test.Echo/WhereOnPool") { [loop] _, _ in
            [loop.runningWork.load(ordering: .sequentiallyConsistent) ? 1 : 0]
        }
        router.registerInline(path: "/test.Echo/Inline") { bytes, _ in bytes }
        // Admitted at its headers when they carry x-key: ok; the handler
        // answers what the admission returned (7).
        router.registerInline(path: "/test.Echo/Admitted") { _, context in [(context.admitted as? UInt8) ?? 0] }
        router.admit(path: "/test.Echo/Admitted") { context throws(GRPCStatus) in
            guard context.metadata("x-key") == "ok" else {
                throw GRPCStatus(.unauthenticated, "no key", reason: "MISSING_CREDENTIALS")
            }
            return UInt8(7)
        }
        // Deferred methods; a request over 8 bytes goes to `otherwise` ([9], on the pool).
        let otherwise: GRPCUnaryHandler = { _, _ in [9] }
        router.registerDeferred(path: "/test.Echo/DeferredNow", maxRequestBytes: 8, { bytes, _, respond in
            respond { bytes + [1] }
        }, otherwise: otherwise)
        router.registerDeferred(path: "/test.Echo/DeferredLater", maxRequestBytes: 8, { [parked] _, _, respond in
            parked.responders.withLock { $0.append(respond) }
        }, otherwise: otherwise)
        router.registerDeferred(path: "/test.Echo/DeferredTask", maxRequestBytes: 8, { [loop] bytes, _, respond in
            respond.continueAsTask(onLoop: true) {
                bytes + [loop.runningWork.load(ordering: .sequentiallyConsistent) ? 1 : 0]
            }
        }, otherwise: otherwise)
        router.registerDeferred(path: "/test.Echo/DeferredTwice", maxRequestBytes: 8, { _, _, respond in
            respond { [1] }
            respond { [2] }
            respond.fail(GRPCStatus(.internal, "third"))
        }, otherwise: otherwise)
        router.registerDeferred(path: "/test.Echo/DeferredRefuse", maxRequestBytes: 8, { _, _, respond in
            respond.fail(GRPCStatus(.failedPrecondition, "refused", reason: "INSUFFICIENT_CREDITS"))
        }, otherwise: otherwise)
        router.register(path: "/test.Echo/Refuse") { _, _ in
            throw GRPCStatus(.failedPrecondition, "no credits: 100% spent", reason: "INSUFFICIENT_CREDITS",
                             metadata: ["account_id": "a1"])
        }
        router.register(path: "/test.Echo/Sleep") { bytes, _ in
            try await Task.sleep(nanoseconds: 60_000_000_000)
            return bytes
        }
        router.register("/test.Echo/Typed") { (request: Grpc_Health_V1_HealthCheckRequest, _) in
            var response = Grpc_Health_V1_HealthCheckResponse()
            response.status = request.service == "x" ? .serving : .unknown
            return response
        }
        client = try HTTP2Session(role: .client, limits: clientLimits)
        server = try GRPCServerConnection(router: router, configuration: configuration, loop: loop,
                                          peer: "test", logger: Logger(label: "test"))
    }

    func pump() throws {
        for _ in 0..<100 {
            var toServer: [UInt8] = []
            try client.drainOutput(into: &toServer)
            var toClient: [UInt8] = []
            try server.drainOutput(into: &toClient)
            if toServer.isEmpty && toClient.isEmpty { return }
            try loop.drive { try toServer.withUnsafeBytes { try server.receive($0) } }
            events += try client.receive(toClient)
        }
    }

    @discardableResult
    func call(_ path: String, body: [UInt8], extra: [HTTP2Header] = [], contentType: String = "application/grpc") throws -> Int32 {
        let headers = [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", path),
            HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", contentType),
            HTTP2Header("te", "trailers"),
        ] + extra
        let id = try client.sendRequest(headers: headers, body: body)
        try pump()
        return id
    }

    /// Every header of the stream's blocks merged (headers and trailers).
    func headers(_ id: Int32) -> [HTTP2Header] {
        events.flatMap { event -> [HTTP2Header] in
            if case let .headers(streamID, headers, _) = event, streamID == id { return headers.headers }
            return []
        }
    }

    func body(_ id: Int32) -> [UInt8] {
        events.flatMap { event -> [UInt8] in
            if case let .data(streamID, bytes) = event, streamID == id { return bytes }
            return []
        }
    }

    func status(_ id: Int32) -> Int? { headers(id).first("grpc-status").flatMap { Int($0) } }

    /// The ErrorInfo reason in the call's `grpc-status-details-bin` (nil: none).
    func reason(_ id: Int32) throws -> String? {
        guard var encoded = headers(id).first("grpc-status-details-bin") else { return nil }
        while encoded.count % 4 != 0 { encoded += "=" }
        let status = try Google_Rpc_Status(serializedBytes: [UInt8](try #require(Data(base64Encoded: encoded))))
        let info = try Google_Rpc_ErrorInfo(unpackingAny: try #require(status.details.first))
        #expect(info.domain == "billing.v1")
        return info.reason
    }
}

@Test func unaryCallSucceedsWithFramedResponseAndOkTrailer() async throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/Echo", body: grpcFrame([1, 2, 3]))
    await h.loop.runNext()
    try h.pump()
    #expect(h.headers(id).first(":status") == "200")
    #expect(h.headers(id).first("content-type") == "application/grpc")
    #expect(h.body(id) == grpcFrame([1, 2, 3]))
    #expect(h.status(id) == 0)
}

/// A handler placed on the loop runs as the loop's work; by default it runs
/// on the pool, outside it.
@Test(.timeLimit(.minutes(1))) func handlersRunWhereTheyArePlaced() async throws {
    let h = try Harness()
    let onLoop = try h.call("/test.Echo/WhereOnLoop", body: grpcFrame([]))
    await h.loop.runNext()  // the handler's task, on the loop
    await h.loop.runNext()  // its outcome, back to the connection
    try h.pump()
    #expect(h.status(onLoop) == 0)
    #expect(h.body(onLoop) == grpcFrame([1]))
    let onPool = try h.call("/test.Echo/WhereOnPool", body: grpcFrame([]))
    await h.loop.runNext()  // only its outcome: the task ran on the pool
    try h.pump()
    #expect(h.status(onPool) == 0)
    #expect(h.body(onPool) == grpcFrame([0]))
    // Placed on the loop but larger than its limit: the pool.
    let large = try h.call("/test.Echo/WhereOnLoop", body: grpcFrame(Array(repeating: 7, count: 17)))
    await h.loop.runNext()
    try h.pump()
    #expect(h.status(large) == 0)
    #expect(h.body(large) == grpcFrame([0]))
}

@Test func unknownMethodIsUnimplemented() throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/Nope", body: grpcFrame([]))
    #expect(h.status(id) == GRPCStatus.Code.unimplemented.rawValue)
    #expect(try h.reason(id) == "METHOD_NOT_FOUND")
    #expect(h.body(id).isEmpty)
}

/// A connection remembers its previous call's route: a call to another
/// method (here one whose path differs only in its last byte, or is
/// unknown) is routed by its own path, and the one after it too.
@Test func eachCallIsRoutedByItsOwnPathOnAConnectionThatRemembersTheLast() async throws {
    let h = try Harness()
    for (path, expected) in [("/test.Echo/Echo", 0), ("/test.Echo/Echo", 0), ("/test.Echo/Echx", 12),
                             ("/test.Echo/Echo", 0), ("/test.Echo/Nope", 12), ("/test.Echo/Echo", 0)] {
        let id = try h.call(path, body: grpcFrame([9]))
        if expected == 0 {
            await h.loop.runNext()
            try h.pump()
            #expect(h.body(id) == grpcFrame([9]), "\(path)")
        }
        #expect(h.status(id) == expected, "\(path)")
    }
}

@Test func nonGRPCContentTypeIsHTTP415() throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/Echo", body: [1], contentType: "application/json")
    #expect(h.headers(id).first(":status") == "415")
    // gRPC is "application/grpc" with an optional "+subtype" or ";parameters"
    // (any case); gRPC-Web and look-alikes are not.
    for other in ["application/grpc-web", "application/grpc-web+proto", "application/grpcfoo", "application/gr",
                  "application/grpc-web;charset=utf-8"] {
        let refused = try h.call("/test.Echo/Inline", body: grpcFrame([1]), contentType: other)
        #expect(h.headers(refused).first(":status") == "415", "\(other)")
    }
    for grpc in ["application/grpc", "application/grpc+proto", "application/grpc;charset=utf-8",
                 "Application/gRPC", "application/grpc+proto; charset=utf-8", "application/grpc+PROTO",
                 "application/grpc+proto ;charset=utf-8"] {
        let served = try h.call("/test.Echo/Inline", body: grpcFrame([1]), contentType: grpc)
        #expect(h.status(served) == 0, "\(grpc)")
    }
    // gRPC with another codec: a gRPC status saying so (messages are protobuf;
    // +json was decoded as protobuf and refused as malformed).
    for codec in ["application/grpc+json", "application/grpc+JSON; charset=utf-8", "application/grpc+"] {
        let refused = try h.call("/test.Echo/Inline", body: grpcFrame([1]), contentType: codec)
        #expect(h.status(refused) == GRPCStatus.Code.unimplemented.rawValue, "\(codec)")
        #expect(try h.reason(refused) == "UNSUPPORTED_CONTENT_TYPE", "\(codec)")
    }
}

@Test func oversizedMessageIsResourceExhausted() throws {
    var configuration = GRPCServerConfiguration()
    configuration.maxReceiveMessageSize = 1000
    let h = try Harness(configuration: configuration)
    let id = try h.call("/test.Echo/Echo", body: grpcFrame(Array(repeating: 0, count: 1001)))
    #expect(h.status(id) == GRPCStatus.Code.resourceExhausted.rawValue)
    #expect(h.headers(id).first("grpc-message")?.contains("1001") == true)
    #expect(try h.reason(id) == "MESSAGE_TOO_LARGE")
}


@Test func undecodableMessageGetsInvalidArgumentFromTheHandlerTask() async throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/Typed", body: grpcFrame([0xFF, 0xFF, 0xFF]))
    await h.loop.runNext()
    try h.pump()
    #expect(h.status(id) == GRPCStatus.Code.invalidArgument.rawValue)
    #expect(try h.reason(id) == "MALFORMED_REQUEST")
}

@Test func typedHandlerDecodesAndEncodes() async throws {
    let h = try Harness()
    var request = Grpc_Health_V1_HealthCheckRequest()
    request.service = "x"
    let id = try h.call("/test.Echo/Typed", body: grpcFrame(try request.serializedBytes()))
    await h.loop.runNext()
    try h.pump()
    let body = h.body(id)
    let response = try Grpc_Health_V1_HealthCheckResponse(serializedBytes: Array(body.dropFirst(5)))
    #expect(response.status == .serving)
}

@Test func compressedFlagWithoutEncodingIsInternal() throws {
    let h = try Harness()
    var framed = grpcFrame([1])
    framed[0] = 1
    let id = try h.call("/test.Echo/Echo", body: framed)
    #expect(h.status(id) == GRPCStatus.Code.internal.rawValue)
    #expect(try h.reason(id) == "MALFORMED_MESSAGE")
}

@Test func unsupportedEncodingIsUnimplementedWithAcceptEncoding() throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/Echo", body: grpcFrame([1]), extra: [HTTP2Header("grpc-encoding", "gzip")])
    #expect(h.status(id) == GRPCStatus.Code.unimplemented.rawValue)
    #expect(h.headers(id).first("grpc-accept-encoding") == "identity")
    #expect(try h.reason(id) == "UNSUPPORTED_ENCODING")
}

@Test func refusalCarriesErrorInfoInStatusDetails() async throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/Refuse", body: grpcFrame([]))
    await h.loop.runNext()
    try h.pump()
    #expect(h.status(id) == GRPCStatus.Code.failedPrecondition.rawValue)
    #expect(h.headers(id).first("grpc-message") == "no credits: 100%25 spent")
    var encoded = try #require(h.headers(id).first("grpc-status-details-bin"))
    while encoded.count % 4 != 0 { encoded += "=" }
    let status = try Google_Rpc_Status(serializedBytes: [UInt8](try #require(Data(base64Encoded: encoded))))
    #expect(status.code == Int32(GRPCStatus.Code.failedPrecondition.rawValue))
    let info = try Google_Rpc_ErrorInfo(unpackingAny: try #require(status.details.first))
    #expect(info.reason == "INSUFFICIENT_CREDITS")
    #expect(info.metadata["account_id"] == "a1")
}

@Test func deadlineExceededWhenTheHandlerIsTooSlow() async throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/Sleep", body: grpcFrame([]), extra: [HTTP2Header("grpc-timeout", "50m")])
    #expect(h.status(id) == nil)
    h.loop.advance(byNanos: 49_000_000)
    try h.pump()
    #expect(h.status(id) == nil)
    h.loop.advance(byNanos: 2_000_000)
    try h.pump()
    #expect(h.status(id) == GRPCStatus.Code.deadlineExceeded.rawValue)
    #expect(try h.reason(id) == "DEADLINE_EXCEEDED")  // every refusal carries a reason
    // The cancelled handler still reports back; nothing more is sent.
    await h.loop.runNext()
    try h.pump()
    #expect(h.headers(id).filter { $0.name == "grpc-status" }.count == 1)
}

@Test func clientResetCancelsTheHandler() async throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/Sleep", body: grpcFrame([]))
    h.client.resetStream(id, errorCode: 8)
    try h.pump()
    // The sleeping handler is cancelled and posts its completion at once.
    await h.loop.runNext()
    #expect(h.server.openCallCount == 0)
}

@Test func missingMessageIsInternal() throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/Echo", body: [])
    #expect(h.status(id) == GRPCStatus.Code.internal.rawValue)
    #expect(try h.reason(id) == "MALFORMED_MESSAGE")
}

@Test func malformedTimeoutIsInvalidArgumentWithItsReason() throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/Echo", body: grpcFrame([1]), extra: [HTTP2Header("grpc-timeout", "soon")])
    #expect(h.status(id) == GRPCStatus.Code.invalidArgument.rawValue)
    #expect(try h.reason(id) == "INVALID_TIMEOUT")
}

// MARK: Deferred methods

/// A deferred handler that answers at once is answered within the same
/// turn of the loop: no task, no queued work.
@Test func deferredHandlerAnsweringAtOnceNeedsNoQueuedWork() throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/DeferredNow", body: grpcFrame([5]))
    try h.pump()
    #expect(h.status(id) == 0)
    #expect(h.body(id) == grpcFrame([5, 1]))
    #expect(h.server.openCallCount == 0)
}

/// Answered later from another thread (as the journal thread does): the
/// answer is queued on the loop and sent from there.
@Test(.timeLimit(.minutes(1))) func deferredHandlerAnswersLaterFromAnotherThread() async throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/DeferredLater", body: grpcFrame([5]))
    try h.pump()
    #expect(h.status(id) == nil)
    let respond = try #require(h.parked.responders.withLock { $0.first })
    await Task.detached { respond { [7] } }.value
    #expect(h.status(id) == nil)  // queued, not sent from the other thread
    await h.loop.runNext()
    try h.pump()
    #expect(h.status(id) == 0)
    #expect(h.body(id) == grpcFrame([7]))
    #expect(h.server.openCallCount == 0)
}

/// A deferred handler may continue as a task on the loop.
@Test(.timeLimit(.minutes(1))) func deferredHandlerContinuesAsATaskOnTheLoop() async throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/DeferredTask", body: grpcFrame([5]))
    await h.loop.runNext()  // the task, on the loop
    await h.loop.runNext()  // its outcome, back to the connection
    try h.pump()
    #expect(h.status(id) == 0)
    #expect(h.body(id) == grpcFrame([5, 1]))
}

@Test func deferredRefusalCarriesItsStatus() throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/DeferredRefuse", body: grpcFrame([]))
    try h.pump()
    #expect(h.status(id) == GRPCStatus.Code.failedPrecondition.rawValue)
    #expect(h.headers(id).first("grpc-message") == "refused")
}

/// A request larger than the deferred limit runs the other handler, on the pool.
@Test(.timeLimit(.minutes(1))) func oversizedDeferredRequestRunsTheOtherHandler() async throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/DeferredNow", body: grpcFrame(Array(repeating: 3, count: 9)))
    await h.loop.runNext()  // only the outcome: the handler ran on the pool
    try h.pump()
    #expect(h.status(id) == 0)
    #expect(h.body(id) == grpcFrame([9]))
    #expect(h.parked.responders.withLock { $0.isEmpty })
}

/// The deadline passes before the deferred answer: DEADLINE_EXCEEDED is
/// sent, the late answer is dropped, and the call is no longer counted.
@Test(.timeLimit(.minutes(1))) func lateDeferredAnswerAfterTheDeadlineIsDropped() async throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/DeferredLater", body: grpcFrame([]), extra: [HTTP2Header("grpc-timeout", "50m")])
    h.loop.advance(byNanos: 51_000_000)
    try h.pump()
    #expect(h.status(id) == GRPCStatus.Code.deadlineExceeded.rawValue)
    let respond = try #require(h.parked.responders.withLock { $0.first })
    await Task.detached { respond { [7] } }.value
    await h.loop.runNext()
    try h.pump()
    #expect(h.headers(id).filter { $0.name == "grpc-status" }.count == 1)
    #expect(h.body(id).isEmpty)
    #expect(h.server.openCallCount == 0)
}

/// The client resets the stream while a deferred answer is pending: the
/// late answer is dropped, nothing is sent on the reset stream, and the
/// call is forgotten.
@Test(.timeLimit(.minutes(1))) func deferredAnswerAfterAClientResetIsDropped() async throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/DeferredLater", body: grpcFrame([]))
    h.client.resetStream(id, errorCode: 8)
    try h.pump()
    #expect(h.server.openCallCount == 0)
    let respond = try #require(h.parked.responders.withLock { $0.first })
    await Task.detached { respond { [7] } }.value
    await h.loop.runNext()
    try h.pump()
    #expect(h.status(id) == nil)
    #expect(h.body(id).isEmpty)
    // The connection still serves.
    let next = try h.call("/test.Echo/DeferredNow", body: grpcFrame([1]))
    try h.pump()
    #expect(h.body(next) == grpcFrame([1, 1]))
}

/// A handler that answers twice (a bug): the first answer is sent, the
/// rest dropped, and the running-handler count stays right.
@Test func aSecondDeferredAnswerIsDropped() throws {
    let h = try Harness()
    let id = try h.call("/test.Echo/DeferredTwice", body: grpcFrame([]))
    try h.pump()
    #expect(h.status(id) == 0)
    #expect(h.body(id) == grpcFrame([1]))
    #expect(h.server.runningHandlers == 0)
}

@Test func aCallPastTheRunningLimitIsRefusedWithItsReason() throws {
    var configuration = GRPCServerConfiguration()
    configuration.maxRunningHandlersPerConnection = 1
    let h = try Harness(configuration: configuration)
    let parked = try h.call("/test.Echo/DeferredLater", body: grpcFrame([5]))
    #expect(h.status(parked) == nil)  // running, parked for the test
    let refused = try h.call("/test.Echo/Echo", body: grpcFrame([1]))
    #expect(h.status(refused) == GRPCStatus.Code.resourceExhausted.rawValue)
    #expect(try h.reason(refused) == "TOO_MANY_CALLS")
}

/// A peer that sends a call's headers and then nothing: past the request
/// timeout the call is answered, and at the next sweep its stream is reset,
/// freeing its slot; a younger call is left alone.
@Test func aRequestThatStopsArrivingIsEndedAfterTheRequestTimeout() throws {
    let h = try Harness()
    let headers = [
        HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", "/test.Echo/Echo"),
        HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
    ]
    let stalled = try h.client.sendRequestHead(headers: headers)
    try h.pump()
    #expect(h.server.openCallCount == 1)
    h.loop.advance(byNanos: 20_000_000_000)
    let younger = try h.client.sendRequestHead(headers: headers)
    try h.pump()
    #expect(h.server.expireStalledRequests(olderThan: 30_000_000_000) == 0)
    h.loop.advance(byNanos: 11_000_000_000)
    #expect(h.server.expireStalledRequests(olderThan: 30_000_000_000) == 1)
    try h.pump()
    #expect(h.status(stalled) == GRPCStatus.Code.deadlineExceeded.rawValue)
    #expect(try h.reason(stalled) == "REQUEST_TIMEOUT")
    #expect(h.status(younger) == nil)
    #expect(h.server.openCallCount == 2)  // answered; its stream closes at the next sweep
    h.loop.advance(byNanos: 1_000_000_000)
    #expect(h.server.expireStalledRequests(olderThan: 30_000_000_000) == 1)
    try h.pump()
    #expect(h.server.openCallCount == 1)
    #expect(h.status(younger) == nil)
}

/// A request head for /test.Echo/Echo, for events handed to a server directly.
func echoRequestHead() -> HTTP2HeaderBlock {
    HTTP2HeaderBlock([
        HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", "/test.Echo/Echo"),
        HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
    ])
}

/// Two connections whose servers share a request buffer of `limit` bytes.
func twoConnectionsSharingABudget(of limit: Int) throws -> (Harness, Harness, BufferBudget) {
    var configuration = GRPCServerConfiguration()
    let budget = BufferBudget(limit: limit)
    configuration.requestBuffer = budget
    return (try Harness(configuration: configuration), try Harness(configuration: configuration), budget)
}

/// Two connections sharing a server-wide request buffer of 1,000 bytes:
/// each holds a partial message; the one whose bytes pass the shared limit
/// is refused (ENHANCE_YOUR_CALM), though it is under its own 64 MiB; bytes
/// are given back as messages go to their handlers and when a connection
/// closes. The budget is checked once a read's events are handled
/// (`checkRequestBudget`, from `receive`).
@Test func connectionsShareTheServersBufferBudget() throws {
    let (first, second, budget) = try twoConnectionsSharingABudget(of: 1_000)
    let head = echoRequestHead()
    let headBytes = head.listSize  // the header block counts too, until the handler has the call
    #expect(headBytes > 100 && headBytes < 400)
    // A message announcing 2,000 bytes, 600 of them sent, on each connection.
    let partial = Array(grpcFrame(Array(repeating: 7, count: 2_000)).prefix(600))
    try first.server.handle(.headers(streamID: 1, headers: head, endStream: false))
    #expect(budget.used == headBytes)
    try first.server.handle(.data(streamID: 1, bytes: partial))
    try first.server.checkRequestBudget()
    #expect(budget.used == 600 + headBytes)
    try second.server.handle(.headers(streamID: 1, headers: head, endStream: false))
    try second.server.handle(.data(streamID: 1, bytes: partial))
    #expect(throws: HTTP2Error.self) { try second.server.checkRequestBudget() }
    second.server.close()
    #expect(budget.used == 600 + headBytes)  // the refused connection's bytes given back on close
    // The rest of the first message, with its END_STREAM in the same read:
    // complete (5 bytes of prefix gone), then gone to its handler — over
    // the budget for a moment, never when it is checked.
    try first.server.handle(.data(streamID: 1, bytes: Array(grpcFrame(Array(repeating: 7, count: 2_000)).dropFirst(600))))
    #expect(budget.used == 2_000 + headBytes)
    try first.server.handle(.endStream(streamID: 1))
    #expect(budget.used == 0)
    try first.server.checkRequestBudget()
    first.server.close()
    #expect(budget.used == 0)
}

/// A connection that completes a request (its END_STREAM in the same read)
/// while other connections have the server's request buffer full is not
/// the one closed: it holds nothing once its request went to its handler.
@Test func aCompletedRequestIsNotClosedForABudgetOthersFilled() throws {
    let (hog, h, budget) = try twoConnectionsSharingABudget(of: 1_000)
    let head = echoRequestHead()
    try hog.server.handle(.headers(streamID: 1, headers: head, endStream: false))
    try hog.server.handle(.data(streamID: 1, bytes: Array(grpcFrame(Array(repeating: 7, count: 5_000)).prefix(1_200))))
    #expect(budget.used == 1_200 + head.listSize)
    let id = try h.call("/test.Echo/Inline", body: grpcFrame(Array(repeating: 1, count: 300)))  // through `receive`
    #expect(h.status(id) == 0)
    #expect(!h.events.contains { if case .goAway = $0 { true } else { false } })
    #expect(throws: HTTP2Error.self) { try hog.server.checkRequestBudget() }
    hog.server.close()
}

/// A harness whose connection buffers `perConnection` request bytes at most,
/// with a server-wide budget of 1,000,000 (and the configuration, for more).
func harnessWithRequestBuffer(perConnection: Int) throws -> (Harness, BufferBudget, GRPCServerConfiguration) {
    var configuration = GRPCServerConfiguration()
    configuration.maxBufferedRequestBytes = perConnection
    let budget = BufferBudget(limit: 1_000_000)
    configuration.requestBuffer = budget
    return (try Harness(configuration: configuration), budget, configuration)
}

/// A message complete but its stream not ended is still buffered: it counts
/// against the connection's limit and the server's budget until it goes to
/// its handler, or its stream closes. (Released when it completed, a peer
/// held 4 MiB a stream outside both limits until the request timeout.)
@Test func aCompleteMessageWhoseStreamHasNotEndedStillCountsAsBuffered() throws {
    let (h, budget, _) = try harnessWithRequestBuffer(perConnection: 10_000)
    let head = echoRequestHead()
    let message = grpcFrame(Array(repeating: 7, count: 4_000))
    for stream: Int32 in [1, 3] {
        try h.server.handle(.headers(streamID: stream, headers: head, endStream: false))
        try h.server.handle(.data(streamID: stream, bytes: message))
    }
    #expect(budget.used == 8_000 + 2 * head.listSize)
    // A stream closed (reset by the peer) gives its message (and headers) back.
    try h.server.handle(.streamClosed(streamID: 3, errorCode: 0x8))
    #expect(budget.used == 4_000 + head.listSize)
    try h.server.handle(.headers(streamID: 5, headers: head, endStream: false))
    try h.server.handle(.data(streamID: 5, bytes: message))
    try h.server.handle(.headers(streamID: 7, headers: head, endStream: false))
    // Past the connection's limit: that call is refused and its bytes dropped, not the connection.
    try h.server.handle(.data(streamID: 7, bytes: message))
    #expect(h.server.calls[7]?.responded == true)
    #expect(budget.used == 8_000 + 3 * head.listSize)  // its headers counted while the call is kept
    try h.server.handle(.data(streamID: 7, bytes: message))  // more of it: dropped
    #expect(budget.used == 8_000 + 3 * head.listSize)
    h.server.close()
    #expect(budget.used == 0)
}

/// A peer that never opens its flow-control window gets its response's
/// headers but never its DATA: the stream stays open. A request timeout
/// after the answer the stream is reset (CANCEL) and the call forgotten, so
/// the connection can idle out (such peers held connections for good).
@Test func aResponseThePeerNeverTakesIsResetAfterTheRequestTimeout() throws {
    var limits = HTTP2Limits()
    limits.initialStreamWindow = 0
    let h = try Harness(clientLimits: limits)
    let id = try h.call("/test.Echo/Inline", body: grpcFrame([1, 2, 3]))
    #expect(h.body(id).isEmpty)  // the window is shut
    #expect(h.server.openCallCount == 1)
    // A sweep notes how much of the body went out; it has not moved since
    // for a request timeout at the sweep that resets it.
    h.loop.advance(byNanos: 1_000_000_000)
    #expect(h.server.expireStalledRequests(olderThan: 30_000_000_000) == 0)
    h.loop.advance(byNanos: 29_000_000_000)
    #expect(h.server.expireStalledRequests(olderThan: 30_000_000_000) == 0)
    h.loop.advance(byNanos: 2_000_000_000)
    #expect(h.server.expireStalledRequests(olderThan: 30_000_000_000) == 1)
    #expect(h.server.openCallCount == 0)
    try h.pump()
    #expect(h.events.contains { if case .streamClosed(let stream, let code) = $0 { stream == id && code == 0x8 } else { false } })
    #expect(h.server.http2.queuedResponseCount == 0)
}

/// A stream refused at its headers (unknown method, 415) whose request never
/// ends is reset (NO_ERROR) a request timeout later: a peer could otherwise
/// keep sending on it for good.
@Test func aRefusedStreamWhoseRequestNeverEndsIsResetAfterTheRequestTimeout() throws {
    let h = try Harness()
    var ids: [Int32] = []
    for (path, type) in [("/no.Such/Method", "application/grpc"), ("/test.Echo/Echo", "application/json")] {
        ids.append(try h.client.sendRequestHead(headers: [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", path),
            HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", type), HTTP2Header("te", "trailers"),
        ]))
    }
    try h.pump()
    #expect(h.status(ids[0]) == GRPCStatus.Code.unimplemented.rawValue)
    #expect(h.headers(ids[1]).first(":status") == "415")
    #expect(h.server.refusedOpen.count == 2)
    h.loop.advance(byNanos: 29_000_000_000)
    #expect(h.server.expireStalledRequests(olderThan: 30_000_000_000) == 0)
    h.loop.advance(byNanos: 2_000_000_000)
    #expect(h.server.expireStalledRequests(olderThan: 30_000_000_000) == 2)
    try h.pump()
    for id in ids { #expect(h.events.contains { if case .streamClosed(id, _) = $0 { true } else { false } }, "\(id)") }
    #expect(h.server.refusedOpen.isEmpty)
    // A refused request that did end leaves nothing behind.
    _ = try h.call("/no.Such/Method", body: grpcFrame([1]))
    #expect(h.server.refusedOpen.isEmpty)
}

/// A large response to a slow reader keeps moving: each sweep that finds
/// more of it sent starts the count again, so it is not cut off.
@Test func aResponseStillMovingIsNotReset() throws {
    var limits = HTTP2Limits()
    limits.initialStreamWindow = 0
    limits.automaticWindowUpdates = false
    let h = try Harness(clientLimits: limits)
    let id = try h.call("/test.Echo/Inline", body: grpcFrame(Array(repeating: 7, count: 4_000)))
    #expect(h.server.expireStalledRequests(olderThan: 30_000_000_000) == 0)  // noted: nothing sent
    for _ in 0..<3 {
        h.loop.advance(byNanos: 25_000_000_000)
        // The reader takes 1,000 bytes more.
        h.client.grantWindow(streamID: id, bytes: 1_000)
        try h.pump()
        #expect(h.server.expireStalledRequests(olderThan: 30_000_000_000) == 0)
    }
    #expect(h.server.openCallCount == 1)
    #expect(h.body(id).count >= 3_000)
}

/// HEADERS, DATA(END_STREAM) and RST_STREAM in one read: nghttp2 closes the
/// stream before the inline handler answers. The answer is not queued (a
/// body kept for a closed stream was never freed: ~90 bytes a call, for
/// the connection's life).
@Test func aCallResetInTheSameReadLeavesNoResponseQueued() throws {
    let h = try Harness()
    for path in ["/test.Echo/Inline", "/test.Echo/DeferredNow"] {
        let id = try h.client.sendRequest(headers: [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", path),
            HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
        ], body: grpcFrame([1]))
        var bytes: [UInt8] = []
        try h.client.drainOutput(into: &bytes)  // HEADERS, DATA (END_STREAM)
        h.client.resetStream(id, errorCode: 0x8)
        try h.client.drainOutput(into: &bytes)  // RST_STREAM
        try h.loop.drive { try bytes.withUnsafeBytes { try h.server.receive($0) } }  // in one read
        try h.pump()
        #expect(h.server.openCallCount == 0, "\(path)")
        #expect(h.server.http2.queuedResponseCount == 0, "\(path)")
    }
    // The connection still serves.
    let id = try h.call("/test.Echo/Inline", body: grpcFrame([4]))
    #expect(h.status(id) == 0)
    #expect(h.server.http2.queuedResponseCount == 0)
}

/// A limit of the gRPC layer (the server-wide request buffer) ends the
/// connection with GOAWAY ENHANCE_YOUR_CALM, as nghttp2's own limits do.
@Test func theRequestBufferLimitSendsGoAwayEnhanceYourCalm() throws {
    var configuration = GRPCServerConfiguration()
    configuration.requestBuffer = BufferBudget(limit: 600)  // the headers fit, not with 500 bytes more
    let h = try Harness(configuration: configuration)
    let id = try h.client.sendRequestHead(headers: [
        HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", "/test.Echo/Echo"),
        HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
    ])
    try h.pump()
    // A DATA frame by hand (the client session sends whole messages only): 500 bytes of a 1,000-byte message.
    let payload = Array(grpcFrame(Array(repeating: 7, count: 1_000)).prefix(500))
    let toServer: [UInt8] = [0, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF), 0, 0,
                             0, 0, UInt8(id >> 8), UInt8(id & 0xFF)] + payload
    #expect(throws: HTTP2Error.self) { try toServer.withUnsafeBytes { try h.server.receive($0) } }
    var toClient: [UInt8] = []
    try h.server.drainOutput(into: &toClient)
    let events = try h.client.receive(toClient)
    #expect(events.contains { if case .goAway(_, 0xB) = $0 { true } else { false } })
}

/// Streams holding header blocks alone (HPACK makes them cheap to send:
/// a 16 KiB block is a few bytes of references) count against the
/// connection's request buffer and the server's budget, as messages do,
/// until their calls go to their handlers or their streams close.
@Test func headerBlocksAloneCountAgainstTheRequestBuffers() throws {
    let (h, budget, configuration) = try harnessWithRequestBuffer(perConnection: 2_000)
    let head = echoRequestHead()
    let fit = 2_000 / head.listSize
    for index in 0..<fit {
        try h.server.handle(.headers(streamID: Int32(2 * index + 1), headers: head, endStream: false))
    }
    #expect(budget.used == fit * head.listSize)
    // One more would pass the connection's limit: refused at its headers, holding nothing.
    try h.server.handle(.headers(streamID: Int32(2 * fit + 1), headers: head, endStream: false))
    #expect(h.server.openCallCount == fit && budget.used == fit * head.listSize)
    h.server.close()
    #expect(budget.used == 0)
    // A call gone to its handler holds none.
    let g = try Harness(configuration: configuration)
    let id = try g.call("/test.Echo/DeferredLater", body: grpcFrame([1]))
    #expect(g.status(id) == nil && g.server.bufferedRequestBytes == 0)
}

/// A gRPC request's header block for `path` (and `extra` metadata).
func callHeaders(_ path: String, extra: [HTTP2Header] = []) -> [HTTP2Header] {
    [
        HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", path),
        HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
    ] + extra
}

/// A DATA frame by hand (the client session sends whole messages only).
func dataFrame(_ streamID: Int32, _ bytes: some Collection<UInt8>, endStream: Bool) -> [UInt8] {
    [0, UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF), 0, endStream ? 1 : 0,
     0, 0, UInt8(streamID >> 8), UInt8(streamID & 0xFF)] + bytes
}

/// A WINDOW_UPDATE frame for `streamID` (RFC 9113 §6.9), as a peer may
/// send it whatever its window: `increment` 0x7fffffff overflows a stream's.
func windowUpdateFrame(streamID: Int32, increment: UInt32) -> [UInt8] {
    let id = UInt32(streamID)
    return [0, 0, 4, 0x8, 0,
            UInt8(id >> 24), UInt8(truncatingIfNeeded: id >> 16), UInt8(truncatingIfNeeded: id >> 8), UInt8(truncatingIfNeeded: id),
            UInt8(increment >> 24), UInt8(truncatingIfNeeded: increment >> 16), UInt8(truncatingIfNeeded: increment >> 8),
            UInt8(truncatingIfNeeded: increment)]
}

/// A call whose deadline has passed when its request completes (grpc-timeout
/// 0n here) is answered DEADLINE_EXCEEDED without running its handler: the
/// timer fires only on a later turn, after a handler (a debit) would have run.
@Test func aCallWhoseDeadlinePassedBeforeItsRequestEndedIsNotRun() throws {
    let h = try Harness()
    for timeout in ["0n", "0S"] {
        let id = try h.call("/test.Echo/DeferredLater", body: grpcFrame([1]), extra: [HTTP2Header("grpc-timeout", timeout)])
        #expect(h.status(id) == GRPCStatus.Code.deadlineExceeded.rawValue, "\(timeout)")
        #expect(h.parked.responders.withLock { $0.isEmpty }, "\(timeout): the handler ran")
    }
    // Headers with a 5 ms deadline, the request's end 10 ms later.
    let id = try h.client.sendRequest(headers: callHeaders("/test.Echo/DeferredLater", extra: [HTTP2Header("grpc-timeout", "5m")]), body: grpcFrame([1]))
    var bytes: [UInt8] = []
    try h.client.drainOutput(into: &bytes)
    let split = bytes.count - 9 - grpcFrame([1]).count  // the DATA frame: 9 bytes of header and the message
    try h.loop.drive { try Array(bytes[..<split]).withUnsafeBytes { try h.server.receive($0) } }
    h.loop.advance(byNanos: 10_000_000)
    try h.loop.drive { try Array(bytes[split...]).withUnsafeBytes { try h.server.receive($0) } }
    try h.pump()
    #expect(h.status(id) == GRPCStatus.Code.deadlineExceeded.rawValue)
    #expect(h.parked.responders.withLock { $0.isEmpty }, "the handler ran")
    // A deadline still ahead runs it.
    let ahead = try h.call("/test.Echo/DeferredNow", body: grpcFrame([2]), extra: [HTTP2Header("grpc-timeout", "1S")])
    #expect(h.status(ahead) == 0)
}

/// "MadeYouReset" (CVE-2025-8671): a request complete on a stream the peer
/// breaks in the same read (a WINDOW_UPDATE overflowing its window: nghttp2
/// resets it) does not go to its handler.
@Test func aRequestOnAStreamThePeerBrokeInTheSameReadIsNotRun() throws {
    let h = try Harness()
    let id = try h.client.sendRequest(headers: callHeaders("/test.Echo/DeferredLater"), body: grpcFrame([1]))
    var bytes: [UInt8] = []
    try h.client.drainOutput(into: &bytes)  // HEADERS, DATA (END_STREAM)
    bytes += windowUpdateFrame(streamID: id, increment: 0x7fff_ffff)
    try h.loop.drive { try bytes.withUnsafeBytes { try h.server.receive($0) } }  // in one read
    try h.pump()
    #expect(h.parked.responders.withLock { $0.isEmpty }, "the handler ran")
    #expect(h.events.contains { if case .streamClosed(id, let code) = $0 { code == 0x3 } else { false } })  // FLOW_CONTROL_ERROR
    #expect(h.server.openCallCount == 0)
    let next = try h.call("/test.Echo/DeferredNow", body: grpcFrame([4]))
    #expect(h.status(next) == 0)
}

/// A method's admission runs at the call's headers: refused there, the call
/// is answered before any of its request arrives and its request bytes are
/// dropped as they come (never buffered); admitted, the handler gets what
/// the admission returned.
@Test func anAdmissionRefusesAtTheHeadersAndHoldsNoRequestBytes() throws {
    let h = try Harness()
    let id = try h.client.sendRequestHead(headers: callHeaders("/test.Echo/Admitted"))
    try h.pump()
    #expect(h.status(id) == GRPCStatus.Code.unauthenticated.rawValue)  // before any request byte
    #expect(try h.reason(id) == "MISSING_CREDENTIALS")
    // The request's bytes come anyway: dropped, not buffered.
    let payload = Array(grpcFrame(Array(repeating: 7, count: 10_000)).prefix(8_000))
    let data = dataFrame(id, payload, endStream: false)
    try h.loop.drive { try data.withUnsafeBytes { try h.server.receive($0) } }
    #expect(h.server.bufferedRequestBytes == 0)
    #expect(h.server.openCallCount == 0)

    let admitted = try h.call("/test.Echo/Admitted", body: grpcFrame([1]), extra: [HTTP2Header("x-key", "ok")])
    #expect(h.status(admitted) == 0)
    #expect(h.body(admitted) == grpcFrame([7]))
}

/// A call without a grpc-timeout (or with a longer one) still ends at the
/// server's limit (`maxCallNanos`, checked by the once-a-second sweep): a
/// handler that never answers (a hung payment gateway) held its stream, a
/// handler slot and its connection for good.
@Test func aCallEndsAtTheServersLimitWhateverItsTimeout() async throws {
    var configuration = GRPCServerConfiguration()
    configuration.maxCallNanos = 1_000_000_000
    let h = try Harness(configuration: configuration)
    let bare = try h.call("/test.Echo/Sleep", body: grpcFrame([]))
    let longer = try h.call("/test.Echo/Sleep", body: grpcFrame([]), extra: [HTTP2Header("grpc-timeout", "10S")])
    let shorter = try h.call("/test.Echo/Sleep", body: grpcFrame([]), extra: [HTTP2Header("grpc-timeout", "500m")])
    h.loop.advance(byNanos: 600_000_000)
    #expect(h.server.expireStalledRequests(olderThan: 30_000_000_000) == 0)
    try h.pump()
    #expect(h.status(shorter) == GRPCStatus.Code.deadlineExceeded.rawValue)
    #expect(try h.reason(shorter) == "DEADLINE_EXCEEDED")  // the caller's own, first
    #expect(h.status(bare) == nil && h.status(longer) == nil)
    h.loop.advance(byNanos: 500_000_000)
    #expect(h.server.expireStalledRequests(olderThan: 30_000_000_000) == 2)
    try h.pump()
    for id in [bare, longer] {
        #expect(h.status(id) == GRPCStatus.Code.deadlineExceeded.rawValue)
        #expect(try h.reason(id) == "CALL_TIMEOUT")
    }
    for _ in 0..<3 { await h.loop.runNext() }  // the cancelled handlers report back
    try h.pump()
    #expect(h.server.openCallCount == 0 && h.server.runningHandlers == 0)
}

/// Concurrent requests that together pass the connection's request buffer
/// limit (a client keeping to flow control can: nghttp2 opens the windows
/// as bytes arrive): the call whose bytes would pass it is refused,
/// RESOURCE_EXHAUSTED CONNECTION_BUFFER_FULL, and the others are served on
/// the same connection (it used to get GOAWAY, failing every call on it).
@Test func aConnectionPastItsRequestBufferRefusesTheCallNotTheConnection() throws {
    var configuration = GRPCServerConfiguration()
    configuration.maxBufferedRequestBytes = 10_000
    let h = try Harness(configuration: configuration)
    let headers = callHeaders("/test.Echo/Echo")
    let message = grpcFrame(Array(repeating: 7, count: 8_000))
    let first = try h.client.sendRequestHead(headers: headers)
    let second = try h.client.sendRequestHead(headers: headers)
    try h.pump()
    var bytes = dataFrame(first, message[..<6_000], endStream: false) + dataFrame(second, message[..<6_000], endStream: false)
    try h.loop.drive { try bytes.withUnsafeBytes { try h.server.receive($0) } }
    try h.pump()
    #expect(h.status(second) == GRPCStatus.Code.resourceExhausted.rawValue)
    #expect(try h.reason(second) == "CONNECTION_BUFFER_FULL")
    bytes = dataFrame(first, message[6_000...], endStream: true)
    try h.loop.drive { try bytes.withUnsafeBytes { try h.server.receive($0) } }
    try h.pump()
    #expect(h.status(first) == nil)  // its handler runs as a task
    #expect(!h.events.contains { if case .goAway = $0 { true } else { false } })
    // The refused call's header block, until its stream ends.
    #expect(h.server.bufferedRequestBytes == HTTP2HeaderBlock(headers).listSize)
    bytes = dataFrame(second, [UInt8](), endStream: true)
    try h.loop.drive { try bytes.withUnsafeBytes { try h.server.receive($0) } }
    try h.pump()
    #expect(h.server.bufferedRequestBytes == 0)
}

/// A request that completes after the server's call limit (a request
/// timeout longer than the limit lets it) is answered CALL_TIMEOUT without
/// running its handler: the sweep would have answered it after the
/// handler — a debit — had run.
@Test func aRequestCompletingPastTheServersCallLimitIsNotRun() throws {
    var configuration = GRPCServerConfiguration()
    configuration.maxCallNanos = 1_000_000_000
    let h = try Harness(configuration: configuration)
    let id = try h.client.sendRequest(headers: callHeaders("/test.Echo/DeferredLater"), body: grpcFrame([1]))
    var bytes: [UInt8] = []
    try h.client.drainOutput(into: &bytes)
    let split = bytes.count - 9 - grpcFrame([1]).count
    try h.loop.drive { try Array(bytes[..<split]).withUnsafeBytes { try h.server.receive($0) } }
    h.loop.advance(byNanos: 2_000_000_000)
    try h.loop.drive { try Array(bytes[split...]).withUnsafeBytes { try h.server.receive($0) } }
    try h.pump()
    #expect(h.status(id) == GRPCStatus.Code.deadlineExceeded.rawValue)
    #expect(try h.reason(id) == "CALL_TIMEOUT")
    #expect(h.parked.responders.withLock { $0.isEmpty }, "the handler ran")
}

/// A harness whose client keeps its windows shut (initial window 0, no
/// window updates): every answer body stays queued on the server.
func harnessThatDoesNotRead(_ configuration: GRPCServerConfiguration) throws -> Harness {
    var limits = HTTP2Limits()
    limits.initialStreamWindow = 0
    limits.automaticWindowUpdates = false
    return try Harness(configuration: configuration, clientLimits: limits)
}

/// Answers a client does not read are held up to `maxHeldResponseBytes` a
/// connection: the next one is refused (RESOURCE_EXHAUSTED,
/// RESPONSES_NOT_READ) and its bytes dropped, a small one that fits still
/// goes, and what a reset stream held is given back.
@Test func answersAClientDoesNotReadAreHeldUpToALimit() throws {
    var configuration = GRPCServerConfiguration()
    configuration.maxHeldResponseBytes = 250_000
    let h = try harnessThatDoesNotRead(configuration)
    let large = grpcFrame(Array(repeating: 7, count: 100_000))
    let first = try h.call("/test.Echo/Inline", body: large)
    let second = try h.call("/test.Echo/Inline", body: large)
    #expect(h.server.heldResponseBytes == 200_000)  // (each answer's message; its 5-byte prefix is no copy)
    #expect(h.status(first) == nil && h.status(second) == nil)  // headers out, bodies waiting
    let third = try h.call("/test.Echo/Inline", body: large)
    #expect(h.status(third) == GRPCStatus.Code.resourceExhausted.rawValue)
    #expect(try h.reason(third) == "RESPONSES_NOT_READ")
    #expect(h.server.heldResponseBytes == 200_000)
    let small = try h.call("/test.Echo/Inline", body: grpcFrame(Array(repeating: 1, count: 1_000)))
    #expect(h.server.heldResponseBytes == 201_000)
    #expect(h.status(small) == nil)
    h.client.resetStream(first, errorCode: 0x8)
    try h.pump()
    #expect(h.server.heldResponseBytes == 101_000)
    let fourth = try h.call("/test.Echo/Inline", body: large)
    #expect(h.status(fourth) == nil)
}

/// The server-wide budget: a connection holding answers is refused one
/// that would pass it; a connection holding none still gets its answer;
/// a connection's bytes are given back when it closes.
@Test func connectionsShareTheServersBudgetForUnreadAnswers() throws {
    var configuration = GRPCServerConfiguration()
    let budget = BufferBudget(limit: 150_000)
    configuration.responseBuffer = budget
    let hog = try harnessThatDoesNotRead(configuration)
    let other = try harnessThatDoesNotRead(configuration)
    let large = grpcFrame(Array(repeating: 7, count: 100_000))
    let held = try hog.call("/test.Echo/Inline", body: large)
    #expect(hog.status(held) == nil && budget.used == 100_000)
    #expect(try other.call("/test.Echo/Inline", body: large) > 0)  // holds nothing: answered
    #expect(budget.used == 200_000)
    let refused = try hog.call("/test.Echo/Inline", body: large)
    #expect(hog.status(refused) == GRPCStatus.Code.resourceExhausted.rawValue)
    #expect(try hog.reason(refused) == "RESPONSES_NOT_READ")
    hog.server.close()
    #expect(budget.used == 100_000)
    other.server.close()
    #expect(budget.used == 0)
}

/// A peer that opens its window a byte at a time keeps an answer "moving"
/// past the stalled-response timeout; at the server's call limit the
/// stream is reset (CANCEL) and its bytes dropped.
@Test func anAnswerTrickledOutIsResetAtTheCallLimit() throws {
    var configuration = GRPCServerConfiguration()
    configuration.maxCallNanos = 60_000_000_000
    let h = try harnessThatDoesNotRead(configuration)
    let id = try h.call("/test.Echo/Inline", body: grpcFrame(Array(repeating: 7, count: 10_000)))
    #expect(h.server.heldResponseBytes == 10_000)
    for _ in 0..<5 {
        h.loop.advance(byNanos: 11_000_000_000)
        h.client.grantWindow(streamID: id, bytes: 1)
        try h.pump()
        #expect(h.server.expireStalledRequests(olderThan: 10_000_000_000) == 0)
    }
    h.loop.advance(byNanos: 11_000_000_000)  // 66 s after its headers, still trickling
    h.client.grantWindow(streamID: id, bytes: 1)
    try h.pump()
    #expect(h.server.heldResponseBytes == 10_000)
    #expect(h.server.expireStalledRequests(olderThan: 10_000_000_000) == 1)
    try h.pump()
    #expect(h.server.heldResponseBytes == 0 && h.server.openCallCount == 0)
    #expect(h.events.contains { if case .streamClosed(let stream, let code) = $0 { stream == id && code == 0x8 } else { false } })
}

/// A stream the peer opens after the final GOAWAY was submitted, read
/// before that GOAWAY went out, is refused (REFUSED_STREAM) unprocessed:
/// it was run, then dropped unanswered when the GOAWAY was written.
@Test func aStreamPastTheFinalGoAwayIsRefusedUnprocessed() throws {
    let h = try Harness()
    let served = try h.call("/test.Echo/Inline", body: grpcFrame([1]))
    #expect(h.status(served) == 0)
    h.server.beginGracefulShutdown(twoStep: false)  // GOAWAY(last = 1), queued, not written yet
    let late = try h.client.sendRequest(headers: [
        HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", "/test.Echo/Inline"),
        HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
    ], body: grpcFrame([2]))
    var toServer: [UInt8] = []
    try h.client.drainOutput(into: &toServer)
    try h.loop.drive { try toServer.withUnsafeBytes { try h.server.receive($0) } }
    #expect(h.server.openCallCount == 0)
    try h.pump()
    #expect(h.status(late) == nil)
    #expect(h.events.contains { if case .streamClosed(let stream, let code) = $0 { stream == late && code == 0x7 } else { false } })
    #expect(h.events.contains { if case .goAway = $0 { true } else { false } })
}

/// Calls admitted at their headers while under the running-handler limit,
/// whose requests then complete together, do not run past it: the limit
/// is checked again when a request is complete.
@Test func callsAdmittedUnderTheRunningLimitDoNotRunPastIt() throws {
    var configuration = GRPCServerConfiguration()
    configuration.maxRunningHandlersPerConnection = 2
    let h = try Harness(configuration: configuration)
    let headers = [
        HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", "/test.Echo/DeferredLater"),
        HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
    ]
    let parked = try h.call("/test.Echo/DeferredLater", body: grpcFrame([5]))  // one running
    let waiting = try (0..<3).map { _ in try h.client.sendRequestHead(headers: headers) }
    try h.pump()
    #expect(waiting.allSatisfy { h.status($0) == nil })  // all three admitted (one handler running)
    for id in waiting { try h.client.sendBody(streamID: id, body: grpcFrame([1])) }
    try h.pump()
    #expect(h.parked.responders.withLock { $0.count } == 2)  // the limit: two running
    let refused = waiting.filter { h.status($0) == GRPCStatus.Code.resourceExhausted.rawValue }
    #expect(refused.count == 2)
    #expect(try refused.allSatisfy { try h.reason($0) == "TOO_MANY_CALLS" })
    #expect(h.status(parked) == nil)
}

/// Answers made in one turn, before any output was taken, count too: one
/// turn may not queue past the limit (1,024 answers of 2 MiB could).
@Test func answersOfOneTurnCountTowardTheLimit() throws {
    var configuration = GRPCServerConfiguration()
    configuration.maxHeldResponseBytes = 250_000
    let h = try harnessThatDoesNotRead(configuration)
    let large = grpcFrame(Array(repeating: 7, count: 100_000))
    let headers = [
        HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", "/test.Echo/Inline"),
        HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
    ]
    let ids = try (0..<3).map { _ in try h.client.sendRequest(headers: headers, body: large) }
    try h.pump()  // the three requests in one read, answered before output is taken
    #expect(ids.prefix(2).allSatisfy { h.status($0) == nil })
    #expect(try h.reason(ids[2]) == "RESPONSES_NOT_READ")
    #expect(h.server.heldResponseBytes == 200_000)
}
