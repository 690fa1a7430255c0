import Foundation
import HTTPTypes
import Hummingbird
import SluiceCore
import SluiceStore

/// Who is calling the management API.
enum Caller: Sendable {
    /// A user, by session cookie or by access token.
    case user(User, viaCookie: Bool)
    /// A session opened by token login: it may read that one token and nothing else.
    case tokenSession(tokenId: Int64)
}

/// Resolves the caller of a management request and enforces roles.
struct Authenticator: Sendable {
    let services: Services
    static let cookieName = "sluice_session"

    /// The caller, or nil when anonymous. Throws 401 for a bad access token or a missing/mismatched New-Api-User.
    func caller(_ request: Request, context: SluiceRequestContext) async throws -> Caller? {
        if let authorization = request.headers[.authorization], authorization.lowercased().hasPrefix("bearer ") {
            let credential = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            if !credential.isEmpty, !credential.hasPrefix("sk-") {
                return .user(try await accessTokenUser(credential, request: request), viaCookie: false)
            }
        }
        guard let cookie = request.cookies[Self.cookieName]?.value, !cookie.isEmpty else { return nil }
        guard let session = try await services.sessions.find(idHash: services.secrets.lookupHash(cookie)) else { return nil }
        if let tokenId = session.tokenId { return .tokenSession(tokenId: tokenId) }
        guard let userId = session.userId, let user = try await services.users.find(id: userId) else { return nil }
        guard user.status == User.Status.enabled else { throw APIError.forbidden("This account is disabled") }
        try refuseCrossSiteWrite(request)
        return .user(user, viaCookie: true)
    }

    /// The calling user; 401 when anonymous, 403 for a token session.
    func user(_ request: Request, context: SluiceRequestContext) async throws -> User {
        switch try await caller(request, context: context) {
        case .user(let user, _): return user
        case .tokenSession: throw APIError.forbidden("This session is limited to one token")
        case nil: throw APIError.unauthorized()
        }
    }

    /// The calling user if they are an admin (role >= 10); 403 otherwise.
    func admin(_ request: Request, context: SluiceRequestContext) async throws -> User {
        let user = try await user(request, context: context)
        guard user.isAdmin else { throw APIError.forbidden("This needs an administrator") }
        return user
    }

    private func accessTokenUser(_ credential: String, request: Request) async throws -> User {
        guard let header = request.headers[.newApiUser], !header.isEmpty else {
            throw APIError.unauthorized("The New-Api-User header is required with an access token")
        }
        guard let userId = Int64(header.trimmingCharacters(in: .whitespaces)) else {
            throw APIError.unauthorized("The New-Api-User header must be a user id")
        }
        guard let user = try await services.users.find(id: userId), let stored = user.accessTokenHash,
              Hex.constantTimeEquals(stored, services.secrets.lookupHash(credential)) else {
            throw APIError.unauthorized("The access token does not belong to user \(userId)")
        }
        guard user.status == User.Status.enabled else { throw APIError.forbidden("This account is disabled") }
        return user
    }

    /// Cookie sessions refuse writes whose Origin names another origin (SameSite=Strict does the rest).
    private func refuseCrossSiteWrite(_ request: Request) throws {
        guard ![.get, .head, .options].contains(request.method) else { return }
        guard let origin = request.headers[.origin], origin != "null" else { return }
        guard let host = request.head.authority ?? request.headers[HTTPField.Name("Host")!], let originURL = URL(string: origin),
              let originHost = originURL.host else {
            throw APIError.forbidden("Cross-site request refused")
        }
        let originAuthority = originURL.port.map { "\(originHost):\($0)" } ?? originHost
        if originAuthority.lowercased() != host.lowercased() {
            throw APIError.forbidden("Cross-site request refused")
        }
    }

    /// Opens a session and answers the Set-Cookie header value.
    func openSession(userId: Int64?, tokenId: Int64?) async throws -> String {
        let value = RandomSecret.string(count: 43)
        let expires = Clock.nowSeconds() + services.config.sessionSeconds
        try await services.sessions.create(idHash: services.secrets.lookupHash(value),
                                           session: Session(userId: userId, tokenId: tokenId, expiresAt: expires))
        return "\(Self.cookieName)=\(value); Path=/; Max-Age=\(services.config.sessionSeconds); HttpOnly; SameSite=Strict"
    }

    /// Ends the caller's session, answering the Set-Cookie header that clears it.
    func closeSession(_ request: Request) async throws -> String {
        if let cookie = request.cookies[Self.cookieName]?.value, !cookie.isEmpty {
            try await services.sessions.delete(idHash: services.secrets.lookupHash(cookie))
        }
        return "\(Self.cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
    }

    /// The client address used for throttling and IP rules: the peer, or X-Forwarded-For's first entry from a trusted proxy.
    func clientAddress(_ request: Request, context: SluiceRequestContext) -> String {
        ClientAddress.resolve(request: request, context: context, trustedProxies: services.trustedProxies)?.description ?? "unknown"
    }
}

/// Finds the real client address behind trusted proxies.
enum ClientAddress {
    static func resolve(request: Request, context: SluiceRequestContext, trustedProxies: IPAllowList) -> IPAddress? {
        resolve(peer: context.peerIP, forwardedFor: request.headers[.xForwardedFor], trustedProxies: trustedProxies)
    }

    /// The client of a request from `peer` that carried `X-Forwarded-For: forwardedFor` (read only when the peer is a
    /// trusted proxy).
    static func resolve(peer: IPAddress?, forwardedFor: @autoclosure () -> String?, trustedProxies: IPAllowList) -> IPAddress? {
        guard let peer, !trustedProxies.ranges.isEmpty, trustedProxies.allows(peer),
              let forwarded = forwardedFor() else { return peer }
        // Walk from the right: the first address that is not a trusted proxy is the client.
        let hops = forwarded.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.compactMap(IPAddress.init)
        for hop in hops.reversed() where !trustedProxies.allows(hop) { return hop }
        return hops.first ?? peer
    }
}
