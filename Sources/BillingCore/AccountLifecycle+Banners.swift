extension AccountLifecycle {
    public func banners(now: Int64) -> [Banner] {
        var banners: [Banner] = []
        if let reason = pauseReason { banners.append(.paused(reason)) }
        if let oldest = pastDueInvoices.first {
            banners.append(.pastDue(invoice: oldest.number, pausesAt: runsPaused ? nil : graceEnd(since: oldest.since)))
        }
        if let trialEnd = trialEndsAt, !runsPaused {
            banners.append(.trialCountdown(daysLeft: trialDaysLeft(now: now), endsAt: trialEnd))
        }
        return banners
    }

    /// Whole days left in the trial, rounded up (a trial ending in an hour has
    /// 1 day left); 0 once it has ended or when there is no trial.
    public func trialDaysLeft(now: Int64) -> Int {
        guard let trialEnd = trialEndsAt, trialEnd > now else { return 0 }
        let seconds = trialEnd - now
        return Int((seconds + 86_399) / 86_400)
    }
}
