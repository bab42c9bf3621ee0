import BillingProto
import GRPC

/// `billing_refusals_total` by ErrorInfo reason. A refusal answered as a
/// call's status is counted where the gRPC layer sends it
/// (`GRPCServerMetrics`, given `label`); the refusals inside a DebitBatch
/// answer — which goes out OK — are counted here (session 27: they were
/// not counted at all, though batches carry most debits).
public enum RefusalMetrics {
    public static let label = "billing_refusals_total"

    /// Counts every refused result of a batch answer.
    static func countBatched(_ results: [Billing_V1_DebitResult]) {
        for result in results {
            guard case .refused(let refusal)? = result.outcome else { continue }
            ReasonCounters.increment(label, reason: refusal.reason)
        }
    }
}
