import Foundation
import HTTPTypes
import HummingbirdTesting
import SluiceAPI
import SluiceCore
import Testing

/// Who may call what (contract sections 3 to 9): every management endpoint against every kind of caller.
///
/// Callers: anonymous; a user (alice, role 1); alice acting on another user's (bob's) resource; a token session
/// (`POST /api/token/login` with one of alice's keys); an admin (role 10); root (role 100). Anonymous gets 401 wherever a
/// login is needed, a user 403 on admin endpoints, another user's token is 404, a token session is 403 outside its own
/// token's reads (`/api/log/self` included), and an admin may not manage root or another admin.
@Suite struct AccessMatrixTests {
    enum Who: String, CaseIterable, CustomStringConvertible {
        case anonymous, user, other, tokenSession, admin, root
        var description: String { rawValue }
    }

    /// One endpoint: the request (placeholders `{name}` filled per caller) and the status each caller gets.
    struct Row {
        let method: HTTPRequest.Method
        let path: String
        let body: String?
        let expect: [Who: Int]
    }

    // Expectation columns.
    /// Needs a login; a token session is refused.
    static let loggedIn: [Who: Int] = [.anonymous: 401, .user: 200, .tokenSession: 403, .admin: 200, .root: 200]
    /// The caller's own resource; someone else's is 404.
    static let owned: [Who: Int] = loggedIn.merging([.other: 404]) { $1 }
    /// Admin endpoints (role >= 10).
    static let adminOnly: [Who: Int] = [.anonymous: 401, .user: 403, .tokenSession: 403, .admin: 200, .root: 200]
    /// A token session's own token (or a key holder).
    static let tokenOnly: [Who: Int] = [.anonymous: 401, .user: 403, .tokenSession: 200, .admin: 403, .root: 403]
    /// No login needed.
    static let anyone: [Who: Int] = [.anonymous: 200, .user: 200, .tokenSession: 200, .admin: 200, .root: 200]

    static func row(_ method: HTTPRequest.Method, _ path: String, _ body: String? = nil, _ expect: [Who: Int]) -> Row {
        Row(method: method, path: path, body: body, expect: expect)
    }

    /// Every management endpoint (logout last: it ends the sessions).
    static let rows: [Row] = [
        // Public and anonymous endpoints answer anyone the same.
        row(.get, "/api/status", nil, anyone),
        row(.get, "/api/pricing", nil, anyone),
        row(.get, "/api/openapi.json", nil, anyone),
        row(.post, "/api/user/register", #"{"username": "reg-{who}", "password": "password-123"}"#, anyone),
        row(.post, "/api/user/login", #"{"username": "carol", "password": "password-123"}"#, anyone),
        row(.post, "/api/token/redeem", #"{"key": "{redeemCode}"}"#, anyone),
        row(.post, "/api/token/login", #"{"key": "{sessionKey}"}"#, anyone),

        // The caller's own account.
        row(.get, "/api/user/self", nil, loggedIn),
        row(.put, "/api/user/self", #"{"display_name": "name-{who}"}"#, loggedIn),
        row(.get, "/api/user/self/groups", nil, loggedIn),
        row(.get, "/api/user/token", nil, loggedIn),
        row(.post, "/api/user/topup", #"{"key": "{topupCode}"}"#, loggedIn),
        row(.post, "/api/token/bind", #"{"key": "{bindKey}"}"#, loggedIn),
        row(.get, "/api/log/self", nil, loggedIn),
        row(.get, "/api/log/self/search", nil, loggedIn),
        row(.get, "/api/data/self", nil, loggedIn),

        // The caller's tokens; another user's answer 404.
        row(.get, "/api/token/", nil, loggedIn),
        row(.get, "/api/token/search?keyword=k", nil, loggedIn),
        row(.post, "/api/token/", #"{"name": "new-{who}"}"#, loggedIn),
        row(.get, "/api/token/{token}", nil, owned),
        row(.post, "/api/token/{token}/key", nil, owned),
        row(.put, "/api/token/", #"{"id": {token}, "name": "renamed-{who}"}"#, owned),
        row(.put, "/api/token/?status_only=true", #"{"id": {token}, "status": 1}"#, owned),
        row(.delete, "/api/token/{doomedToken}", nil, owned),
        // A batch delete names ids; another user's are not deleted (checked below), the answer counts 0.
        row(.post, "/api/token/batch", #"{"ids": [{batchToken}]}"#, loggedIn.merging([.other: 200]) { $1 }),

        // A token session's own token; a user session is refused.
        row(.get, "/api/token/self", nil, tokenOnly),
        row(.post, "/api/token/self/key", nil, tokenOnly),
        row(.get, "/api/log/token", nil, tokenOnly),
        row(.get, "/api/usage/token", nil, tokenOnly),

        // Users (admin); an admin manages users of a lower role only.
        row(.get, "/api/user/", nil, adminOnly),
        row(.get, "/api/user/search?keyword=a", nil, adminOnly),
        row(.get, "/api/user/{aliceId}", nil, adminOnly),
        row(.get, "/api/user/1", nil, adminOnly),
        row(.post, "/api/user/", #"{"username": "made-{who}", "password": "password-123"}"#, adminOnly),
        row(.post, "/api/user/", #"{"username": "boss-{who}", "password": "password-123", "role": 10}"#, adminOnly.merging([.admin: 403]) { $1 }),
        row(.put, "/api/user/", #"{"id": {aliceId}, "quota": 1000}"#, adminOnly),
        row(.put, "/api/user/", #"{"id": 1, "display_name": "Root"}"#, adminOnly.merging([.admin: 403]) { $1 }),
        row(.put, "/api/user/", #"{"id": {admin2Id}, "display_name": "Second"}"#, adminOnly.merging([.admin: 403]) { $1 }),
        row(.delete, "/api/user/{victimId}", nil, adminOnly),
        row(.delete, "/api/user/{admin2Id}", nil, adminOnly.merging([.admin: 403, .root: 200]) { $1 }),
        row(.delete, "/api/user/1", nil, adminOnly.merging([.admin: 403, .root: 403]) { $1 }),

        // Groups, model prices, channels, redemption codes, every call's log (admin).
        row(.get, "/api/group/", nil, adminOnly),
        row(.get, "/api/group/default", nil, adminOnly),
        row(.post, "/api/group/", #"{"name": "g-{who}"}"#, adminOnly),
        row(.put, "/api/group/", #"{"name": "shared", "description": "by {who}"}"#, adminOnly),
        row(.delete, "/api/group/doomed-{who}", nil, adminOnly),
        row(.get, "/api/model/", nil, adminOnly),
        row(.get, "/api/model/shared-model", nil, adminOnly),
        row(.post, "/api/model/", #"{"model": "m-{who}", "input_price": 1, "output_price": 2}"#, adminOnly),
        row(.put, "/api/model/", #"{"model": "shared-model", "output_price": 3}"#, adminOnly),
        row(.delete, "/api/model/doomed-{who}", nil, adminOnly),
        row(.get, "/api/channel/", nil, adminOnly),
        row(.get, "/api/channel/{channel}", nil, adminOnly),
        row(.post, "/api/channel/", #"{"name": "c-{who}", "base_url": "http://127.0.0.1:9", "key": "upstream-key"}"#, adminOnly),
        row(.put, "/api/channel/", #"{"id": {channel}, "priority": 2}"#, adminOnly),
        row(.post, "/api/channel/{channel}/test", nil, adminOnly),
        row(.get, "/api/channel/{channel}/test", nil, adminOnly),
        row(.delete, "/api/channel/{doomedChannel}", nil, adminOnly),
        row(.get, "/api/redemption/", nil, adminOnly),
        row(.get, "/api/redemption/search?keyword=codes", nil, adminOnly),
        row(.get, "/api/redemption/export?name=codes", nil, adminOnly),
        row(.get, "/api/redemption/{code}", nil, adminOnly),
        row(.post, "/api/redemption/", #"{"name": "r-{who}", "quota": 100}"#, adminOnly),
        row(.put, "/api/redemption/", #"{"id": {code}, "name": "renamed-{who}"}"#, adminOnly),
        row(.delete, "/api/redemption/{doomedCode}", nil, adminOnly),
        row(.get, "/api/log/", nil, adminOnly),

        // Logging out answers anyone; the session is over afterwards (checked below).
        row(.get, "/api/user/logout", nil, anyone),
        row(.post, "/api/user/logout", nil, anyone),
    ]

    /// The callers' credentials and, per caller, the values of the placeholders.
    struct Fixture {
        var credential: [Who: Credential] = [:]
        var values: [Who: [String: String]] = [:]
        var bobCredential: Credential = .none
        var bobTokens: [Int] = []

        func request(_ text: String, as who: Who) -> String {
            var result = text.replacingOccurrences(of: "{who}", with: who.rawValue.lowercased())
            for (name, value) in values[who] ?? [:] { result = result.replacingOccurrences(of: "{\(name)}", with: value) }
            return result
        }
    }

    static func prepare(_ client: some TestClientProtocol) async throws -> Fixture {
        var fixture = Fixture()
        let root = try await client.loginRoot()
        let (alice, aliceId) = try await client.newUser("alice")
        let (bob, _) = try await client.newUser("bob")
        _ = try await client.newUser("carol")
        let made = try await client.call(.post, "/api/user/", #"{"username": "admin", "password": "password-123", "role": 10}"#, as: root)
        guard made.code == 200 else { throw TestSetupError("admin: \(made.text)") }
        let admin = try await client.login("admin", "password-123")
        let second = try await client.call(.post, "/api/user/", #"{"username": "admin2", "password": "password-123", "role": 10}"#, as: root)
        guard second.code == 200, let admin2Id = second.data["id"].int else { throw TestSetupError("admin2: \(second.text)") }

        // Tokens: each logged-in caller has its own; "other" names bob's.
        func tokens(_ credential: Credential) async throws -> [String: String] {
            [
                "token": String(try await client.key(as: credential).id),
                "doomedToken": String(try await client.key(as: credential).id),
                "batchToken": String(try await client.key(as: credential).id),
            ]
        }
        let aliceTokens = try await tokens(alice)
        let bobTokenValues = try await tokens(bob)
        fixture.bobTokens = bobTokenValues.values.compactMap { Int($0) }
        let sessionKey = try await client.key(as: alice).key
        let login = try await client.call(.post, "/api/token/login", #"{"key": "\#(sessionKey)"}"#)
        guard login.code == 200, let setCookie = login.headers[.setCookie] else { throw TestSetupError("token login: \(login.text)") }

        fixture.credential = [.anonymous: .none, .user: alice, .other: alice, .tokenSession: .cookie(String(setCookie.split(separator: ";")[0])),
                              .admin: admin, .root: root]
        fixture.bobCredential = bob

        // Shared admin resources.
        guard try await client.call(.post, "/api/group/", #"{"name": "shared"}"#, as: root).code == 200,
              try await client.call(.post, "/api/model/", #"{"model": "shared-model"}"#, as: root).code == 200 else {
            throw TestSetupError("shared group or model")
        }
        func channel(_ name: String) async throws -> String {
            let answer = try await client.call(.post, "/api/channel/", #"{"name": "\#(name)", "base_url": "http://127.0.0.1:9", "key": "k", "models": ["m"]}"#, as: root)
            guard let id = answer.data["id"].int else { throw TestSetupError("channel: \(answer.text)") }
            return String(id)
        }
        func codes(_ kind: String, name: String = "codes") async throws -> [String] {
            let answer = try await client.call(.post, "/api/redemption/", #"{"name": "\#(name)", "kind": "\#(kind)", "quota": 1000, "count": 1}"#, as: root)
            guard answer.code == 200 else { throw TestSetupError("codes: \(answer.text)") }
            return answer.data.array.compactMap(\.string)
        }
        func codeId(_ code: String) async throws -> String {
            let list = try await client.call(.get, "/api/redemption/?size=100", as: root)
            guard let id = list.data["items"].array.first(where: { $0["key"].string == code })?["id"].int else { throw TestSetupError("code id") }
            return String(id)
        }
        let sharedChannel = try await channel("shared")
        let sharedCode = try await codeId(try await codes("topup")[0])

        for who in Who.allCases {
            let name = who.rawValue.lowercased()
            var values: [String: String] = ["aliceId": String(aliceId), "admin2Id": String(admin2Id), "sessionKey": sessionKey,
                                            "channel": sharedChannel, "code": sharedCode]
            switch who {
            case .admin: values.merge(try await tokens(admin)) { $1 }
            case .root: values.merge(try await tokens(root)) { $1 }
            case .other: values.merge(bobTokenValues) { $1 }
            default: values.merge(aliceTokens) { $1 }
            }
            values["redeemCode"] = try await codes("token")[0]
            values["topupCode"] = try await codes("topup")[0]
            // An unbound independent token to bind.
            let redeemed = try await client.call(.post, "/api/token/redeem", #"{"key": "\#(try await codes("token")[0])"}"#)
            values["bindKey"] = redeemed.data["key"].string ?? ""
            let victim = try await client.call(.post, "/api/user/", #"{"username": "victim-\#(name)", "password": "password-123"}"#, as: root)
            values["victimId"] = victim.data["id"].int.map(String.init) ?? ""
            guard try await client.call(.post, "/api/group/", #"{"name": "doomed-\#(name)"}"#, as: root).code == 200,
                  try await client.call(.post, "/api/model/", #"{"model": "doomed-\#(name)"}"#, as: root).code == 200 else {
                throw TestSetupError("doomed group or model")
            }
            values["doomedChannel"] = try await channel("doomed-\(name)")
            values["doomedCode"] = try await codeId(try await codes("topup", name: "doomed-\(name)")[0])
            fixture.values[who] = values
        }
        return fixture
    }

    @Test(arguments: Backend.all)
    func everyCallerGetsWhatTheContractAllows(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let fixture = try await Self.prepare(client)
            for row in Self.rows {
                for who in Who.allCases {
                    guard let expected = row.expect[who] else { continue }
                    let path = fixture.request(row.path, as: who)
                    let answer = try await client.call(row.method, path, row.body.map { fixture.request($0, as: who) },
                                                       as: fixture.credential[who] ?? .none)
                    #expect(answer.code == expected, "\(row.method) \(row.path) as \(who): \(answer.code) \(answer.text.prefix(160))")
                    if path.hasPrefix("/api/"), !path.hasPrefix("/api/redemption/export"), !path.hasPrefix("/api/openapi.json") {
                        #expect(answer.json["success"].bool == (answer.code == 200), "\(row.method) \(row.path) as \(who): the envelope")
                        if answer.code != 200 {
                            #expect(!answer.message.isEmpty && answer.data.isNull, "\(row.method) \(row.path) as \(who): an error sentence")
                        }
                    }
                }
            }
            // Bob's tokens survived alice's attempts on them.
            for id in fixture.bobTokens {
                #expect(try await client.call(.get, "/api/token/\(id)", as: fixture.bobCredential).code == 200)
            }
            // Logging out ended the cookie sessions.
            for who in [Who.user, .tokenSession, .admin, .root] {
                let answer = try await client.call(.get, "/api/user/self", as: fixture.credential[who] ?? .none)
                #expect(answer.code == 401, "\(who) after logout: \(answer.code)")
            }
        }
    }
}
