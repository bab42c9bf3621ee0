import HTTP2

/// What routing needs from a request's headers, read in one pass over the
/// raw block: method, path, content type, encoding and timeout.
struct GRPCRequestHead {
    var isPost = false
    var isGRPC = false
    /// The content type's "+subtype" ("proto", "json"...), lowercased; nil
    /// without one.
    var subtype: String?
    var path = ""
    /// The path is `knownPath` (its bytes compared, no String made).
    var pathIsKnown = false
    var encoding: String?
    var timeout: String?

    /// `knownPath`: the path this connection's previous call named (a
    /// client calls the same method again and again): reused when the
    /// bytes match, so that no String is made and no route looked up.
    init(_ headers: HTTP2HeaderBlock, knownPath: String? = nil) {
        headers.forEachField { name, value in
            switch name.count {
            case 5 where name.elementsEqual(Self.path):
                if var known = knownPath, known.withUTF8({ $0.elementsEqual(value) }) {
                    (path, pathIsKnown) = (known, true)
                } else {
                    path = String(decoding: value, as: UTF8.self)
                }
            case 7 where name.elementsEqual(Self.method):
                isPost = value.elementsEqual(Self.post)
            case 12 where name.elementsEqual(Self.contentType):
                // "application/grpc", with a "+proto"/"+json"/other subtype
                // or ";parameters": not "application/grpc-web" or
                // "application/grpcfoo". (Media types ignore case.)
                isGRPC = value.count >= Self.grpcType.count
                    && value.prefix(Self.grpcType.count).elementsEqual(Self.grpcType, by: { Self.asciiLowercased($0) == $1 })
                    && (value.count == Self.grpcType.count || Self.endsGRPCType(value[value.startIndex + Self.grpcType.count]))
                if isGRPC, value.count > Self.grpcType.count, value[value.startIndex + Self.grpcType.count] == UInt8(ascii: "+") {
                    let rest = value.dropFirst(Self.grpcType.count + 1).prefix { $0 != UInt8(ascii: ";") }
                    // (Media types allow whitespace before the parameters.)
                    subtype = String(decoding: rest.map(Self.asciiLowercased), as: UTF8.self)
                        .trimmingCharacters(in: .whitespaces)
                }
            case 12 where name.elementsEqual(Self.grpcTimeout):
                timeout = String(decoding: value, as: UTF8.self)
            case 13 where name.elementsEqual(Self.grpcEncoding):
                encoding = String(decoding: value, as: UTF8.self)
            default:
                break
            }
        }
    }

    static let path = Array(":path".utf8)
    static let method = Array(":method".utf8)
    static let post = Array("POST".utf8)
    static let contentType = Array("content-type".utf8)
    static let grpcType = Array("application/grpc".utf8)
    static let grpcTimeout = Array("grpc-timeout".utf8)
    static let grpcEncoding = Array("grpc-encoding".utf8)

    static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }

    /// What may follow "application/grpc": a "+subtype" or ";parameters".
    static func endsGRPCType(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "+") || byte == UInt8(ascii: ";")
    }
}
