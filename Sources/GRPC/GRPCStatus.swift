public import BillingProto
import Foundation
import SwiftProtobuf

/// A gRPC status: the outcome of a call. Thrown by handlers to refuse a call;
/// `errorInfo` travels as a `google.rpc.Status` detail in
/// `grpc-status-details-bin`, so callers get a machine-readable reason.
public struct GRPCStatus: Error, Sendable, Equatable {
    public enum Code: Int, Sendable, CaseIterable {
        case ok = 0, cancelled, unknown, invalidArgument, deadlineExceeded, notFound, alreadyExists,
            permissionDenied, resourceExhausted, failedPrecondition, aborted, outOfRange,
            unimplemented, `internal`, unavailable, dataLoss, unauthenticated

        /// The canonical name, as in grpc-status documentation ("NOT_FOUND").
        public var name: String {
            ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
             "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
             "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"][rawValue]
        }
    }

    public var code: Code
    public var message: String
    public var errorInfo: Google_Rpc_ErrorInfo?

    public init(_ code: Code, _ message: String, reason: String? = nil, metadata: [String: String] = [:]) {
        self.code = code
        self.message = message
        if let reason {
            var info = Google_Rpc_ErrorInfo()
            info.reason = reason
            info.domain = GRPCStatus.errorDomain
            info.metadata = metadata
            self.errorInfo = info
        }
    }

    /// The most bytes of a message, and of each ErrorInfo metadata value, a
    /// response carries (`bounded`).
    public static let maxMessageBytes = 1_024
    public static let maxMetadataValueBytes = 256

    /// The status with its message and metadata values cut to their bounds
    /// (at a character, marked "…"): a message may quote what a client
    /// sent, and a header block past the peer's limit would never be sent,
    /// leaving the call unanswered.
    public func bounded() -> GRPCStatus {
        var bounded = self
        bounded.message = Self.cut(message, to: Self.maxMessageBytes)
        if let info = errorInfo, info.metadata.values.contains(where: { $0.utf8.count > Self.maxMetadataValueBytes }) {
            bounded.errorInfo?.metadata = info.metadata.mapValues { Self.cut($0, to: Self.maxMetadataValueBytes) }
        }
        return bounded
    }

    public static func cut(_ text: String, to limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var kept = ""
        var bytes = 0
        for character in text {
            let size = character.utf8.count
            guard bytes + size <= limit - 3 else { break }  // room for "…" (3 bytes)
            kept.append(character)
            bytes += size
        }
        return kept + "…"
    }

    /// ErrorInfo.domain for every reason this service emits.
    public static let errorDomain = "billing.v1"

    /// The trailer value of `grpc-status-details-bin`: a serialized
    /// google.rpc.Status, base64 without padding (the gRPC spec's preference).
    func detailsHeaderValue() -> String? {
        guard let bytes = detailsBytes() else { return nil }
        var encoded = Data(bytes).base64EncodedString()
        while encoded.last == "=" { encoded.removeLast() }
        return encoded
    }

    /// The serialized google.rpc.Status carrying `errorInfo` packed in an
    /// Any, written by hand (SwiftProtobuf packing the Any — ErrorInfo
    /// serialized, then the Status with its size pass — was ~30 % of a
    /// refused call). Metadata entries are written in key order; every
    /// decoder reads the same message as SwiftProtobuf's bytes give
    /// (`StatusDetailsTests`).
    func detailsBytes() -> [UInt8]? {
        guard let errorInfo else { return nil }
        guard errorInfo.unknownFields.data.isEmpty else {
            var status = Google_Rpc_Status()
            status.code = Int32(code.rawValue)
            status.message = message
            guard let any = try? Google_Protobuf_Any(message: errorInfo),
                  let bytes: [UInt8] = try? { status.details = [any]; return try status.serializedBytes() }()
            else { return nil }
            return bytes
        }
        var out = ProtobufWriter(capacity: 96 + message.utf8.count + errorInfo.reason.utf8.count + errorInfo.domain.utf8.count
            + errorInfo.metadata.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 8 })
        out.int64(1, Int64(code.rawValue))
        out.string(2, message)
        out.message(3) { any in
            any.string(1, "type.googleapis.com/google.rpc.ErrorInfo")
            any.message(2) { info in
                info.string(1, errorInfo.reason)
                info.string(2, errorInfo.domain)
                for (key, value) in errorInfo.metadata.sorted(by: { $0.key < $1.key }) {
                    info.message(3) { entry in
                        entry.string(1, key, always: true)
                        entry.string(2, value, always: true)
                    }
                }
            }
        }
        return out.finish()
    }
}
