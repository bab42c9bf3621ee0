import ArgumentParser
import BillingAuth
import BillingProto
import Client
import Foundation
import HTTP2
import SwiftProtobuf
import TLS

struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call any RPC of the schema with JSON in and JSON out (like grpcurl, no .proto needed).",
        discussion: """
            METHOD is Service/Method or its full path, e.g. billing.v1.Metering/Debit or \
            grpc.health.v1.Health/Check. The request is JSON in protobuf's JSON mapping (field \
            names in lowerCamelCase or as in the .proto), from --data or standard input (`-`). \
            On success the response is printed as JSON; on failure the status, message and \
            ErrorInfo (reason, metadata) go to standard error and the exit code is 2; a \
            transport failure (no connection, TLS, no answer) exits 1, bad arguments or JSON 64. \
            `billing call --list` lists the methods.
            """)

    @Argument(help: "Service/Method, e.g. billing.v1.Metering/Quote.")
    var method: String?

    @OptionGroup var unknown: UnknownOptions

    @Option(help: "Server address, host:port: a host name, an IPv4 address or an [IPv6] one.")
    var target: String = "127.0.0.1:50051"

    @Option(name: .shortAndLong, help: "Request JSON; `-` reads standard input.")
    var data: String = "{}"

    @Option(help: "Bearer token (service key or user JWT). Default: $BILLING_KEY. Never printed.")
    var key: String?

    @OptionGroup var tls: ClientTLSOptions

    @Option(parsing: .unconditional, help: "Deadline in milliseconds (1...99999999).")
    var timeoutMillis: Int32 = 10_000

    @Flag(help: "List the methods this command knows.")
    var list = false

    func validate() throws {
        try unknown.validate()  // (first: an unknown option named, not taken for a missing METHOD)
        guard (1...99_999_999).contains(timeoutMillis) else {
            throw ValidationError("--timeout-millis must be 1...99999999 (grpc-timeout allows at most 8 digits)")
        }
        // No METHOD: said by `run` (ArgumentParser reports an unknown option
        // only once `validate` passed: `billing call --lst` said "give a
        // METHOD").
        guard !list, method != nil else { return }
        // Here, not in `run`: ArgumentParser then shows this command's usage.
        let types = try methodTypes()
        guard let colon = target.lastIndex(of: ":"), UInt16(target[target.index(after: colon)...]) != nil else {
            throw ValidationError("--target must be host:port")
        }
        // The request JSON too, when given as an argument (standard input is
        // read by `run`: reading it here would hold `-d - --help` up, as
        // ArgumentParser validates before it shows help).
        if data != "-" { try Self.parse(data, as: types.request) }
    }

    /// The request and response types of METHOD (`Service/Method` or its full path).
    func methodTypes() throws -> (path: String, request: any Message.Type, response: any Message.Type) {
        guard let method else { throw ValidationError("give a METHOD (billing call --list shows them)") }
        let path = method.hasPrefix("/") ? method : "/" + method
        guard let types = MethodCatalog.methods[path] else {
            guard !looksSecret(method) else {
                throw ValidationError("unknown method (not shown: it holds an API key or a user token; give one with --key or $BILLING_KEY; billing call --list shows the methods)")
            }
            throw ValidationError("unknown method \(method) (billing call --list shows them)")
        }
        return (path, types.request, types.response)
    }

    /// `json` as a `type` request; a `ValidationError` in words if it is not one.
    @discardableResult
    static func parse(_ json: String, as type: any Message.Type) throws -> any Message {
        do {
            return try type.init(jsonString: json)
        } catch {
            throw ValidationError("request is not valid JSON for \(type.protoMessageName): \(describe(error, type, json: json))")
        }
    }

    /// A JSON decoding error in words (SwiftProtobuf's names its cases:
    /// `malformedString`, `unknownField("plan")`).
    static func describe(_ error: any Error, _ type: any Message.Type, json text: String) -> String {
        guard let json = error as? JSONDecodingError else { return "\(error)" }
        switch json {
        case .unknownField(let name):
            let schema = "schema/" + type.protoMessageName.split(separator: ".").dropLast().joined(separator: "/")
            // SwiftProtobuf names the field, not the message it is in: the
            // request's own, if its object holds the name and the request
            // type takes no such field; else a nested message's.
            let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
            let encoded = (try? JSONEncoder().encode(name)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
            let typeTakesIt = (try? type.init(jsonString: "{\(encoded): null}")) != nil
            guard object != nil || typeTakesIt else {  // (malformed JSON as well: cannot tell where)
                return "no field \"\(name)\" in \(type.protoMessageName) or a message inside it (the fields are in \(schema))"
            }
            if object.map({ $0[name] == nil }) ?? false || typeTakesIt {
                return "a message inside \(type.protoMessageName) has no field \"\(name)\" (the fields are in \(schema))"
            }
            return "\(type.protoMessageName) has no field \"\(name)\" (its fields are in \(schema))"
        case .conflictingOneOf:
            return "two fields of the same oneof are set; give only one of them"
        case .unrecognizedEnumValue:
            return "an enum field holds a value that is none of its names or numbers"
        case .malformedNumber, .numberRange, .leadingZero:
            return "a number is malformed or outside its field's range"
        case .malformedBool:
            return "a bool field holds something other than true or false"
        case .malformedString, .truncated, .trailingGarbage, .missingFieldNames, .unquotedMapKey, .failure:
            // Well-formed JSON SwiftProtobuf still reads as malformed: a
            // value of another type (`"account_id": 5`, a list for the
            // request) (session 28: called "not well-formed JSON").
            if (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil {
                return "a value does not have its field's type (a text, a number, a list or an object), or the request is not a JSON object"
            }
            return "this is not well-formed JSON (check the quotes, braces, brackets and commas)"
        case .invalidUTF8:
            return "the JSON is not valid UTF-8"
        case .illegalNull:
            return "null where a value is needed"
        case .malformedMap, .schemaMismatch:
            return "a value does not have its field's type (a list, an object or a plain value)"
        case .malformedDuration, .malformedTimestamp, .malformedFieldMask:
            return "a duration, timestamp or field mask is malformed"
        case .messageDepthLimit:
            return "the JSON is nested too deeply"
        @unknown default:
            return "\(json)"
        }
    }

    func run() throws {
        if list {
            for path in MethodCatalog.methods.keys.sorted() {
                print(String(path.dropFirst()) + (path.hasPrefix("/billing.v1.Testing/") ? "  (only with serve --enable-testing-service)" : ""))
            }
            return
        }
        guard method != nil else { throw ValidationError("give a METHOD (billing call --list shows them)") }
        let types = try methodTypes()  // (checked by `validate`)
        let path = types.path
        let request: any Message
        if data == "-" {
            do {
                request = try Self.parse(String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self), as: types.request)
            } catch let error as ValidationError {
                // (From `run`, ArgumentParser would show the top-level usage.)
                FileHandle.standardError.write(Data(redactingSecrets("Error: \(error.message)\n").utf8))
                throw ExitCode(64)
            }
        } else {
            request = try Self.parse(data, as: types.request)  // (checked by `validate`)
        }
        guard let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]) else {
            throw ValidationError("--target must be host:port")
        }
        let host = String(target[..<colon])
        let tls = try self.tls.context(serverName: host)
        var metadata: [HTTP2Header] = [HTTP2Header("grpc-timeout", "\(timeoutMillis)m")]
        if let token = key ?? ProcessInfo.processInfo.environment["BILLING_KEY"], !token.isEmpty {
            try requireHeaderSafeToken(token, fromOption: key != nil)
            metadata.append(HTTP2Header("authorization", "Bearer \(token)"))
        }
        let connection = try GRPCClientConnection(host: host, port: port, tls: tls)
        let completion = try connection.call(path: path, message: try request.serializedBytes(), metadata: metadata,
                                             timeoutMillis: timeoutMillis + 1000)
        guard completion.status == 0 else {
            // (A server's message may repeat a request field: a key pasted there is not shown.)
            FileHandle.standardError.write(Data(redactingSecrets(Self.describeFailure(completion)).utf8))
            throw ExitCode(2)
        }
        let response = try types.response.init(serializedBytes: completion.response)
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        print(try response.jsonString(options: options))
    }

    /// Status name and code, message, and the ErrorInfo if any.
    static func describeFailure(_ completion: GRPCClientConnection.Completion) -> String {
        var text = "ERROR: \(statusName(completion.status)) (\(completion.status)): \(completion.message)\n"
        if var details = completion.details {
            while details.count % 4 != 0 { details += "=" }
            if let bytes = Data(base64Encoded: details), let status = try? Google_Rpc_Status(serializedBytes: [UInt8](bytes)) {
                for any in status.details {
                    if let info = try? Google_Rpc_ErrorInfo(unpackingAny: any) {
                        text += "  reason: \(info.reason)\n  domain: \(info.domain)\n"
                        for (key, value) in info.metadata.sorted(by: { $0.key < $1.key }) { text += "  \(key): \(value)\n" }
                    }
                }
            }
        }
        return text
    }
}
