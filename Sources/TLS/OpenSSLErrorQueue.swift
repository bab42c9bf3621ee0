internal import COpenSSL

/// OpenSSL's per-thread error queue. Cleared before every call whose failure
/// we inspect, so an earlier failure on this thread (another connection's)
/// cannot be blamed on this one.
enum OpenSSLErrorQueue {
    static func clear() {
        ERR_clear_error()
    }

    /// Empties the queue and returns its entries as text, oldest first. Adds
    /// the entry's data when OpenSSL attached one (e.g. the failing fopen call).
    static func drain() -> [String] {
        var entries: [String] = []
        var text = [CChar](repeating: 0, count: 256)
        while true {
            var data: UnsafePointer<CChar>?
            var flags: Int32 = 0
            let code = ERR_get_error_all(nil, nil, nil, &data, &flags)
            if code == 0 { return entries }
            ERR_error_string_n(code, &text, text.count)
            var entry = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if flags & ERR_TXT_STRING != 0, let data, data.pointee != 0 {
                entry += " (\(String(cString: data)))"
            }
            entries.append(entry)
        }
    }

    static func error(_ kind: TLSError.Kind, _ message: String) -> TLSError {
        TLSError(kind: kind, message: message, openSSLErrors: drain())
    }
}
