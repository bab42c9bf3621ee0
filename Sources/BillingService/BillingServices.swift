public import GRPC
public import Logging

/// The billing.v1 services. Methods not registered here answer UNIMPLEMENTED
/// (the router's default) until their issue lands.
public enum BillingServices {
    public static let names = ["billing.v1.Metering", "billing.v1.Accounts", "billing.v1.Payments", "billing.v1.Admin"]

    public static func register(into router: inout GRPCRouter, logger: Logger) {
        _ = logger
    }
}
