import Hummingbird
import SluiceCore
import SluiceStore

/// `/api/group/...` (admin): pricing tiers. A group may be addressed by id or by name.
struct GroupController: Sendable {
    let services: Services
    var auth: Authenticator { Authenticator(services: services) }

    struct GroupDTO: Codable, Sendable {
        let id: Int64
        let name: String
        let description: String
        let ratio: Double
        let models: [String]
        let rpm: Int
        let tpm: Int
        let selectable: Bool

        init(_ group: Group) {
            id = group.id
            name = group.name
            description = group.description
            ratio = group.ratio.decimal
            models = group.models
            rpm = group.rpm
            tpm = group.tpm
            selectable = group.selectable
        }
    }

    struct GroupInput: Decodable, Sendable {
        let id: Int64?
        let name: String?
        let description: String?
        let ratio: Micros?
        let models: FlexibleList?
        let rpm: Int?
        let tpm: Int?
        let selectable: Bool?
    }

    func addRoutes(to router: RouterGroup<SluiceRequestContext>) {
        router.addCollection(list: list, create: create, update: update, get: get, delete: delete)
    }

    @Sendable func list(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        return API.ok(try Paged(try await services.groups.all(), request: request, GroupDTO.init))
    }

    @Sendable func get(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        return API.ok(GroupDTO(try await find(context.parameters.require("id"))))
    }

    @Sendable func create(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let admin = try await auth.admin(request, context: context)
        let input = try await API.decode(GroupInput.self, from: request)
        guard let name = input.name else { throw APIError.badRequest("name is required") }
        try Group.validateName(name)
        guard Int64(name) == nil else { throw APIError.badRequest("name must not be a number") }
        var group = Group(id: 0, name: name, description: "", ratio: .one, models: [], rpm: 0, tpm: 0, selectable: true)
        try apply(input, to: &group)
        guard let created = try await services.groups.create(group) else { throw APIError.conflict("A group named '\(name)' already exists") }
        await services.announce(.groups)
        await services.audit(admin, "created group \(created.name) (ratio \(created.ratio.decimal))", ip: auth.clientAddress(request, context: context))
        return API.ok(GroupDTO(created))
    }

    @Sendable func update(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let admin = try await auth.admin(request, context: context)
        let input = try await API.decode(GroupInput.self, from: request)
        guard let reference = input.id.map(String.init) ?? input.name else { throw APIError.badRequest("id is required") }
        var group = try await find(reference)
        if let name = input.name, name != group.name, input.id != nil {
            throw APIError.badRequest("name cannot be changed; create a new group instead")
        }
        try apply(input, to: &group)
        try await services.groups.update(group)
        await services.announce(.groups)
        await services.audit(admin, "updated group \(group.name): ratio \(group.ratio.decimal), rpm \(group.rpm), tpm \(group.tpm), selectable \(group.selectable)",
                             ip: auth.clientAddress(request, context: context))
        return API.ok(GroupDTO(try await find(String(group.id))))
    }

    @Sendable func delete(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        _ = try await auth.admin(request, context: context)
        let group = try await find(context.parameters.require("id"))
        guard group.name != Group.defaultName else { throw APIError.conflict("The default group cannot be deleted") }
        let users = try await services.groups.memberCount(name: group.name)
        guard users == 0 else { throw APIError.conflict("Group '\(group.name)' is the group of \(users) user(s); move them first") }
        try await services.groups.delete(id: group.id)
        await services.announce(.groups)
        return API.ok()
    }

    private func find(_ reference: String) async throws -> Group {
        let group: Group?
        if let id = Int64(reference) { group = try await services.groups.find(id: id) } else { group = try await services.groups.find(name: reference) }
        guard let group else { throw APIError.notFound("Group does not exist") }
        return group
    }

    private func apply(_ input: GroupInput, to group: inout Group) throws {
        if let description = input.description {
            guard description.count <= 500 else { throw APIError.badRequest("description is too long (500 characters at most)") }
            group.description = description
        }
        if let ratio = input.ratio { group.ratio = ratio }
        if let models = input.models { group.models = models.values }
        if let rpm = input.rpm {
            guard rpm >= 0 else { throw APIError.badRequest("rpm must not be negative") }
            group.rpm = rpm
        }
        if let tpm = input.tpm {
            guard tpm >= 0 else { throw APIError.badRequest("tpm must not be negative") }
            group.tpm = tpm
        }
        if let selectable = input.selectable { group.selectable = selectable }
    }
}
