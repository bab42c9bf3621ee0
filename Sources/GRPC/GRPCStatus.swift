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

    /// ErrorInfo.domain for every reason this service emits.
    public static let errorDomain = "billing.v1"

    /// The trailer value of `grpc-status-details-bin`: a serialized
    /// google.rpc.Status, base64 without padding (the gRPC spec's preference).
    func detailsHeaderValue() -> String? {
        guard let errorInfo else { return nil }
        var status = Google_Rpc_Status()
        status.code = Int32(code.rawValue)
        status.message = message
        guard let any = try? Google_Protobuf_Any(message: errorInfo),
            let bytes: [UInt8] = try? { status.details = [any]; return try status.serializedBytes() }()
        else { return nil }
        var encoded = Data(bytes).base64EncodedString()
        while encoded.last == "=" { encoded.removeLast() }
        return encoded
    }
}
