import Foundation
import LoadGenerator
import Testing

@Suite struct LoadSummaryTests {
    /// 1,000 calls of 1…1,000 µs: 990 OK debits, 10 refused; 2 abandoned.
    func summary(failures: [String] = []) -> LoadSummary {
        var tally = LoadTally()
        for micros in UInt64(1)...1000 {
            let status = micros % 100 == 0 ? 9 : 0
            tally.record(CallOutcome(rpc: .debit, call: FinishedCall(streamID: 1, status: status, response: [], details: nil)),
                         latencyMicros: micros)
        }
        tally.abandoned = 2
        return LoadSummary(tally: tally, elapsed: 2.5, failures: failures, runID: "load-x-y")
    }

    @Test func textIsTheFormatPeopleAndTheInteropTestsRead() {
        #expect(summary(failures: ["connection 1: refused"]).text() == """
            run load-x-y: 1000 calls in 2.50 s = 400 calls/s
            latency ms: p50 0.500  p90 0.900  p99 0.990  p99.9 0.999  max 1.000
            debits acknowledged: 990
            abandoned at the time bound: 2
            outcomes:
              OK: 990
              FAILED_PRECONDITION: 10
            connection failure: connection 1: refused
            """)
    }

    @Test func jsonCarriesTheSameFigures() throws {
        let json = try #require(JSONSerialization.jsonObject(with: Data(summary().json().utf8)) as? [String: Any])
        #expect(json["run_id"] as? String == "load-x-y")
        #expect(json["calls"] as? Int == 1000 && json["ok"] as? Int == 990)
        #expect(json["calls_per_second"] as? Double == 400 && json["elapsed_seconds"] as? Double == 2.5)
        #expect(json["debits_acknowledged"] as? Int == 990 && json["abandoned"] as? Int == 2)
        #expect(json["latency_ms"] as? [String: Double] == ["p50": 0.5, "p90": 0.9, "p99": 0.99, "p99.9": 0.999, "max": 1.0])
        #expect(json["outcomes"] as? [String: Int] == ["OK": 990, "FAILED_PRECONDITION": 10])
        #expect(json["connection_failures"] as? [String] == [])
    }

    @Test func noTimeNoThroughput() {
        #expect(LoadSummary(tally: LoadTally(), elapsed: 0, failures: [], runID: "r").throughput == 0)
    }
}

@Suite struct LoadRunTests {
    @Test(arguments: [(7, 2, [4, 3]), (3, 4, [1, 1, 1, 0]), (200, 4, [50, 50, 50, 50]), (10, 3, [4, 3, 3])])
    func requestsAreSplitExactly(requests: Int, connections: Int, shares: [Int64]) {
        let split = (0..<connections).map { LoadRun.share(of: requests, connections: connections, index: $0) }
        #expect(split == shares && split.reduce(0, +) == Int64(requests))
    }

    @Test func noCountBoundIsUnbounded() {
        #expect(LoadRun.share(of: 0, connections: 4, index: 3) == .max)
    }
}
