internal import COpenSSL
import Glibc

extension TLSContext {
    /// When the server certificate (the chain's leaf) is valid, in unix
    /// seconds: start-up logs its expiry and warns when it is outside it or
    /// near its end (certificates are read once, at start: a renewed one
    /// takes a restart). Nil for a context without a certificate.
    public var certificateValidity: (notBefore: Int64, notAfter: Int64)? {
        guard let leaf = SSL_CTX_get0_certificate(ctx),
              let notBefore = Self.unixSeconds(X509_get0_notBefore(leaf)),
              let notAfter = Self.unixSeconds(X509_get0_notAfter(leaf)) else { return nil }
        return (notBefore, notAfter)
    }

    private static func unixSeconds(_ time: UnsafePointer<ASN1_TIME>?) -> Int64? {
        guard let time else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return Int64(timegm(&parts))
    }
}
