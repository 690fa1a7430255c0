import Hummingbird
import SluiceCore
import SluiceStore

/// Token login (contract section 5): `POST /api/token/login {key}` with an `sk-` key or the code that issued the token
/// opens a session scoped to that one token. Such a session may read the token (`GET /api/token/self`, `POST
/// /api/token/self/key`), its usage (`/api/usage/token`) and its logs (`/api/log/token`); every other endpoint that needs
/// a login answers it 403 (see `Authenticator.user`).
struct TokenSessionController: Sendable {
    let services: Services
    var auth: Authenticator { Authenticator(services: services) }
    var redeemer: Redeemer { Redeemer(services: services) }

    /// Registers the routes. `self` is a constant path component, so it wins over `TokenController`'s `:id`.
    func addRoutes(to api: RouterGroup<SluiceRequestContext>) {
        api.post("token/login", use: login)
        api.get("token/self", use: getSelf)
        api.post("token/self/key", use: revealKey)
    }

    /// Opens the session: `data` is the token, masked, or with its full key when the login redeemed an unused code
    /// (the one moment the key is new). An unknown key or code is 401 (and counts against the address); a top-up code
    /// 400; a disabled or expired unused code 409; a code whose token was deleted 404; a disabled token 403.
    @Sendable func login(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let key = try await redeemer.code(of: request, context: context)
        await services.settleReads()
        let token: Token
        var issued = false
        switch try await redeemer.resolve(key, request: request, context: context) {
        case nil:
            throw APIError.unauthorized("No API key or redemption code matches")
        case .token(let found):
            token = found
        case .unusedCode:
            let outcome = try await redeemer.redeem(key, userId: nil, kinds: [.token], request: request, context: context)
            guard let fresh = outcome.token else { throw APIError.badRequest(RedemptionRefusal.wrongKind(.topup).message) }
            token = fresh
            issued = true
        }
        if token.status == Token.Status.disabled { throw APIError.forbidden("This API key is disabled") }
        let cookie = try await auth.openSession(userId: nil, tokenId: token.id)
        return API.ok(TokenController.TokenDTO(token, revealKey: issued), headers: [.setCookie: cookie])
    }

    /// `GET /api/token/self`: the session's token, key masked.
    @Sendable func getSelf(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        await services.settleReads()
        return API.ok(TokenController.TokenDTO(try await sessionToken(request, context: context)))
    }

    /// `POST /api/token/self/key`: `data: {"key": "sk-..."}`.
    @Sendable func revealKey(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        API.ok(TokenController.KeyDTO(key: try await sessionToken(request, context: context).key))
    }

    /// The token of the caller's token session; 401 when anonymous or the token is gone, 403 for a user session.
    private func sessionToken(_ request: Request, context: SluiceRequestContext) async throws -> Token {
        switch try await auth.caller(request, context: context) {
        case .tokenSession(let tokenId):
            guard let token = try await services.tokens.find(id: tokenId, userId: nil) else {
                throw APIError.unauthorized("The token of this session no longer exists")
            }
            return token
        case .user:
            throw APIError.forbidden("This endpoint answers a token login session; your own tokens are at /api/token/")
        case nil:
            throw APIError.unauthorized()
        }
    }
}
