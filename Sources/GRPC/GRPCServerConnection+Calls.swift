import HTTP2
import Logging

extension GRPCServerConnection {
    /// Starts the call, or refuses the stream (answered at once); whether it started.
    func startCall(streamID: Int32, headers: HTTP2HeaderBlock) -> Bool {
        // Past the final GOAWAY already submitted: not processed, as it says
        // (REFUSED_STREAM: the client may retry it elsewhere).
        if http2.isPastGoAway(streamID) {
            http2.resetStream(streamID, errorCode: 0x7)
            return false
        }
        let request = GRPCRequestHead(headers, knownPath: lastRoute?.path)
        guard request.isPost else {
            respondHTTP(streamID, status: "405")
            return false
        }
        guard request.isGRPC else {
            // gRPC spec: a non-gRPC content type gets HTTP 415, not a gRPC status.
            respondHTTP(streamID, status: "415")
            return false
        }
        let path = request.path
        // Messages are protobuf: "+json" (or any other codec) would be
        // decoded as protobuf and fail as a malformed request, or worse.
        if let subtype = request.subtype, subtype != "proto" {
            sendStatus(streamID, GRPCStatus(.unimplemented,
                "content-type application/grpc+\(subtype.prefix(32)) is not supported; messages are protobuf (application/grpc or application/grpc+proto)",
                reason: "UNSUPPORTED_CONTENT_TYPE"), path: path)
            return false
        }
        let method: GRPCMethod
        let admission: GRPCAdmission?
        if request.pathIsKnown, let last = lastRoute {
            (method, admission) = (last.method, last.admission)
        } else {
            guard let found = router.method(for: path) else {
                sendStatus(streamID, GRPCStatus(.unimplemented, "method \(path) is not implemented", reason: "METHOD_NOT_FOUND"), path: path)
                return false
            }
            (method, admission) = (found, router.admission(for: path))
            lastRoute = (path, found, admission)
        }
        if let encoding = request.encoding, encoding != "identity" {
            sendStatus(streamID, GRPCStatus(.unimplemented, "message encoding \(encoding) is not supported", reason: "UNSUPPORTED_ENCODING"),
                       extra: [HTTP2Header("grpc-accept-encoding", "identity")], path: path)
            return false
        }
        var deadline: UInt64?
        if let timeout = request.timeout {
            guard let nanos = parseGRPCTimeout(timeout) else {
                sendStatus(streamID, GRPCStatus(.invalidArgument, "malformed grpc-timeout \"\(timeout)\"", reason: "INVALID_TIMEOUT"), path: path)
                return false
            }
            let (sum, overflow) = loop.nowNanos.addingReportingOverflow(nanos)
            deadline = overflow ? UInt64.max : sum
        }

        // The caller's credentials, before any of its request is read.
        var admitted: (any Sendable)?
        if let admission {
            do {
                admitted = try admission(GRPCCallContext(path: path, headers: headers, deadlineNanos: deadline, peer: peer))
            } catch {
                sendStatus(streamID, error, path: path)
                return false
            }
        }
        // This connection's request buffer full (calls still arriving hold
        // it): the new call is refused, not the connection.
        guard bufferedRequestBytes + headers.listSize <= configuration.maxBufferedRequestBytes else {
            sendStatus(streamID, connectionBufferFull(), path: path)
            return false
        }
        guard runningHandlers < configuration.maxRunningHandlersPerConnection else {
            sendStatus(streamID, tooManyCalls, path: path)
            return false
        }
        let call = Call(streamID: streamID, path: path, method: method, metadata: headers,
                        deadlineNanos: deadline, startedNanos: loop.nowNanos,
                        maxMessageSize: configuration.maxReceiveMessageSize)
        calls[streamID] = call
        call.admitted = admitted
        lastCallNanos = call.startedNanos
        call.heldHeaderBytes = headers.listSize
        bufferedRequestBytes += call.heldHeaderBytes
        configuration.metrics?.openCalls.add(1, ordering: .relaxed)
        if let deadline {
            call.timer = loop.schedule(atNanos: deadline) { [weak self] in
                self?.deadlineExpired(streamID)
            }
        }
        return true
    }

    func receiveData(streamID: Int32, bytes: [UInt8]) throws {
        guard let call = calls[streamID], !call.responded, !call.dispatched else { return }
        // Past this connection's limit (its calls' requests together): this
        // call is refused and its bytes dropped; the connection and its
        // other calls go on. (nghttp2 opens the flow-control windows as bytes
        // arrive, so a client keeping to them can still send concurrent
        // requests past the limit: those get a status to retry, not a
        // GOAWAY for every call on the connection.)
        guard bufferedRequestBytes + bytes.count <= configuration.maxBufferedRequestBytes else {
            sendStatus(streamID, connectionBufferFull())
            // (Its header block stays counted while the call is kept, until
            // its stream ends or the sweep resets it.)
            bufferedRequestBytes -= call.deframer.bufferedCount + call.heldMessageBytes
            call.deframer = GRPCMessageDeframer(maxMessageSize: configuration.maxReceiveMessageSize)
            call.message = nil
            return
        }
        call.deframer.append(bytes)
        bufferedRequestBytes += bytes.count
        let before = call.deframer.bufferedCount
        var held = 0
        do {
            while let message = try call.deframer.next() {
                guard call.message == nil else {
                    sendStatus(streamID, GRPCStatus(.internal, "more than one request message for a unary method", reason: "MALFORMED_MESSAGE"))
                    break
                }
                call.message = message
                // Still held, until the stream ends and it goes to its
                // handler: counted as buffered bytes till then (a peer that
                // completes messages without ending their streams held
                // 4 MiB a stream outside both limits).
                held += message.bytes.count
            }
        } catch .tooLarge(let length, let limit) {
            sendStatus(streamID, GRPCStatus(
                .resourceExhausted, "request message of \(length) bytes exceeds the limit of \(limit) bytes",
                reason: "MESSAGE_TOO_LARGE", metadata: ["limit_bytes": String(limit)]))
        } catch .badFlags(let flags) {
            sendStatus(streamID, GRPCStatus(.internal, "invalid message flags 0x\(String(flags, radix: 16))", reason: "MALFORMED_MESSAGE"))
        }
        // One change: what the deframer gave up, less the message it became.
        bufferedRequestBytes += held - (before - call.deframer.bufferedCount)
    }

    func callTimedOut(_ cap: UInt64) -> GRPCStatus {
        GRPCStatus(.deadlineExceeded, "the call ran past the server's limit of \(cap / 1_000_000_000) s", reason: "CALL_TIMEOUT")
    }

    /// The refusal of a call that would take this connection's request
    /// bytes (headers and messages of calls not yet handed to their
    /// handlers) past its limit.
    func connectionBufferFull() -> GRPCStatus {
        GRPCStatus(.resourceExhausted,
                   "this connection's requests in progress hold \(configuration.maxBufferedRequestBytes) bytes; retry once they are answered",
                   reason: "CONNECTION_BUFFER_FULL", metadata: ["limit_bytes": String(configuration.maxBufferedRequestBytes)])
    }

    /// The server-wide request buffer past its limit ends this connection
    /// if it holds request bytes itself. Checked once a read's events are
    /// handled (`receive`): a message whose END_STREAM came in the same read
    /// has gone to its handler by then and no longer counts — checked at
    /// each DATA, such a connection was closed for a request it had
    /// already completed.
    func checkRequestBudget() throws {
        if let budget = configuration.requestBuffer, budget.used > budget.limit, bufferedRequestBytes > 0 {
            throw HTTP2Error.enhanceYourCalm("the server's request buffers are full (\(budget.limit) bytes)")
        }
    }

    func finishRequest(_ streamID: Int32) {
        guard let call = calls[streamID], !call.responded, !call.dispatched else { return }
        // The peer broke the protocol on this stream in the same read: its
        // reset is the answer; the handler does not run.
        if http2.streamFailed(streamID) {
            forget(streamID)
            return
        }
        // A deadline already past (grpc-timeout 0, or a request slower to
        // arrive than its deadline): answered without running the handler
        // (its timer would fire only on a later turn, after the handler —
        // a debit — had run). So is the server's call limit (a request
        // timeout longer than it let a request arrive after it).
        if let deadline = call.deadlineNanos, loop.nowNanos >= deadline {
            deadlineExpired(streamID)
            return
        }
        if let cap = configuration.maxCallNanos, loop.nowNanos &- call.startedNanos > cap {
            sendStatus(streamID, callTimedOut(cap))
            return
        }
        guard let message = call.message, call.deframer.bufferedCount == 0 else {
            let what = call.message == nil ? "no request message" : "a truncated request message"
            sendStatus(streamID, GRPCStatus(.internal, "stream ended with \(what)", reason: "MALFORMED_MESSAGE"))
            return
        }
        guard !message.compressed else {
            // gRPC spec: the compressed flag without a negotiated grpc-encoding is INTERNAL.
            sendStatus(streamID, GRPCStatus(.internal, "compressed message but no grpc-encoding was sent", reason: "MALFORMED_MESSAGE"))
            return
        }
        // Checked at the headers too, but calls admitted then whose
        // requests complete together could pass it (twice the limit).
        guard runningHandlers < configuration.maxRunningHandlersPerConnection else {
            sendStatus(streamID, tooManyCalls)
            return
        }
        dispatch(call, request: message.bytes)
    }

    var tooManyCalls: GRPCStatus {
        GRPCStatus(.resourceExhausted, "too many calls in progress on this connection", reason: "TOO_MANY_CALLS")
    }

    func dispatch(_ call: Call, request: [UInt8]) {
        runningHandlers += 1
        call.dispatched = true
        bufferedRequestBytes -= call.heldMessageBytes + call.heldHeaderBytes  // the handler's now
        call.heldHeaderBytes = 0
        call.message = nil
        let context = GRPCCallContext(path: call.path, headers: call.metadata,
                                      deadlineNanos: call.deadlineNanos, peer: peer, admitted: call.admitted)
        let streamID = call.streamID
        let logger = self.logger
        switch call.method {
        case .inline(let handler):
            handlerFinished(streamID, Self.outcome(logger, context) { try handler(request, context) })
        case .task(let handler, let placement):
            call.task = startTask(handler, placement: placement, request: request, context: context, streamID: streamID)
        case .deferred(let handler, let limit, _) where request.count <= limit:
            handler(request, context, GRPCResponder(
                connection: LoopBound(value: self), loop: loop, streamID: streamID, context: context, logger: logger))
        case .deferred(_, _, let otherwise):
            call.task = startTask(otherwise, placement: .pool, request: request, context: context, streamID: streamID)
        }
    }

    /// Runs `handler` as a task on Swift's global concurrent executor (a
    /// handler that blocks cannot stall other connections), or, placed on
    /// the loop, on the loop's executor. Its outcome comes back to
    /// `handlerFinished` on the loop.
    func startTask(_ handler: @escaping GRPCUnaryHandler, placement: GRPCHandlerPlacement, request: [UInt8],
                   context: GRPCCallContext, streamID: Int32) -> Task<Void, Never> {
        let bound = LoopBound(value: self)
        let loop = self.loop
        let logger = self.logger
        let executor = placement.onLoop(requestBytes: request.count) ? loop.handlerExecutor : nil
        return Task(executorPreference: executor ?? PoolExecutor.shared) {
            let outcome: Result<[UInt8], GRPCStatus>
            do {
                outcome = .success(try await handler(request, context))
            } catch {
                outcome = GRPCServerConnection.failure(error, logger, context)
            }
            if loop.inEventLoop {
                bound.value.handlerFinished(streamID, outcome)
            } else {
                loop.execute { bound.value.handlerFinished(streamID, outcome) }
            }
        }
    }

    static func outcome(_ logger: Logger, _ context: GRPCCallContext, _ body: () throws -> [UInt8]) -> Result<[UInt8], GRPCStatus> {
        do {
            return .success(try body())
        } catch {
            return failure(error, logger, context)
        }
    }

    /// A handler's error as the status the caller gets.
    static func failure(_ error: any Error, _ logger: Logger, _ context: GRPCCallContext) -> Result<[UInt8], GRPCStatus> {
        if let status = error as? GRPCStatus { return .failure(status) }
        if error is CancellationError { return .failure(GRPCStatus(.cancelled, "call cancelled", reason: "CANCELLED")) }
        // Not a refusal: a bug or an I/O failure. The caller gets a generic
        // message; the details go to the log only.
        logger.error("handler failed", metadata: ["method": "\(context.path)", "error": "\(error)"])
        return .failure(GRPCStatus(.internal, "internal error"))
    }

    func handlerFinished(_ streamID: Int32, _ outcome: Result<[UInt8], GRPCStatus>) {
        runningHandlers -= 1
        guard !isClosed, let call = calls[streamID], !call.responded else { return }
        switch outcome {
        case .success(let response):
            if let refusal = unreadAnswersRefusal(adding: response.count) {
                sendStatus(streamID, refusal)
                break
            }
            call.responded = true
            call.answeredNanos = loop.nowNanos
            cancelTimer(call)
            // Counted OK only once submitted: a stream its client already
            // reset takes no answer, and is counted CANCELLED when forgotten
            // (session 29: counted OK, an answer nobody got).
            guard (try? http2.sendResponse(
                streamID: streamID, headers: Self.preparedResponseHeaders,
                head: grpcPrefix(count: response.count), headCount: 5, body: response,
                trailers: Self.preparedOKTrailers)) != nil else { break }
            call.counted = true
            configuration.metrics?.record(path: call.path, code: .ok, nanos: loop.nowNanos &- call.startedNanos)
        case .failure(let status):
            sendStatus(streamID, status)
        }
        host?.connectionHasOutput()
    }

    /// An answer of `count` bytes refused because the peer is not taking
    /// those queued before it (its flow-control windows kept shut): this
    /// connection's would pass `maxHeldResponseBytes`, or the server's
    /// `responseBuffer` — answers made in this loop turn, not written yet,
    /// count too: else one turn could queue 1,024 of them. A connection
    /// holding none always gets its answer (any one answer fits a stock
    /// client's 4 MiB). The handler's work is done (a debit is recorded:
    /// `GetDebit` settles it, as after a deadline).
    func unreadAnswersRefusal(adding count: Int) -> GRPCStatus? {
        let held = http2.heldBodyBytes
        guard held > 0 else { return nil }
        let limit: Int
        if held + count > configuration.maxHeldResponseBytes {
            limit = configuration.maxHeldResponseBytes
        } else if let budget = configuration.responseBuffer, budget.used + count > budget.limit {
            limit = budget.limit
        } else {
            return nil
        }
        return GRPCStatus(.resourceExhausted,
                          "\(held) bytes of answers wait for this connection's client to read them (limit \(limit)); read them, then retry",
                          reason: "RESPONSES_NOT_READ", metadata: ["held_bytes": String(held), "limit_bytes": String(limit)])
    }

    /// Ends the calls whose request has not finished arriving
    /// `timeoutNanos` after its headers (a peer that stopped sending, or
    /// never sent END_STREAM after a refusal), so they hold no buffered
    /// bytes and do not keep the connection from idling out. A call not yet
    /// answered is answered DEADLINE_EXCEEDED, reason REQUEST_TIMEOUT, and
    /// its buffered bytes dropped; one already answered has its stream reset
    /// (NO_ERROR: the response is complete — at the next sweep, not with the
    /// answer, which nghttp2 would drop). Calls whose handler runs are left
    /// to their deadline. A call answered `timeoutNanos` ago whose stream is
    /// still open has a response the peer will not take (its flow-control
    /// window stays shut): the stream is reset (CANCEL) and the call
    /// forgotten, or such peers would hold connections for good. Returns how
    /// many calls it acted on.
    @discardableResult
    public func expireStalledRequests(olderThan timeoutNanos: UInt64) -> Int {
        let now = loop.nowNanos
        var expired = 0
        for (streamID, call) in calls {
            if call.dispatched {
                guard call.responded else {
                    // Running past the server's limit (checked here, once a
                    // second, rather than with a timer per call).
                    if let cap = configuration.maxCallNanos, now &- call.startedNanos > cap {
                        call.task?.cancel()
                        sendStatus(streamID, callTimedOut(cap))
                        expired += 1
                    }
                    continue
                }
                // An answer still not taken at the server's call limit (a
                // peer opening its window a byte at a time, to keep it
                // "moving"): its stream is reset and its bytes dropped.
                if let cap = configuration.maxCallNanos, now &- call.startedNanos > cap, http2.sentResponseBytes(streamID) != nil {
                    http2.resetStream(streamID, errorCode: 0x8)  // CANCEL
                    forget(streamID)
                    expired += 1
                    continue
                }
                // Still moving (a large answer to a slow reader): not stuck.
                let sent = http2.sentResponseBytes(streamID) ?? -1
                if sent != call.sentAtSweep {
                    (call.sentAtSweep, call.answeredNanos) = (sent, now)
                    continue
                }
                guard now &- call.answeredNanos > timeoutNanos else { continue }
                http2.resetStream(streamID, errorCode: 0x8)  // CANCEL
                forget(streamID)
            } else {
                guard now &- call.startedNanos > timeoutNanos else { continue }
                if call.responded {
                    http2.resetStream(streamID, errorCode: 0)
                } else {
                    sendStatus(streamID, GRPCStatus(
                        .deadlineExceeded, "the request did not arrive within \(timeoutNanos / 1_000_000_000) s",
                        reason: "REQUEST_TIMEOUT"))
                    bufferedRequestBytes -= call.deframer.bufferedCount + call.heldMessageBytes
                    call.deframer = GRPCMessageDeframer(maxMessageSize: configuration.maxReceiveMessageSize)
                    call.message = nil
                }
            }
            expired += 1
        }
        for (streamID, refused) in refusedOpen where now &- refused > timeoutNanos {
            http2.resetStream(streamID, errorCode: 0)  // NO_ERROR: it was answered
            refusedOpen[streamID] = nil
            expired += 1
        }
        if expired > 0 { host?.connectionHasOutput() }
        return expired
    }

    func deadlineExpired(_ streamID: Int32) {
        guard let call = calls[streamID], !call.responded else { return }
        call.timer = nil
        call.task?.cancel()
        sendStatus(streamID, GRPCStatus(.deadlineExceeded, "deadline exceeded", reason: "DEADLINE_EXCEEDED"))
        host?.connectionHasOutput()
    }

    // MARK: Responses

    static let responseHeaders = [HTTP2Header(":status", "200"), HTTP2Header("content-type", "application/grpc")]
    static let preparedResponseHeaders = HTTP2PreparedHeaders(responseHeaders, permanent: true)
    static let preparedOKTrailers = HTTP2PreparedHeaders([HTTP2Header("grpc-status", "0")], permanent: true)

    /// A "trailers-only" response: one header block carrying the status.
    func sendStatus(_ streamID: Int32, _ status: GRPCStatus, extra: [HTTP2Header] = [], path: String? = nil) {
        let status = status.bounded()
        var headers = Self.responseHeaders
        headers.append(HTTP2Header("grpc-status", String(status.code.rawValue)))
        if !status.message.isEmpty {
            headers.append(HTTP2Header("grpc-message", percentEncodeGRPCMessage(status.message)))
        }
        if let details = status.detailsHeaderValue() {
            headers.append(HTTP2Header("grpc-status-details-bin", details))
        }
        headers.append(contentsOf: extra)
        // The stream may already be gone (client reset); nothing to answer
        // then, and nothing counted here: a call is counted CANCELLED when
        // forgotten (as `handlerFinished`'s answers).
        let sent = (try? http2.sendResponse(streamID: streamID, headers: headers)) != nil
        if let call = calls[streamID] {
            // Answered either way: no handler runs for it after this.
            call.responded = true
            call.answeredNanos = loop.nowNanos
            cancelTimer(call)
            guard sent else { return }
            call.counted = true
            configuration.metrics?.record(path: call.path, code: status.code, nanos: loop.nowNanos &- call.startedNanos)
        } else if !sent {
            // Refused before it was a call, its stream already reset: no
            // call will be forgotten for it, so it is counted here as what
            // its client saw (a diff review: counted nowhere).
            configuration.metrics?.record(path: path ?? "", code: .cancelled, nanos: nil)
            return
        } else {
            configuration.metrics?.record(path: path ?? "", code: status.code, nanos: nil)
        }
        configuration.metrics?.recordRefusal(status)
    }

    func respondHTTP(_ streamID: Int32, status: String) {
        try? http2.sendResponse(streamID: streamID, headers: [HTTP2Header(":status", status)])
    }

    func cancelTimer(_ call: Call) {
        if let timer = call.timer {
            loop.cancel(timer)
            call.timer = nil
        }
    }
}
