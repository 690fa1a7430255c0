import Hummingbird
import SluiceCore
import SluiceRelay
import SluiceStore

/// Call logs and usage: `/api/log/...`, `/api/usage/token`, `/api/data/self`, and the public `/api/pricing`.
struct LogController: Sendable {
    let services: Services
    var auth: Authenticator { Authenticator(services: services) }

    struct LogDTO: Codable, Sendable {
        let id: Int64
        let createdAt: Int64
        let type: Int
        let userId: Nullable<Int64>
        let tokenId: Nullable<Int64>
        let tokenName: String
        let modelName: String
        let group: String
        let channel: Nullable<Int64>
        let channelName: String
        let promptTokens: Int
        let completionTokens: Int
        let quota: Int64
        let useTimeMs: Int
        let isStream: Bool
        let ip: String
        let content: String
        let requestId: String

        init(_ entry: LogEntry, showChannel: Bool) {
            id = entry.id
            createdAt = entry.createdAt
            type = entry.type
            userId = Nullable(entry.userId)
            tokenId = Nullable(entry.tokenId)
            tokenName = entry.tokenName
            modelName = entry.modelName
            group = entry.group
            channel = Nullable(showChannel ? entry.channelId : nil)
            channelName = showChannel ? entry.channelName : ""
            promptTokens = entry.promptTokens
            completionTokens = entry.completionTokens
            quota = entry.quota
            useTimeMs = entry.useTimeMs
            isStream = entry.isStream
            ip = entry.ip
            content = entry.content
            requestId = entry.requestId
        }
    }

    struct HourDTO: Codable, Sendable {
        let hour: Int64
        let modelName: String
        let tokenId: Int64
        let count: Int64
        let promptTokens: Int64
        let completionTokens: Int64
        let quota: Int64
    }

    struct TokenUsageDTO: Codable, Sendable {
        let object: String
        let id: Int64
        let name: String
        let totalGranted: Int64
        let totalUsed: Int64
        let totalAvailable: Int64
        let unlimitedQuota: Bool
        let expiresAt: Int64
        let modelLimitsEnabled: Bool
        let modelLimits: [String]
        let requestCount: Int64
        let promptTokens: Int64
        let completionTokens: Int64
    }

    func addRoutes(to api: RouterGroup<SluiceRequestContext>) {
        api.get("log/self", use: selfLogs)
        api.get("log/self/search", use: selfLogs)
        api.get("log/token", use: tokenLogs)
        api.get("log", use: allLogs)
        api.get("usage/token", use: tokenUsage)
        api.get("data/self", use: selfData)
        api.get("pricing") { request, context in try await ModelController(services: services).pricing(request, context: context) }
    }

    func filter(_ request: Request) throws -> LogFilter {
        LogFilter(tokenId: try request.intQuery("token_id").map(Int64.init), tokenName: request.query("token_name"),
                  modelName: request.query("model_name"), type: try request.intQuery("type"),
                  start: try request.intQuery("start_timestamp").map(Int64.init), end: try request.intQuery("end_timestamp").map(Int64.init))
    }

    func page(_ request: Request) throws -> Page {
        Page(number: try request.intQuery("p", "page"), size: try request.intQuery("size", "page_size", "ps"))
    }

    @Sendable func selfLogs(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        try? await services.ledger.flush()
        var filter = try filter(request)
        filter.userId = user.id
        let page = try page(request)
        let result = try await services.logs.list(filter, page: page)
        return API.ok(Paged(items: result.items.map { LogDTO($0, showChannel: user.isAdmin) }, total: result.total, page: page.number, pageSize: page.size))
    }

    @Sendable func allLogs(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        try? await services.ledger.flush()
        var filter = try filter(request)
        if let username = request.query("username"), !username.isEmpty {
            guard let user = try await services.users.find(username: username) else {
                let page = try page(request)
                return API.ok(Paged<LogDTO>(items: [], total: 0, page: page.number, pageSize: page.size))
            }
            filter.userId = user.id
        }
        if let userId = try request.intQuery("user_id") { filter.userId = Int64(userId) }
        let page = try page(request)
        let result = try await services.logs.list(filter, page: page)
        return API.ok(Paged(items: result.items.map { LogDTO($0, showChannel: true) }, total: result.total, page: page.number, pageSize: page.size))
    }

    /// The token a key holder (Bearer sk-...) or a token session speaks for.
    func keyHolderToken(_ request: Request, context: SluiceRequestContext) async throws -> Token {
        if let key = RelayController.key(of: request), key.hasPrefix("sk-") {
            do {
                let (cached, _) = try await services.relay.authenticate(key: key, clientIP: ClientAddress.resolve(request: request, context: context, trustedProxies: services.trustedProxies))
                return cached.token
            } catch {
                throw APIError.unauthorized(error.message)
            }
        }
        switch try await auth.caller(request, context: context) {
        case .tokenSession(let tokenId):
            guard let token = try await services.tokens.find(id: tokenId, userId: nil) else { throw APIError.unauthorized("The token of this session no longer exists") }
            return token
        case .user:
            throw APIError.forbidden("This endpoint answers for one API key: send it as Authorization: Bearer sk-...")
        case nil:
            throw APIError.unauthorized("Send the API key as Authorization: Bearer sk-...")
        }
    }

    @Sendable func tokenLogs(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let token = try await keyHolderToken(request, context: context)
        try? await services.ledger.flush()
        var filter = try filter(request)
        filter.tokenId = token.id
        let page = try page(request)
        let result = try await services.logs.list(filter, page: page)
        return API.ok(Paged(items: result.items.map { LogDTO($0, showChannel: false) }, total: result.total, page: page.number, pageSize: page.size))
    }

    @Sendable func tokenUsage(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let token = try await keyHolderToken(request, context: context)
        try? await services.ledger.flush()
        guard let fresh = try await services.tokens.find(id: token.id, userId: nil) else { throw APIError.notFound("Token does not exist") }
        let totals = try await services.logs.totals(LogFilter(tokenId: token.id))
        return API.ok(TokenUsageDTO(object: "token_usage", id: fresh.id, name: fresh.name, totalGranted: fresh.remainQuota + fresh.usedQuota,
                                     totalUsed: fresh.usedQuota, totalAvailable: fresh.remainQuota, unlimitedQuota: fresh.unlimitedQuota,
                                     expiresAt: fresh.expiredTime, modelLimitsEnabled: fresh.modelLimitsEnabled, modelLimits: fresh.modelLimits,
                                     requestCount: totals.count, promptTokens: totals.promptTokens, completionTokens: totals.completionTokens))
    }

    @Sendable func selfData(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        try? await services.ledger.flush()
        var filter = try filter(request)
        filter.userId = user.id
        let rows = try await services.logs.hourly(filter)
        return API.ok(rows.map { HourDTO(hour: $0.hour, modelName: $0.modelName, tokenId: $0.tokenId, count: $0.count,
                                          promptTokens: $0.promptTokens, completionTokens: $0.completionTokens, quota: $0.quota) })
    }
}
