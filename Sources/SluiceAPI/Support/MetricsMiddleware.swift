import Hummingbird
import SluiceRelay

/// Counts every request by matched route and status, with its latency.
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = SluiceRequestContext
    let metrics: SluiceMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        do {
            let response = try await next(request, context)
            metrics.request(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: response.status.code,
                            duration: ContinuousClock.now - started)
            return response
        } catch let error as HTTPError {
            metrics.request(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: error.status.code,
                            duration: ContinuousClock.now - started)
            throw error
        }
    }
}
