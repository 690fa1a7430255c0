import Prometheus
import Synchronization

/// Sluice's Prometheus metrics: requests by route and status, latency, relay calls by group and model, upstream
/// errors, quota spent, and reservations outstanding. One registry per server, exposed at `/metrics`.
public final class SluiceMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    static let latencyBuckets: [Duration] = [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
                                             .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                             .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
                                             .seconds(30), .seconds(60)]

    /// The series already made, so that a request finds its counter with one dictionary lookup instead of the
    /// registry's name building and validation.
    private struct Series: Hashable {
        var metric: UInt8
        var a: String, b: String, c: String
        /// A number label (a status), kept as a number so that finding its series builds no string.
        var n = 0
    }
    private let counters = Mutex<[Series: Counter]>([:])
    private let histograms = Mutex<[String: DurationHistogram]>([:])

    public init() {}

    private func counter(_ series: Series, make: () -> Counter) -> Counter {
        counters.withLock { counters in
            if let counter = counters[series] { return counter }
            let counter = make()
            counters[series] = counter
            return counter
        }
    }

    /// One HTTP request answered.
    public func request(route: String, method: String, status: Int, duration: Duration) {
        counter(Series(metric: 0, a: route, b: method, c: "", n: status)) {
            registry.makeCounter(descriptor: .init(namespace: "sluice", metricName: "http_requests", unitName: "total", helpText: "HTTP requests answered"),
                                 labels: [("route", route), ("method", method), ("status", String(status))])
        }.increment()
        histograms.withLock { histograms in
            if let histogram = histograms[route] { return histogram }
            let histogram = registry.makeDurationHistogram(descriptor: .init(namespace: "sluice", metricName: "http_request_duration", unitName: "seconds",
                                                                             helpText: "Time to answer (to the first byte of a stream)"),
                                                           labels: [("route", route)], buckets: Self.latencyBuckets)
            histograms[route] = histogram
            return histogram
        }.record(duration)
    }

    /// One relay call settled (or failed).
    public func relayCall(group: String, model: String, outcome: String, quota: Int64) {
        counter(Series(metric: 1, a: group, b: model, c: outcome)) {
            registry.makeCounter(descriptor: .init(namespace: "sluice", metricName: "relay_calls", unitName: "total", helpText: "Relay calls by group, model and outcome"),
                                 labels: [("group", group), ("model", model), ("outcome", outcome)])
        }.increment()
        if quota > 0 {
            counter(Series(metric: 2, a: group, b: model, c: "")) {
                registry.makeCounter(descriptor: .init(namespace: "sluice", metricName: "quota_spent", unitName: "units", helpText: "Quota units charged (500000 = 1 USD)"),
                                     labels: [("group", group), ("model", model)])
            }.increment(by: quota)
        }
    }

    /// One upstream failure of a channel.
    public func upstreamError(channel: String) {
        counter(Series(metric: 3, a: channel, b: "", c: "")) {
            registry.makeCounter(descriptor: .init(namespace: "sluice", metricName: "upstream_errors", unitName: "total", helpText: "Upstream failures by channel"),
                                 labels: [("channel", channel)])
        }.increment()
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
