import Foundation
import HTTPTypes
import HummingbirdTesting
import SluiceAPI
import SluiceCore
import SQLKit
import SluiceStore
import Testing

@Suite struct TokenAPITests {
    static var keyPattern: Regex<Substring> { /^sk-[0-9A-Za-z]{48}$/ }
    static var maskPattern: Regex<Substring> { /^sk-[0-9A-Za-z]{4}\*{10}[0-9A-Za-z]{4}$/ }

    @Test(arguments: Backend.all)
    func createListGetRevealWithEveryField(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (alice, aliceId) = try await client.newUser("alice")
            let future = Int(Date().timeIntervalSince1970) + 86400
            let created = try await client.call(.post, "/api/token/", """
                {"name": "my-project", "remain_quota": 1000000, "unlimited_quota": false, "expired_time": \(future),
                 "model_limits_enabled": true, "model_limits": ["gpt-4o", "gpt-4o-mini"], "allow_ips": "192.168.1.1,10.0.0.0/8",
                 "group": "default", "fallback_groups": [], "billing_mode": "per_call"}
                """, as: alice)
            #expect(created.code == 200)
            let items = created.data.array
            #expect(items.count == 1, "create answers a list, also for one")
            let token = items[0]
            let key = try #require(token["key"].string)
            #expect(key.wholeMatch(of: Self.keyPattern) != nil)
            #expect(token["name"].string == "my-project")
            #expect(token["status"].int == 1)
            #expect(token["user_id"].int64 == aliceId)
            #expect(token["independent"].bool == false)
            #expect(token["remain_quota"].int == 1_000_000)
            #expect(token["used_quota"].int == 0)
            #expect(token["unlimited_quota"].bool == false)
            #expect(token["expired_time"].int == future)
            #expect(token["model_limits_enabled"].bool == true)
            #expect(token["model_limits"].string == "gpt-4o,gpt-4o-mini")
            #expect(token["allow_ips"].string == "192.168.1.1,10.0.0.0/8")
            #expect(token["group"].string == "default")
            #expect(token["fallback_groups"].array.isEmpty)
            #expect(token["billing_mode"].string == "per_call")
            #expect(token["created_time"].int != nil)
            #expect(token["accessed_time"].int != nil)
            let id = try #require(token["id"].int)

            let fetched = try await client.call(.get, "/api/token/\(id)", as: alice)
            let masked = try #require(fetched.data["key"].string)
            #expect(masked.wholeMatch(of: Self.maskPattern) != nil)
            #expect(masked.hasPrefix(String(key.prefix(7))))
            #expect(masked.hasSuffix(String(key.suffix(4))))

            let list = try await client.call(.get, "/api/token/?p=1&size=20", as: alice)
            #expect(list.data["total"].int == 1)
            #expect(list.data["page"].int == 1)
            #expect(list.data["page_size"].int == 20)
            #expect(list.data["items"][0]["key"].string == masked)

            let revealed = try await client.call(.post, "/api/token/\(id)/key", as: alice)
            #expect(revealed.data["key"].string == key)

            // model_limits also accepted as a string, expired_time -1, unlimited.
            let second = try await client.call(.post, "/api/token/", #"{"name": "b", "model_limits": "a, b", "unlimited_quota": true}"#, as: alice)
            #expect(second.data[0]["model_limits"].string == "a,b")
            #expect(second.data[0]["expired_time"].int == -1)
            #expect(second.data[0]["status"].int == 1)
        }
    }

    @Test(arguments: Backend.all)
    func batchCreatePaginationNewestFirstAndSearch(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (alice, _) = try await client.newUser("alice")
            let batch = try await client.call(.post, "/api/token/", #"{"name": "batch", "count": 25, "unlimited_quota": true}"#, as: alice)
            #expect(batch.code == 200)
            let keys = batch.data.array.compactMap { $0["key"].string }
            #expect(keys.count == 25)
            #expect(Set(keys).count == 25)
            #expect(keys.allSatisfy { $0.wholeMatch(of: Self.keyPattern) != nil })
            for (count, expected) in [("0", 400), ("101", 400)] {
                let bad = try await client.call(.post, "/api/token/", #"{"name": "x", "count": \#(count)}"#, as: alice)
                #expect(bad.code == expected)
            }

            let page1 = try await client.call(.get, "/api/token/?p=1&size=10", as: alice)
            let page3 = try await client.call(.get, "/api/token/?p=3&page_size=10", as: alice)
            #expect(page1.data["total"].int == 25)
            #expect(page1.data["items"].array.count == 10)
            #expect(page3.data["items"].array.count == 5)
            #expect(page3.data["page_size"].int == 10)
            let ids = page1.data["items"].array.compactMap { $0["id"].int }
            #expect(ids == ids.sorted(by: >), "newest first")
            let firstPageMax = try #require(ids.first)
            let lastPageMax = try #require(page3.data["items"][0]["id"].int)
            #expect(firstPageMax > lastPageMax)

            _ = try await client.call(.post, "/api/token/", #"{"name": "special-one", "unlimited_quota": true}"#, as: alice)
            let search = try await client.call(.get, "/api/token/search?keyword=special", as: alice)
            #expect(search.data["items"].array.count == 1)
            #expect(search.data["items"][0]["name"].string == "special-one")
            let byKey = try await client.call(.get, "/api/token/search?keyword=\(keys[3])", as: alice)
            #expect(byKey.data["items"].array.count == 1)
            let huge = try await client.call(.get, "/api/token/?p=9223372036854775807&size=100", as: alice)
            #expect(huge.code == 200, "a huge page number is an empty page, not a crash")
            #expect(huge.data["items"].array.isEmpty)
            let wildcard = try await client.call(.get, "/api/token/search?keyword=%25", as: alice)
            #expect(wildcard.data["items"].array.isEmpty, "LIKE wildcards are literal")
        }
    }

    @Test(arguments: Backend.all)
    func fullUpdateKeepsUnmentionedFieldsAndStatusOnly(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (alice, _) = try await client.newUser("alice")
            let created = try await client.call(.post, "/api/token/", """
                {"name": "t", "remain_quota": 500, "model_limits_enabled": true, "model_limits": "m1", "allow_ips": "10.0.0.1"}
                """, as: alice)
            let id = try #require(created.data[0]["id"].int)
            let updated = try await client.call(.put, "/api/token/", #"{"id": \#(id), "name": "renamed", "remain_quota": 900}"#, as: alice)
            #expect(updated.code == 200)
            #expect(updated.data["name"].string == "renamed")
            #expect(updated.data["remain_quota"].int == 900)
            #expect(updated.data["model_limits"].string == "m1")
            #expect(updated.data["allow_ips"].string == "10.0.0.1")
            #expect(updated.data["model_limits_enabled"].bool == true)
            #expect(updated.data["key"].string?.wholeMatch(of: Self.maskPattern) != nil, "answers are masked")

            let disabled = try await client.call(.put, "/api/token/?status_only=true", #"{"id": \#(id), "status": 2}"#, as: alice)
            #expect(disabled.data["status"].int == 2)
            #expect(disabled.data["name"].string == "renamed")
            let enabled = try await client.call(.put, "/api/token/?status_only=true", #"{"id": \#(id), "status": 1}"#, as: alice)
            #expect(enabled.data["status"].int == 1)
            let bogus = try await client.call(.put, "/api/token/?status_only=true", #"{"id": \#(id), "status": 3}"#, as: alice)
            #expect(bogus.code == 400)
            let noId = try await client.call(.put, "/api/token/", #"{"name": "x"}"#, as: alice)
            #expect(noId.code == 400)
        }
    }

    @Test(arguments: Backend.all)
    func expiredAndExhaustedAreComputedAndCannotBeEnabled(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await env.test { client in
            let (alice, _) = try await client.newUser("alice")
            let created = try await client.call(.post, "/api/token/", #"{"name": "soon", "remain_quota": 10}"#, as: alice)
            let id = try #require(created.data[0]["id"].int)
            // Its time passes (written behind the API, as the clock would).
            let past = Clock.nowSeconds() - 10
            try await database.withSQL { sql in try await sql.raw("UPDATE tokens SET expired_time = \(bind: past) WHERE id = \(bind: id)").run() }
            let expired = try await client.call(.get, "/api/token/\(id)", as: alice)
            #expect(expired.data["status"].int == 3)
            _ = try await client.call(.put, "/api/token/?status_only=true", #"{"id": \#(id), "status": 2}"#, as: alice)
            let enable = try await client.call(.put, "/api/token/?status_only=true", #"{"id": \#(id), "status": 1}"#, as: alice)
            #expect(enable.code == 400)
            #expect(enable.message == "The token has expired and cannot be enabled. Please update the token expiration time first, or set it to never expire")
            // Updating the expiry to never while enabling works.
            let fixed = try await client.call(.put, "/api/token/", #"{"id": \#(id), "expired_time": -1, "status": 1}"#, as: alice)
            #expect(fixed.code == 200)
            #expect(fixed.data["status"].int == 1)

            let empty = try await client.call(.post, "/api/token/", #"{"name": "empty", "remain_quota": 0}"#, as: alice)
            #expect(empty.data[0]["status"].int == 4, "a capped token with nothing left is exhausted")
            let emptyId = try #require(empty.data[0]["id"].int)
            _ = try await client.call(.put, "/api/token/?status_only=true", #"{"id": \#(emptyId), "status": 2}"#, as: alice)
            let enableEmpty = try await client.call(.put, "/api/token/?status_only=true", #"{"id": \#(emptyId), "status": 1}"#, as: alice)
            #expect(enableEmpty.code == 400)
            #expect(enableEmpty.message.contains("cannot be enabled"))
        }
        await database.shutdown()
    }

    @Test(arguments: Backend.all)
    func validationNamesTheField(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            _ = try await client.call(.post, "/api/group/", #"{"name": "vip", "ratio": 2, "selectable": false}"#, as: root)
            _ = try await client.call(.post, "/api/group/", #"{"name": "cheap", "ratio": 0.5}"#, as: root)
            _ = try await client.call(.post, "/api/group/", #"{"name": "extra", "ratio": 0.5}"#, as: root)
            _ = try await client.call(.post, "/api/group/", #"{"name": "more", "ratio": 0.5}"#, as: root)
            let (alice, _) = try await client.newUser("alice")
            let past = Int(Date().timeIntervalSince1970) - 100
            let cases: [(String, String)] = [
                (#"{"name": "\#(String(repeating: "x", count: 31))"}"#, "Token name is too long"),
                (#"{"name": ""}"#, "name"),
                (#"{"name": "t", "remain_quota": -1}"#, "remain_quota"),
                (#"{"name": "t", "group": "nope"}"#, "group"),
                (#"{"name": "t", "group": "vip"}"#, "group"),
                (#"{"name": "t", "fallback_groups": ["cheap", "extra", "more"]}"#, "fallback_groups"),
                (#"{"name": "t", "fallback_groups": ["nope"]}"#, "fallback_groups"),
                (#"{"name": "t", "allow_ips": "10.0.0.0/99"}"#, "allow_ips"),
                (#"{"name": "t", "allow_ips": "not-an-ip"}"#, "allow_ips"),
                (#"{"name": "t", "expired_time": \#(past)}"#, "expired_time"),
                (#"{"name": "t", "billing_mode": "free"}"#, "billing_mode"),
                (#"{"name": "t", "unlimited_quota": "yes"}"#, "unlimited_quota"),
            ]
            for (body, fragment) in cases {
                let answer = try await client.call(.post, "/api/token/", body, as: alice)
                #expect(answer.code == 400, "\(body)")
                #expect(answer.message.contains(fragment), "\(body) -> \(answer.message)")
            }
            let exactly30 = try await client.call(.post, "/api/token/", #"{"name": "\#(String(repeating: "y", count: 30))"}"#, as: alice)
            #expect(exactly30.code == 200)
            let twoFallbacks = try await client.call(.post, "/api/token/", #"{"name": "t", "group": "cheap", "fallback_groups": ["default", "extra"]}"#, as: alice)
            #expect(twoFallbacks.code == 200)
            #expect(twoFallbacks.data[0]["fallback_groups"].array.count == 2)
            // Admins may use groups users may not select.
            let rootVip = try await client.call(.post, "/api/token/", #"{"name": "t", "group": "vip"}"#, as: root)
            #expect(rootVip.code == 200)
            let empty = try await client.call(.post, "/api/token/batch", #"{"ids": []}"#, as: alice)
            #expect(empty.code == 400)
            #expect(empty.message == "Invalid parameters")
        }
    }

    @Test(arguments: Backend.all)
    func deleteAndBatchDelete(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (alice, _) = try await client.newUser("alice")
            let created = try await client.call(.post, "/api/token/", #"{"name": "t", "count": 5}"#, as: alice)
            let ids = created.data.array.compactMap { $0["id"].int }
            let deleted = try await client.call(.delete, "/api/token/\(ids[0])", as: alice)
            #expect(deleted.code == 200)
            let again = try await client.call(.delete, "/api/token/\(ids[0])", as: alice)
            #expect(again.code == 404)
            #expect(again.message == "Token does not exist")
            let batch = try await client.call(.post, "/api/token/batch", #"{"ids": [\#(ids[1]), \#(ids[2]), \#(ids[0]), 999999]}"#, as: alice)
            #expect(batch.data.int == 2)
            let list = try await client.call(.get, "/api/token/", as: alice)
            #expect(list.data["total"].int == 2)
        }
    }

    @Test(arguments: Backend.all)
    func usersNeverReachOtherUsersTokens(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (alice, _) = try await client.newUser("alice")
            let (bob, _) = try await client.newUser("bobby")
            let root = try await client.loginRoot()
            let created = try await client.call(.post, "/api/token/", #"{"name": "alices"}"#, as: alice)
            let id = try #require(created.data[0]["id"].int)
            for actor in [bob, root] {
                let get = try await client.call(.get, "/api/token/\(id)", as: actor)
                #expect(get.code == 404)
                #expect(get.message == "Token does not exist")
                let reveal = try await client.call(.post, "/api/token/\(id)/key", as: actor)
                #expect(reveal.code == 404)
                let update = try await client.call(.put, "/api/token/", #"{"id": \#(id), "name": "stolen"}"#, as: actor)
                #expect(update.code == 404)
                let status = try await client.call(.put, "/api/token/?status_only=true", #"{"id": \#(id), "status": 2}"#, as: actor)
                #expect(status.code == 404)
                let delete = try await client.call(.delete, "/api/token/\(id)", as: actor)
                #expect(delete.code == 404)
                let batch = try await client.call(.post, "/api/token/batch", #"{"ids": [\#(id)]}"#, as: actor)
                #expect(batch.data.int == 0)
                let list = try await client.call(.get, "/api/token/", as: actor)
                #expect(!list.data["items"].array.contains { $0["id"].int == id })
            }
            let still = try await client.call(.get, "/api/token/\(id)", as: alice)
            #expect(still.data["name"].string == "alices")
            #expect(still.data["status"].int == 1 || still.data["status"].int == 4)
        }
    }

    @Test(arguments: Backend.all)
    func keysAreEncryptedAtRestAndFoundByHMAC(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        let created = Box<[String]>([])
        try await env.test { client in
            let (alice, _) = try await client.newUser("alice")
            let answer = try await client.call(.post, "/api/token/", #"{"name": "t", "count": 3}"#, as: alice)
            created.value = answer.data.array.compactMap { $0["key"].string }
        }
        let keys = created.value
        #expect(keys.count == 3)
        // No row of the database holds a key, or a part of it longer than the mask shows.
        let dump = try await database.withSQL { sql in
            try await sql.raw("SELECT key_hash, key_enc, name FROM tokens").all().map {
                try $0.decode(column: "key_hash", as: String.self) + " " + $0.decode(column: "key_enc", as: String.self)
            }
        }.joined(separator: "\n")
        for key in keys {
            #expect(!dump.contains(key))
            #expect(!dump.contains(String(key.dropFirst(3).prefix(16))))
        }
        if backend == .sqlite, case .sqlite(let path) = try DatabaseLocation(parsing: env.config.database) {
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
            let wal = (try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) ?? Data()
            for key in keys {
                #expect(bytes.range(of: Data(key.utf8)) == nil)
                #expect(wal.range(of: Data(key.utf8)) == nil)
            }
        }
        // The store finds a token by its key through the HMAC index, and only with the right secret.
        let store = TokenStore(database: database, secrets: SecretBox(masterSecret: try #require(env.config.secret)))
        let found = try await store.find(key: keys[1])
        #expect(found?.key == keys[1])
        let wrongSecret = TokenStore(database: database, secrets: SecretBox(masterSecret: "another"))
        #expect(try await wrongSecret.find(key: keys[1]) == nil)
        await database.shutdown()
    }
}
