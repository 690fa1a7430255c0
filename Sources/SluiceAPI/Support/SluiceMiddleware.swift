import HTTPTypes
import Hummingbird
import Logging
import SluiceCore
import SluiceRelay

/// What every request goes through, in one layer (one async frame instead of three, which an open stream keeps for
/// as long as it is open):
/// - the management API's failures become the envelope with a real status; unexpected errors are logged and
///   answered as 500 without detail;
/// - the console's pages and files (everything outside `/api`, `/v1`, `/healthz` and `/metrics`) get security headers;
/// - every answer carries `X-Request-Id`;
/// - every request is counted by matched route and status, with its latency.
struct SluiceMiddleware: RouterMiddleware {
    typealias Context = SluiceRequestContext
    let metrics: SluiceMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let path = request.uri.path
        let isAPI = path.hasPrefix("/api/") || path == "/api"
        var response: Response
        do {
            response = try await next(request, context)
            if !isAPI && !path.hasPrefix("/v1/") && path != "/healthz" && path != "/metrics" { Self.addConsoleHeaders(&response) }
        } catch {
            guard isAPI else {
                if let error = error as? HTTPError { record(request, context, status: error.status.code, since: started) }
                throw error
            }
            response = API.failure(Self.envelope(error, request: request, context: context))
        }
        response.headers[.xRequestId] = context.requestId
        record(request, context, status: response.status.code, since: started)
        return response
    }

    func record(_ request: Request, _ context: Context, status: Int, since started: ContinuousClock.Instant) {
        metrics.request(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: status,
                        duration: ContinuousClock.now - started)
    }

    /// A failure of the management API as the error its envelope reports.
    static func envelope(_ error: any Error, request: Request, context: Context) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as ValidationError:
            return APIError(error)
        case let error as HTTPError:
            let message: String
            switch error.status.code {
            case 404: message = "Not found: \(request.method) \(request.uri.path)"
            case 405: message = "Method not allowed"
            case 413: message = "The request body is too large"
            default: message = error.body ?? error.status.reasonPhrase
            }
            return APIError(status: error.status.code, message)
        default:
            context.logger.error("unexpected error", metadata: ["error": "\(error)", "request_id": "\(context.requestId)"])
            return APIError(status: 500, "Internal error; request id \(context.requestId)")
        }
    }

    static func addConsoleHeaders(_ response: inout Response) {
        response.headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
    }
}
