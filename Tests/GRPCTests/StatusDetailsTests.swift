import BillingCore
import BillingProto
import Foundation
@testable import GRPC
import SwiftProtobuf
import Testing

/// The hand-written `grpc-status-details-bin` value decodes to the
/// google.rpc.Status SwiftProtobuf builds: the code, the message and the
/// ErrorInfo packed in an Any, every metadata entry included.
@Suite struct StatusDetailsTests {
    @Test func randomStatusesDecodeAsSwiftProtobufsDo() throws {
        var rng = SplitMix64(seed: 14)
        let texts = ["", "a", "run r-1 has no debits", "é€😀", String(repeating: "x", count: 300), "line\nbreak"]
        for _ in 0..<2_000 {
            let code = GRPCStatus.Code.allCases.filter { $0 != .ok }.randomElement(using: &rng)!
            var metadata: [String: String] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                metadata[texts.randomElement(using: &rng)! + "\(Int.random(in: 0...9, using: &rng))"] = texts.randomElement(using: &rng)!
            }
            let status = GRPCStatus(code, texts.randomElement(using: &rng)!, reason: ["INSUFFICIENT_CREDITS", "R"].randomElement(using: &rng)!,
                                    metadata: metadata)
            var reference = Google_Rpc_Status()
            reference.code = Int32(code.rawValue)
            reference.message = status.message
            reference.details = [try Google_Protobuf_Any(message: status.errorInfo!)]

            let bytes = try #require(status.detailsBytes())
            let decoded = try Google_Rpc_Status(serializedBytes: bytes)
            // An Any compares by its bytes, and the metadata map's order is
            // free: the ErrorInfo is compared unpacked.
            #expect(decoded.code == reference.code && decoded.message == reference.message)
            #expect(decoded.details.count == 1 && decoded.details[0].typeURL == reference.details[0].typeURL)
            let info = try Google_Rpc_ErrorInfo(unpackingAny: decoded.details[0])
            #expect(info == (try Google_Rpc_ErrorInfo(unpackingAny: reference.details[0])))
            #expect(info == status.errorInfo && info.metadata == metadata)
            // The header: the same bytes, base64 without padding.
            var header = try #require(status.detailsHeaderValue())
            #expect(!header.hasSuffix("="))
            while header.count % 4 != 0 { header += "=" }
            #expect(Data(base64Encoded: header).map { [UInt8]($0) } == bytes)
        }
    }

    /// An ErrorInfo carrying unknown fields (not one this service builds)
    /// goes through SwiftProtobuf and keeps them.
    @Test func unknownFieldsGoThroughSwiftProtobuf() throws {
        var status = GRPCStatus(.failedPrecondition, "paused", reason: "ACCOUNT_PAUSED", metadata: ["": "empty key"])
        try status.errorInfo!.merge(serializedBytes: [0x98, 0x06, 0x05] as [UInt8])  // field 99, varint 5
        let decoded = try Google_Rpc_Status(serializedBytes: try #require(status.detailsBytes()))
        let info = try Google_Rpc_ErrorInfo(unpackingAny: decoded.details[0])
        #expect(info == status.errorInfo && !info.unknownFields.data.isEmpty && info.metadata[""] == "empty key")
    }

    @Test func aStatusWithoutErrorInfoHasNoDetails() {
        #expect(GRPCStatus(.internal, "no reason").detailsHeaderValue() == nil)
    }
}
