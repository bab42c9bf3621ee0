internal import CNGHTTP2
import Glibc

/// A header list built once and sent many times (a gRPC success response's
/// headers and trailers). When `permanent`, nghttp2 is told not to copy it
/// (NO_COPY_NAME, NO_COPY_VALUE): the caller promises the object outlives
/// every frame that uses it (a static). Otherwise nghttp2 copies on submit.
public final class HTTP2PreparedHeaders: @unchecked Sendable {
    let nameValues: UnsafeMutablePointer<nghttp2_nv>
    let count: Int
    private let storage: UnsafeMutablePointer<UInt8>

    public init(_ headers: [HTTP2Header], permanent: Bool = false) {
        let flags = permanent
            ? UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue)
            : UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)
        let total = headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
        storage = .allocate(capacity: max(total, 1))
        nameValues = .allocate(capacity: max(headers.count, 1))
        count = headers.count
        var offset = 0
        for (i, header) in headers.enumerated() {
            let name = Array(header.name.utf8), value = Array(header.value.utf8)
            (storage + offset).update(from: name, count: name.count)
            (storage + offset + name.count).update(from: value, count: value.count)
            nameValues[i] = nghttp2_nv(
                name: storage + offset, value: storage + offset + name.count,
                namelen: name.count, valuelen: value.count,
                flags: flags)
            offset += name.count + value.count
        }
    }

    deinit {
        storage.deallocate()
        nameValues.deallocate()
    }
}
