import Hummingbird
import Logging
import SluiceCore

/// Turns every failure of the management API into the envelope with a real status, and stamps the request id.
/// Unexpected errors are logged and answered as 500 without detail.
struct EnvelopeErrorMiddleware: RouterMiddleware {
    typealias Context = SluiceRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/api/") || request.uri.path == "/api" else {
            var response = try await next(request, context)
            response.headers[.xRequestId] = context.requestId
            return response
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = API.failure(error)
        } catch let error as ValidationError {
            response = API.failure(APIError(error))
        } catch let error as HTTPError {
            let message: String
            switch error.status.code {
            case 404: message = "Not found: \(request.method) \(request.uri.path)"
            case 405: message = "Method not allowed"
            case 413: message = "The request body is too large"
            default: message = error.body ?? error.status.reasonPhrase
            }
            response = API.failure(APIError(status: error.status.code, message))
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(error)", "request_id": "\(context.requestId)"])
            response = API.failure(APIError(status: 500, "Internal error; request id \(context.requestId)"))
        }
        response.headers[.xRequestId] = context.requestId
        return response
    }
}
