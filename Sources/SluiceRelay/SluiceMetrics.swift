import Prometheus

/// Sluice's Prometheus metrics: requests by route and status, latency, relay calls by group and model, upstream
/// errors, quota spent, and reservations outstanding. One registry per server, exposed at `/metrics`.
public final class SluiceMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    static let latencyBuckets: [Duration] = [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
                                             .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                             .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
                                             .seconds(30), .seconds(60)]

    public init() {}

    /// One HTTP request answered.
    public func request(route: String, method: String, status: Int, duration: Duration) {
        registry.makeCounter(descriptor: .init(namespace: "sluice", metricName: "http_requests", unitName: "total", helpText: "HTTP requests answered"),
                             labels: [("route", route), ("method", method), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: .init(namespace: "sluice", metricName: "http_request_duration", unitName: "seconds",
                                                         helpText: "Time to answer (to the first byte of a stream)"),
                                       labels: [("route", route)], buckets: Self.latencyBuckets).record(duration)
    }

    /// One relay call settled (or failed).
    public func relayCall(group: String, model: String, outcome: String, quota: Int64) {
        registry.makeCounter(descriptor: .init(namespace: "sluice", metricName: "relay_calls", unitName: "total", helpText: "Relay calls by group, model and outcome"),
                             labels: [("group", group), ("model", model), ("outcome", outcome)]).increment()
        if quota > 0 {
            registry.makeCounter(descriptor: .init(namespace: "sluice", metricName: "quota_spent", unitName: "units", helpText: "Quota units charged (500000 = 1 USD)"),
                                 labels: [("group", group), ("model", model)]).increment(by: quota)
        }
    }

    /// One upstream failure of a channel.
    public func upstreamError(channel: String) {
        registry.makeCounter(descriptor: .init(namespace: "sluice", metricName: "upstream_errors", unitName: "total", helpText: "Upstream failures by channel"),
                             labels: [("channel", channel)]).increment()
    }

    /// Units held by calls in flight, set when metrics are read.
    public func reservations(outstanding: Int64, unwrittenCalls: Int) {
        registry.makeGauge(descriptor: .init(namespace: "sluice", metricName: "reservations_outstanding", unitName: "units",
                                             helpText: "Quota units reserved by calls in flight")).set(to: Double(outstanding))
        registry.makeGauge(descriptor: .init(namespace: "sluice", metricName: "ledger_backlog", unitName: "calls",
                                             helpText: "Settled calls not yet written")).set(to: Double(unwrittenCalls))
    }

    /// The exposition text.
    public func render() -> [UInt8] { registry.emitToBuffer() }
}
