import Foundation
import HTTPTypes
import HummingbirdTesting
import SluiceCore
import Testing

@Suite struct UserAPITests {
    @Test(arguments: Backend.all)
    func registerLoginSelfLogout(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let registered = try await client.call(.post, "/api/user/register", #"{"username": "alice", "password": "password-123"}"#)
            #expect(registered.code == 200)
            #expect(registered.data["role"].int == 1)
            #expect(registered.data["password_hash"].isNull)
            let duplicate = try await client.call(.post, "/api/user/register", #"{"username": "alice", "password": "password-123"}"#)
            #expect(duplicate.code == 409)
            let short = try await client.call(.post, "/api/user/register", #"{"username": "bob", "password": "short"}"#)
            #expect(short.code == 400)
            #expect(short.message.contains("password"))

            let login = try await client.call(.post, "/api/user/login", #"{"username": "alice", "password": "password-123"}"#)
            #expect(login.code == 200)
            for field in ["id", "username", "display_name", "role", "status", "group", "quota", "used_quota"] {
                #expect(login.data[field].exists, "login data has \(field)")
            }
            let setCookie = try #require(login.headers[.setCookie])
            #expect(setCookie.contains("HttpOnly"))
            #expect(setCookie.contains("SameSite=Strict"))
            let cookie = Credential.cookie(String(setCookie.split(separator: ";")[0]))

            let me = try await client.call(.get, "/api/user/self", as: cookie)
            #expect(me.data["username"].string == "alice")

            let wrong = try await client.call(.post, "/api/user/login", #"{"username": "alice", "password": "nope-nope-1"}"#)
            #expect(wrong.code == 401)

            let logout = try await client.call(.get, "/api/user/logout", as: cookie)
            #expect(logout.code == 200)
            let after = try await client.call(.get, "/api/user/self", as: cookie)
            #expect(after.code == 401)
            let anonymous = try await client.call(.get, "/api/user/self")
            #expect(anonymous.code == 401)
        }
    }

    @Test(arguments: Backend.all)
    func accessTokenNeedsAMatchingNewApiUser(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (alice, aliceId) = try await client.newUser("alice")
            let (_, bobId) = try await client.newUser("bobby")
            let generated = try await client.call(.get, "/api/user/token", as: alice)
            let token = try #require(generated.data.string)
            #expect(token.count >= 32)

            let ok = try await client.call(.get, "/api/user/self", as: .accessToken(token, userId: aliceId))
            #expect(ok.code == 200)
            #expect(ok.data["username"].string == "alice")
            let missingHeader = try await client.call(.get, "/api/user/self", as: .bearer(token))
            #expect(missingHeader.code == 401)
            let otherUser = try await client.call(.get, "/api/user/self", as: .accessToken(token, userId: bobId))
            #expect(otherUser.code == 401)
            let garbage = try await client.call(.get, "/api/user/self", as: .accessToken("not-the-token-at-all-xxxxxxxxxxxx", userId: aliceId))
            #expect(garbage.code == 401)

            // Regenerating replaces the old access token.
            let regenerated = try await client.call(.get, "/api/user/token", as: alice)
            let second = try #require(regenerated.data.string)
            #expect(second != token)
            let old = try await client.call(.get, "/api/user/self", as: .accessToken(token, userId: aliceId))
            #expect(old.code == 401)
            let created = try await client.call(.post, "/api/token/", #"{"name": "via-access-token"}"#, as: .accessToken(second, userId: aliceId))
            #expect(created.code == 200)
        }
    }

    @Test(arguments: Backend.all)
    func rolesGuardAdminEndpoints(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            let (alice, aliceId) = try await client.newUser("alice")
            let (_, bobId) = try await client.newUser("bobby")

            for (method, uri, body) in [(HTTPRequest.Method.get, "/api/user/", nil), (.get, "/api/user/\(bobId)", nil),
                                        (.put, "/api/user/", #"{"id": \#(bobId), "quota": 5}"#), (.delete, "/api/user/\(bobId)", nil),
                                        (.get, "/api/group/", nil)] as [(HTTPRequest.Method, String, String?)] {
                let answer = try await client.call(method, uri, body, as: alice)
                #expect(answer.code == 403, "\(method) \(uri) as a user")
                let anonymous = try await client.call(method, uri, body)
                #expect(anonymous.code == 401, "\(method) \(uri) anonymous")
            }

            let list = try await client.call(.get, "/api/user/?p=1&size=2", as: root)
            #expect(list.data["total"].int == 3)
            #expect(list.data["items"].array.count == 2)
            #expect(list.data["page_size"].int == 2)

            // Root makes alice an admin; she may then manage bob but not root.
            let promote = try await client.call(.put, "/api/user/", #"{"id": \#(aliceId), "role": 10}"#, as: root)
            #expect(promote.code == 200)
            #expect(promote.data["role"].int == 10)
            let topUp = try await client.call(.put, "/api/user/", #"{"id": \#(bobId), "quota": 123456, "group": "default", "status": 2}"#, as: alice)
            #expect(topUp.code == 200)
            #expect(topUp.data["quota"].int == 123456)
            #expect(topUp.data["status"].int == 2)
            let fetched = try await client.call(.get, "/api/user/\(bobId)", as: alice)
            #expect(fetched.data["quota"].int == 123456)
            let disabledLogin = try await client.call(.post, "/api/user/login", #"{"username": "bobby", "password": "password-123"}"#)
            #expect(disabledLogin.code == 403)
            let touchRoot = try await client.call(.put, "/api/user/", #"{"id": 1, "quota": 1}"#, as: alice)
            #expect(touchRoot.code == 403)
            let makeRoot = try await client.call(.put, "/api/user/", #"{"id": \#(bobId), "role": 100}"#, as: root)
            #expect(makeRoot.code == 400)
            let negative = try await client.call(.put, "/api/user/", #"{"id": \#(bobId), "quota": -1}"#, as: root)
            #expect(negative.code == 400)
            let unknownGroup = try await client.call(.put, "/api/user/", #"{"id": \#(bobId), "group": "nope"}"#, as: root)
            #expect(unknownGroup.code == 400)
            let missing = try await client.call(.get, "/api/user/99999", as: root)
            #expect(missing.code == 404)

            let delete = try await client.call(.delete, "/api/user/\(bobId)", as: alice)
            #expect(delete.code == 200)
            let gone = try await client.call(.get, "/api/user/\(bobId)", as: root)
            #expect(gone.code == 404)
            let deleteSelf = try await client.call(.delete, "/api/user/1", as: root)
            #expect(deleteSelf.code == 403)
        }
    }

    @Test(arguments: Backend.all)
    func failedLoginsAreThrottled(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            _ = try await client.newUser("alice")
            var codes: [Int] = []
            for _ in 0..<12 {
                codes.append(try await client.call(.post, "/api/user/login", #"{"username": "alice", "password": "wrong-password"}"#).code)
            }
            #expect(codes.prefix(10).allSatisfy { $0 == 401 })
            #expect(codes.last == 429)
            let throttled = try await client.call(.post, "/api/user/login", #"{"username": "alice", "password": "password-123"}"#)
            #expect(throttled.code == 429)
            #expect(throttled.headers[.retryAfter] != nil)
            // Successful logins of another user are not throttled.
            _ = try await client.newUser("carol")
            for _ in 0..<20 {
                let ok = try await client.call(.post, "/api/user/login", #"{"username": "carol", "password": "password-123"}"#)
                #expect(ok.code == 200)
            }
        }
    }

    @Test(arguments: Backend.all)
    func crossSiteCookieWritesAreRefused(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (alice, _) = try await client.newUser("alice")
            let evil = try await client.call(.post, "/api/token/", #"{"name": "x"}"#, as: alice,
                                             headers: [.origin: "https://evil.example"])
            #expect(evil.code == 403)
            let same = try await client.call(.post, "/api/token/", #"{"name": "x"}"#, as: alice,
                                             headers: [.origin: "http://localhost"])
            #expect(same.code == 200)
        }
    }
}
