import BillingProto
public import GRPC

/// billing.v1.Testing/Echo: only for transport tests (--enable-testing-service).
public enum TestingService {
    public static func register(into router: inout GRPCRouter) {
        router.register("/billing.v1.Testing/Echo") { (request: Billing_V1_EchoRequest, _) -> Billing_V1_EchoResponse in
            guard (0...60_000).contains(request.delayMs) else {
                throw GRPCStatus(.invalidArgument, "delay_ms must be 0...60000")
            }
            if request.delayMs > 0 {
                // Cancelled when the call's deadline passes or the client resets it.
                try await Task.sleep(nanoseconds: UInt64(request.delayMs) * 1_000_000)
            }
            var response = Billing_V1_EchoResponse()
            response.payload = request.payload
            return response
        }
    }
}
