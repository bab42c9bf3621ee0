extension PriceCatalog {
    /// The rates of `model`, matched exactly (case-sensitive).
    public func rates(forModel model: String) throws(InvalidArgument) -> ModelRates {
        guard let rates = models[model] else { throw .unknownModel(model) }
        return rates
    }

    /// The per-call price of `integration`, or the default when it is not
    /// listed; unknown when neither exists.
    public func microsPerCall(forIntegration integration: String) throws(InvalidArgument) -> Int64 {
        guard let price = toolCallMicrosPerCall[integration] ?? defaultToolCallMicrosPerCall else {
            throw .unknownIntegration(integration)
        }
        return price
    }

    public func microsPerGiB(forStorage kind: StorageKind) -> Int64 {
        guard let rate = storageMicrosPerGiB[kind] else {
            preconditionFailure("catalog \(version) validated without a rate for storage \(kind.rawValue)")
        }
        return rate
    }
}
