import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
@testable import SluiceAPI
import SluiceCore
import SluiceRelay
import SluiceStore
import Testing

/// Keeps `GET /api/openapi.json` (Sources/SluiceAPI/OpenAPI/openapi.json) true to the router: every route `buildRouter`
/// registers is documented, every documented operation exists and answers, and the document is sound OpenAPI 3.1.
@Suite struct OpenAPITests {
    /// `METHOD /path/{param}` with the trailing slash of the contract's collection paths (`/api/token/`) dropped.
    static func normalize(_ method: String, _ path: String) -> String {
        var path = path
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        return "\(method.uppercased()) \(path)"
    }

    /// The routes `buildRouter` registers, read from Hummingbird's `Router.routes`.
    static func registeredRoutes(_ env: TestEnvironment) async throws -> Set<String> {
        let logger = TestEnvironment.quietLogger
        let database = try env.openDatabase()
        try await database.migrate()
        let ledger = try await LedgerService.start(database: database, logger: logger).ledger
        let services = Services(config: env.config, database: database, secrets: SecretBox(masterSecret: env.config.secret ?? "secret"),
                                ledger: ledger, logger: logger)
        let routes = buildRouter(services).routes.map { normalize($0.method.rawValue, $0.path.description) }
        await services.upstreamClient.shutdown()
        await database.shutdown()
        return Set(routes)
    }

    /// The served document, parsed.
    static func document(_ client: some TestClientProtocol) async throws -> [String: Any] {
        try await client.execute(uri: "/api/openapi.json", method: .get) { response in
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            let object = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))
            return try #require(object as? [String: Any], "the document is a JSON object")
        }
    }

    static let methods = ["get", "put", "post", "delete", "patch", "head", "options"]

    /// Every documented operation as `METHOD /path`.
    static func documentedOperations(_ document: [String: Any]) -> [(key: String, method: String, path: String, operation: [String: Any])] {
        let paths = document["paths"] as? [String: Any] ?? [:]
        return paths.keys.sorted().flatMap { path -> [(key: String, method: String, path: String, operation: [String: Any])] in
            let item = paths[path] as? [String: Any] ?? [:]
            return methods.compactMap { method in
                (item[method] as? [String: Any]).map { (normalize(method, path), method, path, $0) }
            }
        }
    }

    @Test func everyRegisteredRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        let env = try await TestEnvironment.make(.sqlite)
        let registered = try await Self.registeredRoutes(env)
        #expect(registered.count > 50, "the router lists its routes")
        try await env.test { client in
            let document = try await Self.document(client)
            let documented = Self.documentedOperations(document)
            let keys = Set(documented.map(\.key))
            #expect(keys.count == documented.count, "no operation is documented twice (paths differing only by a trailing slash)")
            for route in registered.subtracting(keys).sorted() {
                Issue.record("\(route) is registered by buildRouter but missing from Sources/SluiceAPI/OpenAPI/openapi.json")
            }
            for route in keys.subtracting(registered).sorted() {
                Issue.record("\(route) is in Sources/SluiceAPI/OpenAPI/openapi.json but buildRouter does not register it")
            }
        }
    }

    @Test func documentIsOpenAPI31WithSoundOperations() async throws {
        let env = try await TestEnvironment.make(.sqlite)
        try await env.test { client in
            let document = try await Self.document(client)
            let version = try #require(document["openapi"] as? String)
            #expect(version.hasPrefix("3.1."), "openapi: \(version)")
            #expect((document["info"] as? [String: Any])?["title"] as? String == "Sluice API")
            let components = try #require(document["components"] as? [String: Any])
            let schemes = try #require(components["securitySchemes"] as? [String: Any])
            for scheme in ["cookieSession", "accessToken", "newApiUser", "apiKeyBearer", "apiKeyHeader"] {
                #expect(schemes[scheme] != nil, "security scheme \(scheme)")
            }
            let schemas = components["schemas"] as? [String: Any] ?? [:]
            let responses = components["responses"] as? [String: Any] ?? [:]

            // Every $ref resolves.
            var references: [String] = []
            func collect(_ value: Any) {
                if let object = value as? [String: Any] {
                    if let reference = object["$ref"] as? String { references.append(reference) }
                    object.values.forEach(collect)
                } else if let array = value as? [Any] { array.forEach(collect) }
            }
            collect(document)
            for reference in Set(references) {
                let parts = reference.split(separator: "/").map(String.init)
                let found = parts.count == 4 && parts[0] == "#" && parts[1] == "components"
                    && (parts[2] == "schemas" ? schemas[parts[3]] != nil : parts[2] == "responses" ? responses[parts[3]] != nil : false)
                #expect(found, "unresolved \(reference)")
            }

            var operationIds = Set<String>()
            for (key, _, path, operation) in Self.documentedOperations(document) {
                let id = operation["operationId"] as? String ?? ""
                #expect(!id.isEmpty && operationIds.insert(id).inserted, "\(key): a unique operationId")
                #expect(operation["security"] is [Any], "\(key): declares its security")
                let answers = operation["responses"] as? [String: Any] ?? [:]
                #expect(answers["200"] != nil, "\(key): documents its success")
                // Path parameters are declared.
                let declared = Set((operation["parameters"] as? [[String: Any]] ?? []).filter { $0["in"] as? String == "path" }.compactMap { $0["name"] as? String })
                let templated = Set(path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) })
                #expect(declared == templated, "\(key): path parameters \(templated.sorted()) declared")
                guard path.hasPrefix("/api/"), path != "/api/openapi.json", path != "/api/redemption/export" else { continue }
                // Management answers: the envelope with success true, and failures in the error envelope.
                let success = (((answers["200"] as? [String: Any])?["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"] as? [String: Any]
                #expect((success?["required"] as? [String]) == ["success", "message", "data"], "\(key): 200 is the envelope")
                #expect((success?["properties"] as? [String: Any])?["data"] != nil, "\(key): 200 documents data")
                for (status, answer) in answers where status != "200" {
                    #expect((answer as? [String: Any])?["$ref"] as? String == "#/components/responses/E\(status)", "\(key): \(status) is the error envelope")
                }
            }
        }
    }

    /// The live half of the check: each documented operation reaches a handler (not the router's 404 or 405).
    @Test func everyDocumentedOperationAnswers() async throws {
        let env = try await TestEnvironment.make(.sqlite)
        try await env.test { client in
            let document = try await Self.document(client)
            for (key, method, path, _) in Self.documentedOperations(document) {
                let uri = path.replacingOccurrences(of: "{id}", with: "1")
                let body = ["post", "put"].contains(method) ? "{}" : nil
                let answer = try await client.call(HTTPRequest.Method(method.uppercased())!, uri, body)
                let routeMissing = answer.code == 405 || (answer.code == 404 && (answer.message.hasPrefix("Not found: ") || !path.hasPrefix("/api/")))
                #expect(!routeMissing, "\(key) answered \(answer.code) \(answer.text.prefix(200))")
                #expect(answer.code < 500, "\(key) answered \(answer.code) \(answer.text.prefix(200))")
            }
        }
    }
}
