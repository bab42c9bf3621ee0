/// `grpc-message` is percent-encoded UTF-8: bytes outside 0x20...0x7E and
/// '%' itself become %XX (gRPC HTTP/2 protocol spec).
func percentEncodeGRPCMessage(_ message: String) -> String {
    var needsEncoding = false
    for byte in message.utf8 where byte < 0x20 || byte > 0x7E || byte == UInt8(ascii: "%") {
        needsEncoding = true
        break
    }
    guard needsEncoding else { return message }
    let hex = Array("0123456789ABCDEF".utf8)
    var out = [UInt8]()
    out.reserveCapacity(message.utf8.count * 3)
    for byte in message.utf8 {
        if byte < 0x20 || byte > 0x7E || byte == UInt8(ascii: "%") {
            out.append(UInt8(ascii: "%"))
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0xF)])
        } else {
            out.append(byte)
        }
    }
    return String(decoding: out, as: UTF8.self)
}
