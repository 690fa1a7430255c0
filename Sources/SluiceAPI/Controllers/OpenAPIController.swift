import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /api/openapi.json`: the OpenAPI 3.1 document of the management and relay API, a resource of this target
/// (`Sources/SluiceAPI/OpenAPI/openapi.json`). `OpenAPITests` keeps it true to the router.
struct OpenAPIController: Sendable {
    /// The document's bytes, read once from the package's resources.
    static let document: ByteBuffer = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"), let data = try? Data(contentsOf: url) else {
            return ByteBuffer(string: "{}")
        }
        return ByteBuffer(bytes: data)
    }()

    func addRoutes(to api: RouterGroup<SluiceRequestContext>) {
        api.get("openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-cache"],
                     body: .init(byteBuffer: Self.document))
        }
    }
}
