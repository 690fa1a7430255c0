import HTTPTypes
import Hummingbird

/// Security headers on the console's pages and files (everything outside `/api` and `/v1`).
struct ConsoleHeadersMiddleware: RouterMiddleware {
    typealias Context = SluiceRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        let path = request.uri.path
        if !path.hasPrefix("/api/") && !path.hasPrefix("/v1/") && path != "/healthz" && path != "/metrics" {
            response.headers[HTTPField.Name("Content-Security-Policy")!] =
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
            response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
            response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
            response.headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        }
        return response
    }
}
