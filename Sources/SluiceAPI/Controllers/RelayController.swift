import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SluiceCore
import SluiceRelay
import SluiceStore

/// `/v1/...`: the OpenAI- and Anthropic-compatible endpoints, and what a key holder can see through the key alone.
///
/// A running server answers `POST` to the four relay endpoints below the router (`HTTPFrontHandler`); the routes
/// here serve the same calls to a router driven without a connection (the tests' `.router` mode).
struct RelayController: Sendable {
    let services: Services

    func addRoutes(to router: Router<SluiceRequestContext>) {
        for endpoint in RelayEndpoint.allCases {
            router.post(RouterPath(endpoint.rawValue)) { request, context in try await relay(endpoint, request, context) }
        }
        router.get("/v1/models") { request, context in try await models(request, context) }
        router.get("/v1/models/:model") { request, context in try await model(request, context) }
        router.get("/v1/dashboard/billing/subscription") { request, context in try await subscription(request, context) }
        router.get("/dashboard/billing/subscription") { request, context in try await subscription(request, context) }
        router.get("/v1/dashboard/billing/usage") { request, context in try await usage(request, context) }
        router.get("/dashboard/billing/usage") { request, context in try await usage(request, context) }
    }

    /// The key of a relay call: `Authorization: Bearer sk-...` or `x-api-key`.
    static func key(of request: Request) -> String? {
        key(authorization: request.headers[.authorization], xApiKey: request.headers[.xApiKey])
    }

    /// The key from the values of `Authorization` and `x-api-key`.
    static func key(authorization: String?, xApiKey: String?) -> String? {
        if let authorization, let key = bearer(authorization.utf8) { return String(Substring(key)) }
        return xApiKey.map { String(Substring(trimmed($0.utf8[...]))) }
    }

    /// The key of an `Authorization` value: what follows "Bearer " (any case), without the spaces and tabs around it;
    /// nil for another scheme. The front reads the head's bytes with it too (`RelayFields`).
    static func bearer<Bytes: BidirectionalCollection<UInt8>>(_ value: Bytes) -> Bytes.SubSequence? {
        // "Bearer " compared on bytes, case-insensitively, without Foundation.
        guard value.count > 7, value.prefix(7).elementsEqual("bearer ".utf8, by: { $0 | 0x20 == $1 | 0x20 }) else { return nil }
        return trimmed(value.dropFirst(7))
    }

    /// `bytes` without the spaces and tabs around them.
    static func trimmed<Bytes: BidirectionalCollection<UInt8>>(_ bytes: Bytes) -> Bytes.SubSequence
        where Bytes.SubSequence: BidirectionalCollection<UInt8> {
        var view = bytes[...]
        while let first = view.first, first == 0x20 || first == 0x09 { view = view.dropFirst() }
        while let last = view.last, last == 0x20 || last == 0x09 { view = view.dropLast() }
        return view
    }

    func relay(_ endpoint: RelayEndpoint, _ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let limit = services.config.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            return respond(.complete(status: 413, headers: [("Content-Type", "application/json")],
                                     body: RelayErrorBody.render(.tooLarge(limit), format: endpoint.format)), context: context)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch {
            return respond(.complete(status: 413, headers: [("Content-Type", "application/json")],
                                     body: RelayErrorBody.render(.tooLarge(limit), format: endpoint.format)), context: context)
        }
        let anthropic = RelayRequest.anthropicHeaderNames.compactMap { name in
            request.headers[HTTPField.Name(name)!].map { (name, $0) }
        }
        let relayRequest = RelayRequest(endpoint: endpoint, key: Self.key(of: request),
                                        clientIP: ClientAddress.resolve(request: request, context: context, trustedProxies: services.trustedProxies),
                                        body: body, requestId: context.requestId, anthropicHeaders: anthropic)
        return respond(await services.relay.handle(relayRequest), context: context)
    }

    func respond(_ result: RelayResponse, context: SluiceRequestContext) -> Response {
        switch result {
        case .complete(let status, let headers, let body):
            var fields = HTTPFields()
            for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
            fields[.xRequestId] = context.requestId
            return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: body))
        case .stream(let status, let headers, let stream):
            var fields = HTTPFields()
            for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
            fields[.xRequestId] = context.requestId
            return Response(status: .init(code: status), headers: fields, body: ResponseBody { writer in
                var adapter = WriterAdapter(writer: writer)
                do {
                    try await stream.pump(&adapter)
                } catch {
                    return
                }
                try await adapter.writer.finish(nil)
            })
        }
    }

    struct WriterAdapter: StreamWriter {
        var writer: any ResponseBodyWriter
        @concurrent mutating func write(_ buffer: ByteBuffer) async throws { try await writer.write(buffer) }
    }

    /// An OpenAI-format error answer.
    func openAIError(_ error: RelayError, context: SluiceRequestContext) -> Response {
        var headers = [("Content-Type", "application/json")]
        if let retry = error.retryAfter { headers.append(("Retry-After", String(retry))) }
        return respond(.complete(status: error.status, headers: headers, body: RelayErrorBody.render(error, format: .openai)), context: context)
    }

    /// `GET /v1/models`: the models the key may use (its groups' models, cut by its model limits).
    func models(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let models: Set<String>
        switch await usableModels(request, context) {
        case .success(let found): models = found
        case .failure(let error): return openAIError(error, context: context)
        }
        let body = JSON.object([("object", .string("list")), ("data", .array(models.sorted().map(Self.modelObject)))])
        return Response(status: .ok, headers: [.contentType: "application/json", .xRequestId: context.requestId],
                        body: .init(byteBuffer: ByteBuffer(bytes: body.serialized())))
    }

    /// `GET /v1/models/{model}`: one model the key may use, else 404 `model_not_found`. A name with `/` in it is
    /// given percent-encoded (`%2F`).
    func model(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let raw = context.parameters.get("model") ?? ""
        let name = raw.removingPercentEncoding ?? raw
        switch await usableModels(request, context) {
        case .success(let models) where models.contains(name):
            return Response(status: .ok, headers: [.contentType: "application/json", .xRequestId: context.requestId],
                            body: .init(byteBuffer: ByteBuffer(bytes: Self.modelObject(name).serialized())))
        case .success: return openAIError(.modelNotFound(name), context: context)
        case .failure(let error): return openAIError(error, context: context)
        }
    }

    /// The models the calling key may use: its groups' models (or the models their channels serve), fallback groups
    /// included, cut by its model limits.
    private func usableModels(_ request: Request, _ context: SluiceRequestContext) async -> Result<Set<String>, RelayError> {
        let token: CachedToken, owner: UserCache.Entry?
        do {
            (token, owner) = try await services.relay.authenticate(key: Self.key(of: request),
                                                                   clientIP: ClientAddress.resolve(request: request, context: context, trustedProxies: services.trustedProxies))
        } catch {
            return .failure(error)
        }
        let snapshot = services.catalog.snapshot
        var models = Set<String>()
        let primary = token.token.group.isEmpty ? (owner?.group ?? Group.defaultName) : token.token.group
        for name in [primary] + token.token.fallbackGroups {
            guard let group = snapshot.groups[name] else { continue }
            let served = snapshot.models(group: name)
            models.formUnion(group.models.isEmpty ? served : Set(group.models))
        }
        if token.token.modelLimitsEnabled { models.formIntersection(token.modelLimits) }
        return .success(models)
    }

    static func modelObject(_ id: String) -> JSON {
        .object([("id", .string(id)), ("object", .string("model")), ("created", .int(1_700_000_000)), ("owned_by", .string("sluice"))])
    }

    /// The balance the key sees, in USD: its own quota, or (unlimited internal key) its owner's balance.
    func balance(_ token: Token) async throws -> (granted: Int64, used: Int64) {
        try? await services.ledger.flush()
        guard let fresh = try await services.tokens.find(id: token.id, userId: nil) else { return (0, 0) }
        if fresh.unlimitedQuota, !fresh.independent, let userId = fresh.userId, let user = try await services.users.find(id: userId) {
            return (user.quota + user.usedQuota, user.usedQuota)
        }
        return (fresh.remainQuota + fresh.usedQuota, fresh.usedQuota)
    }

    /// The token a call's key names, after the relay's key checks.
    func keyHolder(_ request: Request, _ context: SluiceRequestContext) async -> Result<CachedToken, RelayError> {
        do {
            let (cached, _) = try await services.relay.authenticate(key: Self.key(of: request),
                                                                    clientIP: ClientAddress.resolve(request: request, context: context, trustedProxies: services.trustedProxies))
            return .success(cached)
        } catch {
            return .failure(error)
        }
    }

    func subscription(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let cached: CachedToken
        switch await keyHolder(request, context) {
        case .success(let token): cached = token
        case .failure(let error): return openAIError(error, context: context)
        }
        let (granted, _) = try await balance(cached.token)
        let usd = Double(granted) / Double(Quota.unitsPerUSD)
        let expires = cached.token.expiredTime == Token.never ? 0 : cached.token.expiredTime
        let body = JSON.object([("object", .string("billing_subscription")), ("has_payment_method", .bool(true)),
                                ("soft_limit_usd", .double(usd)), ("hard_limit_usd", .double(usd)), ("system_hard_limit_usd", .double(usd)),
                                ("access_until", .int(expires))])
        return Response(status: .ok, headers: [.contentType: "application/json", .xRequestId: context.requestId],
                        body: .init(byteBuffer: ByteBuffer(bytes: body.serialized())))
    }

    func usage(_ request: Request, _ context: SluiceRequestContext) async throws -> Response {
        let cached: CachedToken
        switch await keyHolder(request, context) {
        case .success(let token): cached = token
        case .failure(let error): return openAIError(error, context: context)
        }
        let (_, used) = try await balance(cached.token)
        // total_usage is in US cents, as OpenAI's endpoint answers it.
        let body = JSON.object([("object", .string("list")), ("total_usage", .double(Double(used) * 100 / Double(Quota.unitsPerUSD)))])
        return Response(status: .ok, headers: [.contentType: "application/json", .xRequestId: context.requestId],
                        body: .init(byteBuffer: ByteBuffer(bytes: body.serialized())))
    }
}
