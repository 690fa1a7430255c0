import Foundation
import Hummingbird
import SluiceCore
import SluiceStore

/// `/api/user/...`: registration, login, the caller's own account, access tokens, and the admin's user management.
struct UserController: Sendable {
    let services: Services
    var auth: Authenticator { Authenticator(services: services) }

    /// A user as answers show it (never the password hash or access token).
    struct UserDTO: Codable, Sendable {
        let id: Int64
        let username: String
        let displayName: String
        let role: Int
        let status: Int
        let group: String
        let quota: Int64
        let usedQuota: Int64
        let requestCount: Int64
        let createdAt: Int64

        init(_ user: User) {
            id = user.id
            username = user.username
            displayName = user.displayName
            role = user.role
            status = user.status
            group = user.group
            quota = user.quota
            usedQuota = user.usedQuota
            requestCount = user.requestCount
            createdAt = user.createdAt
        }
    }

    struct Credentials: Decodable, Sendable {
        let username: String?
        let password: String?
    }

    struct SelfUpdate: Decodable, Sendable {
        let displayName: String?
        let password: String?
        let originalPassword: String?
    }

    struct AdminCreate: Decodable, Sendable {
        let username: String?
        let password: String?
        let displayName: String?
        let role: Int?
        let group: String?
        let quota: Int64?
    }

    struct AdminUpdate: Decodable, Sendable {
        let id: Int64?
        let displayName: String?
        let password: String?
        let role: Int?
        let status: Int?
        let group: String?
        let quota: Int64?
    }

    struct GroupChoice: Codable, Sendable {
        let name: String
        let description: String
        let ratio: Double
        let models: [String]
        let rpm: Int
        let tpm: Int
    }

    func addRoutes(to router: RouterGroup<SluiceRequestContext>) {
        router.post("register", use: register)
        router.post("login", use: login)
        router.get("logout", use: logout)
        router.post("logout", use: logout)
        router.get("self", use: getSelf)
        router.put("self", use: updateSelf)
        router.get("self/groups", use: selfGroups)
        router.get("token", use: accessToken)
        router.get("", use: list)
        router.get("search", use: list)
        router.post("", use: create)
        router.put("", use: update)
        router.get(":id", use: get)
        router.delete(":id", use: delete)
    }

    @Sendable func register(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        guard services.config.registrationOpen else { throw APIError.forbidden("Registration is closed on this server") }
        let body = try await API.decode(Credentials.self, from: request)
        guard let username = body.username, !username.isEmpty else { throw APIError.badRequest("username is required") }
        guard let password = body.password else { throw APIError.badRequest("password is required") }
        try User.validateUsername(username)
        try User.validatePassword(password)
        guard let user = try await services.users.create(username: username, passwordHash: try await PasswordHasher.hash(password, cost: services.config.passwordCost),
                                                         role: User.Role.user, group: Group.defaultName,
                                                         quota: services.config.newUserQuota) else {
            throw APIError.conflict("The username '\(username)' is already taken")
        }
        return API.ok(UserDTO(user))
    }

    @Sendable func login(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let body = try await API.decode(Credentials.self, from: request)
        guard let username = body.username, !username.isEmpty, let password = body.password, !password.isEmpty else {
            throw APIError.badRequest("username and password are required")
        }
        let address = auth.clientAddress(request, context: context)
        let nameKey = "name:" + username.lowercased(), addressKey = "addr:" + address
        if let wait = services.loginFailuresByName.retryAfter(nameKey) ?? services.loginFailuresByAddress.retryAfter(addressKey) {
            throw APIError.tooMany("Too many failed logins; try again in \(wait) seconds", retryAfter: wait)
        }
        guard let user = try await services.users.find(username: username),
              try await PasswordHasher.verify(password, hash: user.passwordHash) else {
            services.loginFailuresByName.record(nameKey)
            services.loginFailuresByAddress.record(addressKey)
            throw APIError.unauthorized("Wrong username or password")
        }
        guard user.status == User.Status.enabled else { throw APIError.forbidden("This account is disabled") }
        services.loginFailuresByName.reset(nameKey)
        let cookie = try await auth.openSession(userId: user.id, tokenId: nil)
        return API.ok(UserDTO(user), headers: [.setCookie: cookie])
    }

    @Sendable func logout(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let cookie = try await auth.closeSession(request)
        return API.ok(Optional<Int>.none, headers: [.setCookie: cookie])
    }

    @Sendable func getSelf(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.user(request, context: context)
        await services.settleReads()
        return API.ok(UserDTO(try await auth.user(request, context: context)))
    }

    @Sendable func updateSelf(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        var user = try await auth.user(request, context: context)
        let body = try await API.decode(SelfUpdate.self, from: request)
        if let name = body.displayName {
            guard (1...30).contains(name.count) else { throw APIError.badRequest("display_name must be 1 to 30 characters long") }
            user.displayName = name
        }
        if let password = body.password {
            guard let original = body.originalPassword, try await PasswordHasher.verify(original, hash: user.passwordHash) else {
                throw APIError.badRequest("original_password is wrong")
            }
            try User.validatePassword(password)
            user.passwordHash = try await PasswordHasher.hash(password, cost: services.config.passwordCost)
        }
        try await services.users.update(user)
        return API.ok(UserDTO(user))
    }

    @Sendable func selfGroups(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        let groups = try await services.groups.all().filter { $0.selectable || $0.name == user.group || user.isAdmin }
        return API.ok(groups.map { GroupChoice(name: $0.name, description: $0.description, ratio: $0.ratio.decimal,
                                                models: $0.models, rpm: $0.rpm, tpm: $0.tpm) })
    }

    @Sendable func accessToken(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let user = try await auth.user(request, context: context)
        let token = RandomSecret.string(count: 32)
        try await services.users.setAccessTokenHash(id: user.id, hash: services.secrets.lookupHash(token))
        return API.ok(token)
    }

    // MARK: admin

    @Sendable func list(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        await services.settleReads()
        let page = Page(number: try request.intQuery("p", "page"), size: try request.intQuery("size", "page_size", "ps"))
        let result = try await services.users.list(page: page, keyword: request.query("keyword"))
        return API.ok(Paged(items: result.items.map(UserDTO.init), total: result.total, page: page.number, pageSize: page.size))
    }

    @Sendable func get(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        await services.settleReads()
        let id = try context.parameters.require("id", as: Int64.self)
        guard let user = try await services.users.find(id: id) else { throw APIError.notFound("User does not exist") }
        return API.ok(UserDTO(user))
    }

    @Sendable func create(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let admin = try await auth.admin(request, context: context)
        let body = try await API.decode(AdminCreate.self, from: request)
        guard let username = body.username, let password = body.password else { throw APIError.badRequest("username and password are required") }
        try User.validateUsername(username)
        try User.validatePassword(password)
        let role = body.role ?? User.Role.user
        try checkRoleGrant(role, by: admin)
        let group = body.group ?? Group.defaultName
        guard try await services.groups.find(name: group) != nil else { throw APIError.badRequest("group: unknown group '\(group)'") }
        let quota = body.quota ?? 0
        guard quota >= 0 else { throw APIError.badRequest("quota must not be negative") }
        guard var user = try await services.users.create(username: username, passwordHash: try await PasswordHasher.hash(password, cost: services.config.passwordCost), role: role,
                                                         group: group, quota: quota) else {
            throw APIError.conflict("The username '\(username)' is already taken")
        }
        if let name = body.displayName, !name.isEmpty {
            user.displayName = name
            try await services.users.update(user)
        }
        await services.audit(admin, "created user \(user.id) (\(user.username)) with role \(user.role), group \(user.group), quota \(user.quota)",
                             ip: auth.clientAddress(request, context: context))
        return API.ok(UserDTO(user))
    }

    @Sendable func update(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let admin = try await auth.admin(request, context: context)
        let body = try await API.decode(AdminUpdate.self, from: request)
        guard let id = body.id else { throw APIError.badRequest("id is required") }
        await services.settleReads()
        guard var user = try await services.users.find(id: id) else { throw APIError.notFound("User does not exist") }
        let before = user
        try checkAuthority(admin, over: user)
        if let role = body.role, role != user.role {
            guard user.id != admin.id else { throw APIError.forbidden("You cannot change your own role") }
            try checkRoleGrant(role, by: admin)
            user.role = role
        }
        if let status = body.status {
            guard status == User.Status.enabled || status == User.Status.disabled else {
                throw APIError.badRequest("status must be 1 (enabled) or 2 (disabled)")
            }
            guard !(user.id == admin.id && status == User.Status.disabled) else { throw APIError.forbidden("You cannot disable yourself") }
            user.status = status
        }
        if let group = body.group {
            guard try await services.groups.find(name: group) != nil else { throw APIError.badRequest("group: unknown group '\(group)'") }
            user.group = group
        }
        if let name = body.displayName { user.displayName = name }
        if let password = body.password, !password.isEmpty {
            try User.validatePassword(password)
            user.passwordHash = try await PasswordHasher.hash(password, cost: services.config.passwordCost)
        }
        let quotaChanged = body.quota.map { $0 != user.quota } ?? false
        if let quota = body.quota {
            guard quota >= 0 else { throw APIError.badRequest("quota must not be negative") }
            user.quota = quota
        }
        try await services.users.update(user)
        if quotaChanged { try await services.users.setQuota(id: user.id, quota: user.quota) }
        services.changes.userChanged(user.id)
        guard let saved = try await services.users.find(id: user.id) else { throw APIError.notFound("User does not exist") }
        var changes: [String] = []
        if before.quota != saved.quota { changes.append("quota \(before.quota) -> \(saved.quota)") }
        if before.group != saved.group { changes.append("group \(before.group) -> \(saved.group)") }
        if before.status != saved.status { changes.append("status \(before.status) -> \(saved.status)") }
        if before.role != saved.role { changes.append("role \(before.role) -> \(saved.role)") }
        if before.passwordHash != saved.passwordHash { changes.append("password reset") }
        if !changes.isEmpty {
            await services.audit(admin, "updated user \(saved.id) (\(saved.username)): " + changes.joined(separator: ", "),
                                 ip: auth.clientAddress(request, context: context))
        }
        return API.ok(UserDTO(saved))
    }

    @Sendable func delete(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let admin = try await auth.admin(request, context: context)
        let id = try context.parameters.require("id", as: Int64.self)
        guard let user = try await services.users.find(id: id) else { throw APIError.notFound("User does not exist") }
        guard user.id != admin.id else { throw APIError.forbidden("You cannot delete yourself") }
        try checkAuthority(admin, over: user)
        _ = try await services.users.delete(id: id)
        services.changes.userChanged(id)
        await services.audit(admin, "deleted user \(id) (\(user.username))", ip: auth.clientAddress(request, context: context))
        return API.ok()
    }

    /// An admin acts on themselves or on users of a lower role only.
    private func checkAuthority(_ admin: User, over user: User) throws {
        if user.id != admin.id && user.role >= admin.role {
            throw APIError.forbidden("You cannot manage a user whose role is not below yours")
        }
    }

    /// Only roles 1 and 10 may be given, and only below the giver's own.
    private func checkRoleGrant(_ role: Int, by admin: User) throws {
        guard role == User.Role.user || role == User.Role.admin else { throw APIError.badRequest("role must be 1 (user) or 10 (admin)") }
        guard role < admin.role else { throw APIError.forbidden("You cannot give a role equal to or above your own") }
    }
}

/// A management handler.
typealias Handler = @Sendable (Request, SluiceRequestContext) async throws -> Response

extension RouterGroup where Context == SluiceRequestContext {
    /// The contract's shape of an admin collection: `GET /`, `POST /`, `PUT /` (id in the body), `GET /:id`, `DELETE /:id`.
    func addCollection(list: @escaping Handler, create: @escaping Handler, update: @escaping Handler, get: @escaping Handler,
                       delete: @escaping Handler) {
        self.get("", use: list)
        post("", use: create)
        put("", use: update)
        self.get(":id", use: get)
        self.delete(":id", use: delete)
    }
}

/// A page of a collection: `{items, total, page, page_size}`.
struct Paged<Item: Encodable & Sendable>: Encodable, Sendable {
    let items: [Item]
    let total: Int
    let page: Int
    let pageSize: Int
}

extension Paged {
    /// The page the request's `p`/`size` ask for, of a whole (small) collection.
    init<Element>(_ all: [Element], request: Request, _ transform: (Element) -> Item) throws {
        let page = Page(number: try request.intQuery("p", "page"), size: try request.intQuery("size", "page_size", "ps"))
        self.init(items: all.dropFirst(page.offset).prefix(page.size).map(transform), total: all.count, page: page.number, pageSize: page.size)
    }
}
