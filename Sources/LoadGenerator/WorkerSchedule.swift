/// What one connection does next — send a call, wait for answers, or stop —
/// given the time, passed in. The worker's loop asks it at every turn, so
/// the time bound, the count bound and the pacing are all decided here and
/// can be tested with a fake clock.
package struct WorkerSchedule: Sendable {
    package enum Step: Equatable, Sendable {
        /// Start a call now.
        case send
        /// Flush, then wait for answers (at most `pollTimeoutMillis`).
        case poll
        /// A bound is reached and every call was answered.
        case finish
        /// The grace after the time bound ran out with calls unanswered.
        case abandon
    }

    /// Calls still in flight this long after the time bound are abandoned:
    /// a stalled server cannot keep the tool running.
    package static let graceNanos: UInt64 = 2_000_000_000

    package let deadlineNanos: UInt64
    /// Calls this connection sends at most.
    package let requests: Int64
    package let streams: Int
    package let pacer: Pacer
    /// Calls started so far.
    package private(set) var sent: Int64 = 0

    package init(deadlineNanos: UInt64, requests: Int64, streams: Int, pacer: Pacer) {
        precondition(requests >= 0 && streams > 0)
        self.deadlineNanos = deadlineNanos
        self.requests = requests
        self.streams = streams
        self.pacer = pacer
    }

    /// The next step at `now` with `inFlight` calls unanswered.
    package func step(now: UInt64, inFlight: Int) -> Step {
        precondition((0...streams).contains(inFlight), "\(inFlight) calls in flight on \(streams) streams")
        let timeUp = now >= deadlineNanos
        if (timeUp || sent >= requests) && inFlight == 0 { return .finish }
        if now >= deadlineNanos + Self.graceNanos { return .abandon }
        if !timeUp && sent < requests && inFlight < streams && pacer.isDue(call: sent, at: now) { return .send }
        return .poll
    }

    /// Records that the call `step` asked for was started.
    package mutating func didSend() {
        precondition(sent < requests, "sent past the count bound")
        sent += 1
    }

    /// How long one poll waits for answers: short when paced, so that sends
    /// start on time; long enough otherwise not to spin.
    package var pollTimeoutMillis: Int32 { pacer.isPaced ? 1 : 50 }
}
