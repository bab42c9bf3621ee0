import BillingProto
import Foundation
import LoadGenerator
import SwiftProtobuf
import Testing

@Suite struct CallOutcomeTests {
    func outcome(_ rpc: LoadRPC, status: Int, response: [UInt8] = [], details: String? = nil) -> CallOutcome {
        CallOutcome(rpc: rpc, call: FinishedCall(streamID: 1, status: status, response: response, details: details))
    }

    /// `grpc-status-details-bin` as servers send it: base64 without padding.
    func details(reason: String) throws -> String {
        var info = Google_Rpc_ErrorInfo()
        info.reason = reason
        info.domain = "billing.v1"
        var status = Google_Rpc_Status()
        status.code = 9
        status.details = [try Google_Protobuf_Any(message: info)]
        let encoded = Data(try status.serializedBytes() as [UInt8]).base64EncodedString()
        return String(encoded.prefix { $0 != "=" })
    }

    @Test func anOKDebitIsOneAcknowledgedDebit() {
        #expect(outcome(.debit, status: 0) == outcome(.debit, status: 0))
        let ok = outcome(.debit, status: 0)
        #expect(ok.key == "OK" && ok.isOK && ok.acknowledgedDebits == 1)
        #expect(outcome(.quote, status: 0).acknowledgedDebits == 0)
    }

    @Test func aBatchAcknowledgesItsAcceptedResultsOnly() throws {
        var batch = Billing_V1_DebitBatchResponse()
        for entry in [Int64(11), 0, 12] {
            var result = Billing_V1_DebitResult()
            if entry > 0 { result.accepted.entryID = entry } else { result.refused.reason = "INSUFFICIENT_CREDITS" }
            batch.results.append(result)
        }
        #expect(outcome(.batch, status: 0, response: try batch.serializedBytes()).acknowledgedDebits == 2)
        #expect(outcome(.batch, status: 0, response: [0xFF]).acknowledgedDebits == 0)
    }

    @Test func aRefusalIsItsStatusAndReason() throws {
        let refused = outcome(.debit, status: 9, details: try details(reason: "INSUFFICIENT_CREDITS"))
        #expect(refused.key == "FAILED_PRECONDITION INSUFFICIENT_CREDITS")
        #expect(!refused.isOK && refused.acknowledgedDebits == 0)
    }

    @Test func noStatusOrUnreadableDetailsAreTheStatusAlone() {
        #expect(outcome(.quote, status: -1).key == "NO_STATUS")
        #expect(outcome(.quote, status: 14, details: "!!not base64").key == "UNAVAILABLE")
        #expect(outcome(.quote, status: 8, details: "").key == "RESOURCE_EXHAUSTED")
    }
}
