import BillingProto
import GRPC

/// Hand-written decoding of the metering requests (Debit, DebitBatch,
/// Quote): their usual shape — known fields, right wire types, each line
/// item with one kind — read straight into the generated structs, without
/// SwiftProtobuf's generic field dispatch. Anything else (an unknown field
/// or enum value, a wrong wire type, a line item kind given twice, invalid
/// UTF-8, a truncated field) returns nil and the request goes through
/// SwiftProtobuf, which accepts or refuses it as it always has: a request
/// decodes here to exactly the message SwiftProtobuf would produce
/// (`RequestDecodingTests` compares them on random and mutated inputs).
/// The wire reader and the line-item decoder are the journal's
/// (`ProtobufReader`, `Billing_V1_LineItem.decoded(from:)` in BillingProto).
protocol HandDecodable: WireCounted {
    static func handDecoded(_ bytes: [UInt8]) -> Self?
}

/// A request with a repeated field whose entries can be a byte or two on the
/// wire and much more decoded.
protocol WireCounted {
    /// Its repeated fields counted on the wire, before anything is decoded
    /// (see `WireScan`): throws the handler's refusal past a limit.
    static func checkCounts(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus)
}

extension Billing_V1_DebitRequest: HandDecodable {
    static func handDecoded(_ bytes: [UInt8]) -> Self? {
        bytes.withUnsafeBytes { buffer in
            var reader = ProtobufReader(buffer)
            return Self.read(&reader)
        }
    }

    fileprivate static func read(_ reader: inout ProtobufReader) -> Self? {
        var request = Self()
        while !reader.isAtEnd {
            guard let (field, wireType) = reader.tag(), wireType == 2 else { return nil }
            switch field {
            case 1: guard let value = reader.string() else { return nil }; request.accountID = value
            case 2: guard let value = reader.string() else { return nil }; request.workspaceID = value
            case 3: guard let value = reader.string() else { return nil }; request.agentID = value
            case 4: guard let value = reader.string() else { return nil }; request.runID = value
            case 5: guard let value = reader.string() else { return nil }; request.idempotencyKey = value
            case 6: guard let item = reader.lineItem() else { return nil }; append(item, to: &request.lineItems)
            default: return nil
            }
        }
        return request
    }
}

extension Billing_V1_QuoteRequest: HandDecodable {
    static func handDecoded(_ bytes: [UInt8]) -> Self? {
        bytes.withUnsafeBytes { buffer in
            var reader = ProtobufReader(buffer)
            var request = Self()
            while !reader.isAtEnd {
                guard let (field, wireType) = reader.tag(), wireType == 2 else { return nil }
                switch field {
                case 1: guard let value = reader.string() else { return nil }; request.accountID = value
                case 2: guard let value = reader.string() else { return nil }; request.workspaceID = value
                case 3: guard let value = reader.string() else { return nil }; request.agentID = value
                case 4: guard let item = reader.lineItem() else { return nil }; append(item, to: &request.lineItems)
                case 5: guard let value = reader.string() else { return nil }; request.runID = value
                default: return nil
                }
            }
            return request
        }
    }
}

extension Billing_V1_DebitBatchRequest: HandDecodable {
    static func handDecoded(_ bytes: [UInt8]) -> Self? {
        bytes.withUnsafeBytes { buffer in
            var reader = ProtobufReader(buffer)
            var request = Self()
            while !reader.isAtEnd {
                guard let (field, wireType) = reader.tag(), field == 1, wireType == 2,
                      var body = reader.submessage(), let debit = Billing_V1_DebitRequest.read(&body)
                else { return nil }
                request.debits.append(debit)
            }
            return request
        }
    }
}

extension ProtobufReader {
    /// A length-delimited line item, decoded by hand or nil.
    fileprivate mutating func lineItem() -> Billing_V1_LineItem? {
        guard var body = submessage() else { return nil }
        return Billing_V1_LineItem.decoded(from: &body)
    }
}

/// Appends a decoded line item, with room for four at the first: a debit
/// usually has two to four, and growing the array one item at a time cost
/// a reallocation per debit.
@inline(__always)
private func append(_ item: Billing_V1_LineItem, to items: inout [Billing_V1_LineItem]) {
    if items.isEmpty { items.reserveCapacity(4) }
    items.append(item)
}

// Repeated fields counted on the wire before anything is decoded: a 4 MiB
// message of empty entries (two bytes each) would otherwise decode into
// millions of structs — hundreds of MB — before the count was checked. The
// limits and reasons are the handlers' own.

extension Billing_V1_DebitRequest {
    static func checkCounts(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus) {
        try WireScan.count(ProtobufReader(bytes), field: 6, limit: MeteringLimits.maxLineItems, refusal: WireScan.tooManyLineItems)
    }
}

extension Billing_V1_QuoteRequest {
    static func checkCounts(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus) {
        try WireScan.count(ProtobufReader(bytes), field: 4, limit: MeteringLimits.maxLineItems, refusal: WireScan.tooManyLineItems)
    }
}

extension Billing_V1_DebitBatchRequest {
    /// The debits, and the line items of all of them together: a debit of
    /// more than 256 is refused on its own (each debit of a batch stands
    /// alone), by the handler.
    static func checkCounts(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus) {
        var reader = ProtobufReader(bytes)
        var debits = 0
        var items = 0
        while !reader.isAtEnd {
            guard let (field, wire) = reader.tag() else { return }
            guard field == 1, wire == 2 else {
                try WireScan.skip(wire, in: &reader)
                continue
            }
            guard let debit = reader.submessage() else { return }
            debits += 1
            guard debits <= MeteringLimits.maxBatch else { throw WireScan.batchTooLarge }
            items += try WireScan.count(debit, field: 6, limit: WireScan.maxBatchLineItems - items, refusal: WireScan.tooManyBatchLineItems)
        }
    }
}

// The other requests with a repeated field. `group_by` (any caller of
// GetUsage may send it): a packed enum, a byte an entry, decoded as 16 —
// a 4 MiB message was ~64 MB before the account or the role was checked.
// The service-only admin requests' lists likewise, at their handlers' limits.

extension Billing_V1_GetUsageRequest: WireCounted {
    /// Three dimensions, each at most once (`MeteringService.usageQuery`).
    static let maxGroups = 3
    static let tooManyGroups = GRPCStatus(.invalidArgument, "group_by takes DAY, AGENT and LINE_ITEM, each at most once",
                                          reason: "INVALID_FIELD", metadata: ["field": "group_by"])

    static func checkCounts(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus) {
        try WireScan.countVarints(ProtobufReader(bytes), field: 4, limit: maxGroups, refusal: tooManyGroups)
    }
}

extension Billing_V1_CreateApiKeyRequest: WireCounted {
    /// Three scopes, each named at most a few times (`KeysService.scopes`
    /// refuses more too: one limit, whether counted here or decoded).
    static let maxScopes = 16
    static let tooManyScopes = GRPCStatus(.invalidArgument, "at most \(maxScopes) scopes; scopes are metering:write, metering:read, accounts:admin",
                                          reason: "INVALID_FIELD", metadata: ["field": "scopes"])

    static func checkCounts(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus) {
        try WireScan.count(ProtobufReader(bytes), field: 2, limit: maxScopes, refusal: tooManyScopes)
    }
}

extension Billing_V1_SetEnterpriseContractRequest: WireCounted {
    static let maxCustomLines = 20
    static let tooManyCustomLines = GRPCStatus(.invalidArgument, "contract.custom_invoice_lines: at most \(maxCustomLines)",
                                               reason: "INVALID_CONTRACT", metadata: ["field": "contract.custom_invoice_lines"])

    /// `contract.custom_invoice_lines`, over every `contract` field given (the decoder merges them).
    static func checkCounts(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus) {
        var reader = ProtobufReader(bytes)
        var lines = 0
        while !reader.isAtEnd {
            guard let (field, wire) = reader.tag() else { return }
            guard field == 2, wire == 2 else {
                try WireScan.skip(wire, in: &reader)
                continue
            }
            guard let contract = reader.submessage() else { return }
            lines += try WireScan.count(contract, field: 7, limit: maxCustomLines - lines, refusal: tooManyCustomLines)
        }
    }
}

/// Counting on the wire (`ProtobufReader`'s tags and lengths only). Malformed
/// bytes end the count quietly: the decoder refuses them with its own status.
enum WireScan {
    static let tooManyLineItems = GRPCStatus(.invalidArgument, "at most \(MeteringLimits.maxLineItems) line items per request",
                                             reason: "TOO_MANY_LINE_ITEMS")
    static let batchTooLarge = GRPCStatus(.invalidArgument, "at most \(MeteringLimits.maxBatch) debits per batch",
                                          reason: "BATCH_TOO_LARGE")
    /// Line items of a whole batch (32 a debit at the largest batch).
    static let maxBatchLineItems = 1 << 18
    static let tooManyBatchLineItems = GRPCStatus(.invalidArgument, "at most \(maxBatchLineItems) line items per batch",
                                                  reason: "BATCH_TOO_LARGE")
    static let group = GRPCStatus(.invalidArgument, "the message holds a group, which no request of this API has",
                                  reason: "MALFORMED_MESSAGE")

    /// How many times `field`, a length-delimited one (a message or a
    /// string), occurs; throws `refusal` past `limit`. The field with
    /// another wire type is not counted: the decoder keeps it as an unknown
    /// field, not an entry.
    @discardableResult
    static func count(_ message: ProtobufReader, field: Int, limit: Int, refusal: GRPCStatus) throws(GRPCStatus) -> Int {
        var reader = message
        var seen = 0
        while !reader.isAtEnd {
            guard let (found, wire) = reader.tag() else { return seen }
            try skip(wire, in: &reader)
            guard found == field, wire == 2 else { continue }
            seen += 1
            guard seen <= limit else { throw refusal }
        }
        return seen
    }

    /// How many values a repeated varint `field` (an enum) holds, packed (a
    /// length-delimited run of varints, counted by their last bytes) or not
    /// (wire type 0; other wire types the decoder keeps as unknown fields);
    /// throws `refusal` past `limit`.
    static func countVarints(_ message: ProtobufReader, field: Int, limit: Int, refusal: GRPCStatus) throws(GRPCStatus) {
        var reader = message
        var seen = 0
        while !reader.isAtEnd {
            guard let (found, wire) = reader.tag() else { return }
            guard found == field, wire == 2 else {
                try skip(wire, in: &reader)
                if found == field && wire == 0 { seen += 1 }
                guard seen <= limit else { throw refusal }
                continue
            }
            guard let packed = reader.bytes() else { return }
            seen += packed.reduce(0) { $0 + ($1 < 0x80 ? 1 : 0) }
            guard seen <= limit else { throw refusal }
        }
    }

    /// Past a value; a group (wire types 3 and 4, which SwiftProtobuf would
    /// keep as unknown fields) is refused, so no count can be stepped over.
    /// Other malformed bytes end the walk: the decoder refuses them.
    static func skip(_ wire: Int, in reader: inout ProtobufReader) throws(GRPCStatus) {
        guard wire != 3, wire != 4 else { throw group }
        if !reader.skip(wire: wire) { reader = ProtobufReader(UnsafeRawBufferPointer(start: nil, count: 0)) }
    }
}
