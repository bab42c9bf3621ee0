/// The gRPC status codes the domain refuses with. Raw values are the wire
/// codes of the gRPC specification, so the service maps them one to one.
public enum StatusCode: Int, Sendable, CaseIterable {
    case invalidArgument = 3
    case notFound = 5
    case alreadyExists = 6
    case resourceExhausted = 8
    case failedPrecondition = 9
}
