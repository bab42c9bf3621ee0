import BillingProto
import Foundation
import GRPC
import SwiftProtobuf

/// How one answered call counts: its outcome key ("OK", or the status name
/// and the ErrorInfo reason, "FAILED_PRECONDITION INSUFFICIENT_CREDITS") and
/// the debits the server acknowledged as accepted.
public struct CallOutcome: Equatable, Sendable {
    public let key: String
    public let isOK: Bool
    public let acknowledgedDebits: Int64

    package init(rpc: LoadRPC, call: FinishedCall) {
        isOK = call.status == 0
        key = isOK ? "OK" : "\(statusName(call.status))\(Self.reason(call.details).map { " " + $0 } ?? "")"
        acknowledgedDebits = isOK ? Self.acknowledged(rpc, response: call.response) : 0
    }

    /// Debits an OK answer accepted: one for Debit, the accepted results of a batch.
    private static func acknowledged(_ rpc: LoadRPC, response: [UInt8]) -> Int64 {
        switch rpc {
        case .debit:
            return 1
        case .batch:
            guard let batch = try? Billing_V1_DebitBatchResponse(serializedBytes: response) else { return 0 }
            return Int64(batch.results.filter { $0.accepted.entryID > 0 }.count)
        case .quote, .cost, .usage:
            return 0
        }
    }

    /// The ErrorInfo reason in `grpc-status-details-bin` (base64, padding optional).
    private static func reason(_ details: String?) -> String? {
        guard var details else { return nil }
        while details.count % 4 != 0 { details += "=" }
        guard let data = Data(base64Encoded: details),
              let status = try? Google_Rpc_Status(serializedBytes: [UInt8](data)),
              let any = status.details.first,
              let info = try? Google_Rpc_ErrorInfo(unpackingAny: any) else { return nil }
        return info.reason
    }
}

/// The canonical name of a grpc-status code, "NO_STATUS" for none (-1) or an unknown one.
func statusName(_ code: Int) -> String {
    GRPCStatus.Code(rawValue: code)?.name ?? "NO_STATUS"
}
