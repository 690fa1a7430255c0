import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import HTTPTypes
import HummingbirdTesting
import SluiceAPI
import SluiceCore
import SluiceStore
import SQLKit
import Testing

/// Redemption codes, independent tokens, binding and token login (contract section 5), on every backend.
@Suite struct RedemptionTests {
    static var codePattern: Regex<Substring> { /^[0-9A-Za-z]{32}$/ }
    static var keyPattern: Regex<Substring> { /^sk-[0-9A-Za-z]{48}$/ }
    static var maskPattern: Regex<Substring> { /^sk-[0-9A-Za-z]{4}\*{10}[0-9A-Za-z]{4}$/ }

    // MARK: admin

    @Test(arguments: Backend.all)
    func adminCreatesListsUpdatesExportsAndDeletesCodes(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        let codes = Box<[String]>([])
        try await env.test { client in
            let root = try await client.loginRoot()
            _ = try await client.call(.post, "/api/group/", #"{"name": "vip", "ratio": 2}"#, as: root)
            let created = try await client.call(.post, "/api/redemption/", """
                {"name": "spring-sale", "count": 3, "kind": "token", "quota": 500000, "expired_time": -1, "valid_days": 30,
                 "group": "vip", "fallback_groups": ["default"], "model_limits": ["gpt-test", "gpt-other"]}
                """, as: root)
            #expect(created.code == 200, "\(created.text)")
            let list = created.data.array.compactMap(\.string)
            #expect(list.count == 3, "data is the list of codes")
            #expect(list.allSatisfy { $0.wholeMatch(of: Self.codePattern) != nil })
            #expect(Set(list).count == 3)
            codes.value = list
            _ = try await client.call(.post, "/api/redemption/", #"{"name": "topups", "quota": 1000}"#, as: root)

            let page = try await client.call(.get, "/api/redemption/?p=1&size=2", as: root)
            #expect(page.data["total"].int == 4)
            #expect(page.data["page"].int == 1)
            #expect(page.data["page_size"].int == 2)
            #expect(page.data["items"].array.count == 2)
            #expect(page.data["items"][0]["name"].string == "topups", "newest first")
            #expect(page.data["items"][0]["kind"].string == "topup", "kind defaults to topup")
            #expect(page.data["items"][0]["group"].string == "", "token terms are cleared on top-up codes")
            let searched = try await client.call(.get, "/api/redemption/search?keyword=spring", as: root)
            #expect(searched.data["total"].int == 3)

            let first = try #require(searched.data["items"].array.last)
            let id = try #require(first["id"].int)
            let one = try await client.call(.get, "/api/redemption/\(id)", as: root)
            #expect(one.data["key"].string == list[0], "administrators see the full code")
            #expect(one.data["status"].int == 1)
            #expect(one.data["kind"].string == "token")
            #expect(one.data["quota"].int == 500_000)
            #expect(one.data["expired_time"].int == -1)
            #expect(one.data["valid_days"].int == 30)
            #expect(one.data["group"].string == "vip")
            #expect(one.data["fallback_groups"].array.compactMap(\.string) == ["default"])
            #expect(one.data["model_limits"].string == "gpt-test,gpt-other")
            #expect(one.data["used_user_id"].isNull)

            let disabled = try await client.call(.put, "/api/redemption/", #"{"id": \#(id), "status": 2}"#, as: root)
            #expect(disabled.code == 200)
            #expect(disabled.data["status"].int == 2)
            #expect(disabled.data["quota"].int == 500_000, "a PUT keeps what it does not mention")
            let toUsed = try await client.call(.put, "/api/redemption/", #"{"id": \#(id), "status": 3}"#, as: root)
            #expect(toUsed.code == 400)
            #expect(toUsed.message.contains("status"))
            let renamed = try await client.call(.put, "/api/redemption/", #"{"id": \#(id), "status": 1, "quota": 700000}"#, as: root)
            #expect(renamed.data["status"].int == 1)
            #expect(renamed.data["quota"].int == 700_000)
            #expect(try await client.call(.put, "/api/redemption/", #"{"id": 9999, "status": 2}"#, as: root).code == 404)

            let csv = try await client.call(.get, "/api/redemption/export?name=spring-sale", as: root)
            #expect(csv.code == 200)
            #expect(csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            #expect(csv.headers[.contentDisposition]?.contains("attachment") == true)
            let lines = csv.text.split(separator: "\r\n").map(String.init)
            #expect(lines.count == 4, "a header row and one row per code")
            #expect(lines[0].hasPrefix("id,name,kind,key,status,quota"))
            for code in list { #expect(csv.text.contains(code)) }
            let byIds = try await client.call(.get, "/api/redemption/export?ids=\(id)", as: root)
            #expect(byIds.text.split(separator: "\r\n").count == 2)
            #expect(try await client.call(.get, "/api/redemption/export", as: root).code == 400)
            #expect(try await client.call(.get, "/api/redemption/export?ids=abc", as: root).code == 400)
            #expect(try await client.call(.get, "/api/redemption/export?name=nothing-here", as: root).code == 404)

            let deleted = try await client.call(.delete, "/api/redemption/\(id)", as: root)
            #expect(deleted.code == 200)
            #expect(try await client.call(.get, "/api/redemption/\(id)", as: root).code == 404)
            #expect(try await client.call(.delete, "/api/redemption/\(id)", as: root).code == 404)

            let (alice, _) = try await client.newUser("alice")
            #expect(try await client.call(.get, "/api/redemption/", as: alice).code == 403)
            #expect(try await client.call(.post, "/api/redemption/", #"{"name": "x", "quota": 1}"#, as: alice).code == 403)
            #expect(try await client.call(.get, "/api/redemption/export?name=topups", as: alice).code == 403)
            #expect(try await client.call(.get, "/api/redemption/").code == 401)
        }
        // Codes are sealed at rest and found by their HMAC.
        let stored = try await database.withSQL { sql in
            try await sql.raw("SELECT code_hash, code_enc FROM redemptions").all().map {
                try $0.decode(column: "code_hash", as: String.self) + " " + $0.decode(column: "code_enc", as: String.self)
            }
        }
        for code in codes.value { #expect(!stored.joined().contains(code)) }
        await database.shutdown()
    }

    @Test(arguments: Backend.all)
    func codeValidationNamesTheField(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            let past = Int(Date().timeIntervalSince1970) - 60
            let cases: [(String, String)] = [
                (#"{"name": "a", "quota": 1, "count": 0}"#, "count"),
                (#"{"name": "a", "quota": 1, "count": 101}"#, "count"),
                (#"{"quota": 1}"#, "name"),
                (#"{"name": "", "quota": 1}"#, "name"),
                (#"{"name": "\#(String(repeating: "n", count: 31))", "quota": 1}"#, "name"),
                (#"{"name": "a", "quota": 1, "kind": "gift"}"#, "kind"),
                (#"{"name": "a"}"#, "quota"),
                (#"{"name": "a", "quota": 0}"#, "quota"),
                (#"{"name": "a", "quota": -5}"#, "quota"),
                (#"{"name": "a", "quota": "lots"}"#, "quota"),
                (#"{"name": "a", "quota": 1, "expired_time": \#(past)}"#, "expired_time"),
                (#"{"name": "a", "quota": 1, "kind": "token", "valid_days": -1}"#, "valid_days"),
                (#"{"name": "a", "quota": 1, "kind": "token", "group": "nope"}"#, "group"),
                (#"{"name": "a", "quota": 1, "kind": "token", "fallback_groups": ["nope"]}"#, "fallback_groups"),
                (#"{"name": "a", "quota": 1, "kind": "token", "fallback_groups": ["default", "x", "y"]}"#, "fallback_groups"),
                (#"{"name": "a", "quota": 1, "kind": "token", "fallback_groups": ["default"]}"#, "fallback_groups"),
                (#"{"name": "a", "quota": 1, "status": 3}"#, "status"),
            ]
            for (body, field) in cases {
                let answer = try await client.call(.post, "/api/redemption/", body, as: root)
                #expect(answer.code == 400, "\(body): \(answer.text)")
                #expect(answer.success == false)
                #expect(answer.message.contains(field), "\(body) should name \(field): \(answer.message)")
            }
            #expect(try await client.call(.get, "/api/redemption/?p=1", as: root).data["total"].int == 0, "nothing was created")
            // new-api's 0 means never.
            let never = try await client.call(.post, "/api/redemption/", #"{"name": "a", "quota": 1, "expired_time": 0}"#, as: root)
            #expect(never.code == 200)
            let listed = try await client.call(.get, "/api/redemption/", as: root)
            #expect(listed.data["items"][0]["expired_time"].int == -1)
        }
    }

    // MARK: redeeming

    @Test(arguments: Backend.all)
    func topupCodesCreditTheBalanceOnceAndAreLogged(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await env.test { client in
            let root = try await client.loginRoot()
            let (alice, aliceId) = try await client.newUser("alice")
            try await client.topUp(aliceId, quota: 1000, as: root)
            let code = try await Self.codes(client, #"{"name": "gift", "quota": 250000}"#, as: root)[0]

            #expect(try await client.call(.post, "/api/user/topup", #"{"key": "\#(code)"}"#).code == 401, "topup needs a login")
            let redeemed = try await client.call(.post, "/api/user/topup", #"{"key": " \#(code) "}"#, as: alice)
            #expect(redeemed.code == 200, "\(redeemed.text)")
            #expect(redeemed.data.int == 250_000, "data is the quota credited")
            #expect(try await client.call(.get, "/api/user/self", as: alice).data["quota"].int == 251_000)

            let again = try await client.call(.post, "/api/user/topup", #"{"key": "\#(code)"}"#, as: alice)
            #expect(again.code == 409)
            #expect(again.message.contains("already been used"))
            #expect(try await client.call(.get, "/api/user/self", as: alice).data["quota"].int == 251_000)

            let listed = try await client.call(.get, "/api/redemption/", as: root)
            #expect(listed.data["items"][0]["status"].int == 3)
            #expect(listed.data["items"][0]["used_user_id"].int64 == aliceId)
            #expect(listed.data["items"][0]["redeemed_time"].int ?? 0 > 0)
            let usedId = try #require(listed.data["items"][0]["id"].int)
            let editUsed = try await client.call(.put, "/api/redemption/", #"{"id": \#(usedId), "status": 1}"#, as: root)
            #expect(editUsed.code == 409, "a used code stays used")

            let disabledCode = try await Self.codes(client, #"{"name": "off", "quota": 5, "status": 2}"#, as: root)[0]
            let disabled = try await client.call(.post, "/api/user/topup", #"{"key": "\#(disabledCode)"}"#, as: alice)
            #expect(disabled.code == 409)
            #expect(disabled.message.contains("disabled"))

            let expiring = try await Self.codes(client, #"{"name": "late", "quota": 5, "expired_time": \#(Int(Date().timeIntervalSince1970) + 3600)}"#, as: root)[0]
            try await database.withSQL { sql in try await sql.raw("UPDATE redemptions SET expired_time = 1000 WHERE name = 'late'").run() }
            let expired = try await client.call(.post, "/api/user/topup", #"{"key": "\#(expiring)"}"#, as: alice)
            #expect(expired.code == 409)
            #expect(expired.message.contains("expired"))

            let unknown = try await client.call(.post, "/api/user/topup", #"{"key": "\#(RandomSecret.string(count: 32))"}"#, as: alice)
            #expect(unknown.code == 404)
            #expect(unknown.message.contains("does not exist"))
            #expect(try await client.call(.post, "/api/user/topup", #"{"key": ""}"#, as: alice).message.contains("key"))
            #expect(try await client.call(.post, "/api/user/topup", #"{}"#, as: alice).code == 400)
            #expect(try await client.call(.get, "/api/user/self", as: alice).data["quota"].int == 251_000, "refusals credit nothing")

            let logs = try await client.call(.get, "/api/log/self?type=1", as: alice)
            #expect(logs.data["total"].int == 1, "one top-up logged: \(logs.text)")
            let row = logs.data["items"][0]
            #expect(row["type"].int == LogEntry.Kind.topup)
            #expect(row["quota"].int == 250_000)
            #expect(row["user_id"].int64 == aliceId)
            #expect(row["content"].string?.contains("gift") == true)
            #expect(row["created_at"].int ?? 0 > 0)
        }
        await database.shutdown()
    }

    @Test(arguments: Backend.all)
    func tokenCodesIssueIndependentTokens(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await env.test { client in
            let root = try await client.loginRoot()
            _ = try await client.call(.post, "/api/group/", #"{"name": "vip", "ratio": 2}"#, as: root)
            let code = try await Self.codes(client, """
                {"name": "pack", "kind": "token", "quota": 300000, "valid_days": 7, "group": "vip", "fallback_groups": "default",
                 "model_limits": "gpt-test"}
                """, as: root)[0]
            let before = Int(Date().timeIntervalSince1970)
            let redeemed = try await client.call(.post, "/api/token/redeem", #"{"key": "\#(code)"}"#)
            #expect(redeemed.code == 200, "\(redeemed.text)")
            let token = redeemed.data
            #expect(token["key"].string?.wholeMatch(of: Self.keyPattern) != nil, "the full key, once")
            #expect(token["user_id"].isNull)
            #expect(token["independent"].bool == true)
            #expect(token["remain_quota"].int == 300_000)
            #expect(token["used_quota"].int == 0)
            #expect(token["unlimited_quota"].bool == false)
            #expect(token["status"].int == 1)
            let expiry = try #require(token["expired_time"].int)
            #expect(expiry >= before + 7 * 86400 && expiry <= Int(Date().timeIntervalSince1970) + 7 * 86400)
            #expect(token["group"].string == "vip")
            #expect(token["fallback_groups"].array.compactMap(\.string) == ["default"])
            #expect(token["model_limits_enabled"].bool == true)
            #expect(token["model_limits"].string == "gpt-test")
            #expect(token["name"].string == "pack")
            let tokenId = try #require(token["id"].int)
            #expect(try await client.call(.post, "/api/token/redeem", #"{"key": "\#(code)"}"#).code == 409)

            let listed = try await client.call(.get, "/api/redemption/", as: root)
            #expect(listed.data["items"][0]["redeemed_token_id"].int == tokenId)
            #expect(listed.data["items"][0]["used_user_id"].isNull)
            let issuedBy = try await database.withSQL { sql in
                try await sql.raw("SELECT redemption_id FROM tokens WHERE id = \(bind: tokenId)").first()?.decode(column: "redemption_id", as: Int.self)
            }
            #expect(issuedBy == listed.data["items"][0]["id"].int, "the token keeps the code that issued it")

            // A code without a group issues tokens in `default`, valid_days 0 never expires.
            let plain = try await Self.codes(client, #"{"name": "plain", "kind": "token", "quota": 10}"#, as: root)[0]
            let plainToken = try await client.call(.post, "/api/token/redeem", #"{"key": "\#(plain)"}"#)
            #expect(plainToken.data["group"].string == "default")
            #expect(plainToken.data["expired_time"].int == -1)
            #expect(plainToken.data["model_limits_enabled"].bool == false)

            // A top-up code is not a token.
            let topup = try await Self.codes(client, #"{"name": "t", "quota": 10}"#, as: root)[0]
            let wrong = try await client.call(.post, "/api/token/redeem", #"{"key": "\#(topup)"}"#)
            #expect(wrong.code == 400)
            #expect(wrong.message.contains("top-up"))
            #expect(try await client.call(.get, "/api/redemption/?keyword=t", as: root).data["items"][0]["status"].int == 1, "it stays unused")

            // Through /api/user/topup a token code issues a token bound to the caller, with its full key.
            let (alice, aliceId) = try await client.newUser("alice")
            let bound = try await Self.codes(client, #"{"name": "mine", "kind": "token", "quota": 42}"#, as: root)[0]
            let mine = try await client.call(.post, "/api/user/topup", #"{"key": "\#(bound)"}"#, as: alice)
            #expect(mine.code == 200)
            #expect(mine.data["user_id"].int64 == aliceId)
            #expect(mine.data["independent"].bool == true)
            #expect(mine.data["remain_quota"].int == 42)
            #expect(mine.data["key"].string?.wholeMatch(of: Self.keyPattern) != nil)
            #expect(try await client.call(.get, "/api/user/self", as: alice).data["quota"].int == 0, "the balance is untouched")
            let aliceTokens = try await client.call(.get, "/api/token/", as: alice)
            #expect(aliceTokens.data["total"].int == 1)
            #expect(aliceTokens.data["items"][0]["independent"].bool == true)
            let logged = try await client.call(.get, "/api/log/?type=1", as: root)
            #expect(logged.data["total"].int == 3, "every redemption is logged: \(logged.text)")
            #expect(logged.data["items"][0]["token_id"].int == mine.data["id"].int)
        }
        await database.shutdown()
    }

    @Test(arguments: Backend.all)
    func aCodeWorksExactlyOnceUnderConcurrentRedemption(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        // AsyncHTTPClient opens parallel connections, so the 20 requests really race on the server.
        try await RaceClient.with { race in try await env.test(.ahc(.http)) { client in
            let port = try #require(client.port)
            let root = try await client.loginRoot()
            let (alice, _) = try await client.newUser("alice")

            // 20 anonymous clients, one token code.
            let tokenCode = try await Self.codes(client, #"{"name": "race", "kind": "token", "quota": 1000}"#, as: root)[0]
            let tokenAnswers = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await race.post(port, "/api/token/redeem", #"{"key": "\#(tokenCode)"}"#) }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(tokenAnswers.filter { $0 == 200 }.count == 1, "\(tokenAnswers)")
            #expect(tokenAnswers.filter { $0 == 409 }.count == 19, "\(tokenAnswers)")

            // 20 requests of one user, one top-up code.
            let topupCode = try await Self.codes(client, #"{"name": "race2", "quota": 1000}"#, as: root)[0]
            let topupAnswers = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await race.post(port, "/api/user/topup", #"{"key": "\#(topupCode)"}"#, cookie: alice) }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(topupAnswers.filter { $0 == 200 }.count == 1, "\(topupAnswers)")
            #expect(try await client.call(.get, "/api/user/self", as: alice).data["quota"].int == 1000)

            // 20 different codes at once: every credit lands (quota = quota + X).
            let many = try await Self.codes(client, #"{"name": "many", "count": 20, "quota": 7}"#, as: root)
            let manyAnswers = try await withThrowingTaskGroup(of: Int.self) { group in
                for code in many {
                    group.addTask { try await race.post(port, "/api/user/topup", #"{"key": "\#(code)"}"#, cookie: alice) }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(manyAnswers.allSatisfy { $0 == 200 }, "\(manyAnswers)")
            #expect(try await client.call(.get, "/api/user/self", as: alice).data["quota"].int == 1000 + 20 * 7)
        } }
        let issued = try await database.withSQL { sql in
            try await sql.raw("SELECT COUNT(*) AS n FROM tokens WHERE redemption_id IS NOT NULL").first()?.decode(column: "n", as: Int.self)
        }
        #expect(issued == 1, "exactly one token was issued")
        let topupLogs = try await database.withSQL { sql in
            try await sql.raw("SELECT COUNT(*) AS n FROM logs WHERE type = 1").first()?.decode(column: "n", as: Int.self)
        }
        #expect(topupLogs == 22)
        await database.shutdown()
    }

    // MARK: binding

    @Test(arguments: Backend.all)
    func bindingByKeyOrCodeNeverTakesAnotherAccountsToken(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            let codes = try await Self.codes(client, #"{"name": "bindme", "kind": "token", "quota": 5000, "count": 3}"#, as: root)
            let (alice, aliceId) = try await client.newUser("alice")
            let (bob, _) = try await client.newUser("bobby")

            // By key.
            let first = try await client.call(.post, "/api/token/redeem", #"{"key": "\#(codes[0])"}"#)
            let firstKey = try #require(first.data["key"].string)
            let firstId = try #require(first.data["id"].int)
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "\#(firstKey)"}"#).code == 401, "bind needs a login")
            let bound = try await client.call(.post, "/api/token/bind", #"{"key": "\#(firstKey)"}"#, as: alice)
            #expect(bound.code == 200, "\(bound.text)")
            #expect(bound.data["id"].int == firstId)
            #expect(bound.data["user_id"].int64 == aliceId)
            #expect(bound.data["independent"].bool == true)
            #expect(bound.data["key"].string?.wholeMatch(of: Self.maskPattern) != nil)
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "\#(firstKey)"}"#, as: alice).code == 200, "binding again is a no-op")
            let stolen = try await client.call(.post, "/api/token/bind", #"{"key": "\#(firstKey)"}"#, as: bob)
            #expect(stolen.code == 409)
            #expect(stolen.message.contains("another account"))
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "\#(codes[0])"}"#, as: bob).code == 409, "nor by its code")

            // By the code that issued it.
            let second = try await client.call(.post, "/api/token/redeem", #"{"key": "\#(codes[1])"}"#)
            let byCode = try await client.call(.post, "/api/token/bind", #"{"key": "\#(codes[1])"}"#, as: alice)
            #expect(byCode.code == 200)
            #expect(byCode.data["id"].int == second.data["id"].int)

            // An unused code is redeemed straight onto the account.
            let third = try await client.call(.post, "/api/token/bind", #"{"key": "\#(codes[2])"}"#, as: alice)
            #expect(third.code == 200)
            #expect(third.data["user_id"].int64 == aliceId)
            #expect(third.data["remain_quota"].int == 5000)

            let list = try await client.call(.get, "/api/token/", as: alice)
            #expect(list.data["total"].int == 3)
            #expect(list.data["items"].array.allSatisfy { $0["independent"].bool == true })
            #expect(try await client.call(.get, "/api/token/", as: bob).data["total"].int == 0)

            // Internal tokens are never bound away; unknown keys and codes are 404.
            let (aliceInternal, _) = try await client.key(as: alice)
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "\#(aliceInternal)"}"#, as: bob).code == 409)
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "sk-\#(RandomSecret.string(count: 48))"}"#, as: bob).code == 404)
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "\#(RandomSecret.string(count: 32))"}"#, as: bob).code == 404)
            let topup = try await Self.codes(client, #"{"name": "money", "quota": 10}"#, as: root)[0]
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "\#(topup)"}"#, as: bob).code == 400)

            // The holder may rename or disable it, not change the terms the code set.
            let renamed = try await client.call(.put, "/api/token/", #"{"id": \#(firstId), "name": "renamed", "remain_quota": 5000}"#, as: alice)
            #expect(renamed.code == 200, "\(renamed.text)")
            #expect(renamed.data["name"].string == "renamed")
            for (body, field) in [(#""remain_quota": 999999999"#, "remain_quota"), (#""unlimited_quota": true"#, "unlimited_quota"),
                                  (#""expired_time": 4102444800"#, "expired_time"), (#""group": "default", "model_limits_enabled": true"#, "model_limits_enabled")] {
                let refused = try await client.call(.put, "/api/token/", #"{"id": \#(firstId), \#(body)}"#, as: alice)
                #expect(refused.code == 400, "\(body): \(refused.text)")
                #expect(refused.message.contains(field))
            }
            #expect(try await client.call(.get, "/api/token/\(firstId)", as: alice).data["remain_quota"].int == 5000)

            // Binding is logged as a management event of the user.
            let logs = try await client.call(.get, "/api/log/self?type=3", as: alice)
            #expect(logs.data["total"].int == 2, "two bindings (the redeemed-onto-account one is a top-up): \(logs.text)")
            #expect(logs.data["items"][0]["token_id"].int == second.data["id"].int)
            #expect(logs.data["items"][0]["content"].string?.contains("alice") == true)
        }
    }

    // MARK: token login

    @Test(arguments: Backend.all)
    func tokenLoginScopesTheSessionToOneToken(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await env.test { client in
            let root = try await client.loginRoot()
            let codes = try await Self.codes(client, #"{"name": "login", "kind": "token", "quota": 9000, "count": 3}"#, as: root)
            let redeemed = try await client.call(.post, "/api/token/redeem", #"{"key": "\#(codes[0])"}"#)
            let key = try #require(redeemed.data["key"].string)
            let tokenId = try #require(redeemed.data["id"].int)

            // With the code that issued it.
            let login = try await client.call(.post, "/api/token/login", #"{"key": "\#(codes[0])"}"#)
            #expect(login.code == 200, "\(login.text)")
            let setCookie = try #require(login.headers[.setCookie])
            #expect(setCookie.contains("HttpOnly"))
            #expect(setCookie.contains("SameSite=Strict"))
            #expect(login.data["id"].int == tokenId)
            #expect(login.data["key"].string?.wholeMatch(of: Self.maskPattern) != nil)
            let session = Credential.cookie(String(setCookie.split(separator: ";")[0]))

            let me = try await client.call(.get, "/api/token/self", as: session)
            #expect(me.code == 200, "self is not taken for an :id: \(me.text)")
            #expect(me.data["id"].int == tokenId)
            #expect(me.data["remain_quota"].int == 9000)
            #expect(me.data["key"].string?.wholeMatch(of: Self.maskPattern) != nil)
            let revealed = try await client.call(.post, "/api/token/self/key", as: session)
            #expect(revealed.data["key"].string == key)
            let usage = try await client.call(.get, "/api/usage/token", as: session)
            #expect(usage.code == 200)
            #expect(usage.data["id"].int == tokenId)
            #expect(usage.data["total_available"].int == 9000)
            let logs = try await client.call(.get, "/api/log/token", as: session)
            #expect(logs.code == 200)
            #expect(logs.data["items"].array.allSatisfy { $0["token_id"].int == tokenId })

            // Nothing else.
            let outside: [(HTTPRequest.Method, String, String?)] = [
                (.get, "/api/log/self", nil), (.get, "/api/user/self", nil), (.get, "/api/token/", nil), (.get, "/api/token/\(tokenId)", nil),
                (.post, "/api/token/\(tokenId)/key", nil), (.put, "/api/token/", #"{"id": \#(tokenId), "name": "x"}"#),
                (.delete, "/api/token/\(tokenId)", nil), (.post, "/api/token/", #"{"name": "x"}"#),
                (.post, "/api/user/topup", #"{"key": "\#(codes[1])"}"#), (.post, "/api/token/bind", #"{"key": "\#(key)"}"#),
                (.get, "/api/redemption/", nil), (.get, "/api/data/self", nil), (.get, "/api/user/self/groups", nil), (.get, "/api/log/", nil),
            ]
            for (method, path, body) in outside {
                let answer = try await client.call(method, path, body, as: session)
                #expect(answer.code == 403, "\(method) \(path): \(answer.code) \(answer.text)")
            }
            #expect(try await client.call(.get, "/api/token/self", as: session).code == 200, "the session survives refusals")

            // With the sk- key.
            let byKey = try await client.call(.post, "/api/token/login", #"{"key": "\#(key)"}"#)
            #expect(byKey.code == 200)
            #expect(byKey.data["id"].int == tokenId)

            // With an unused code: it is redeemed, and the answer carries the new full key.
            let fresh = try await client.call(.post, "/api/token/login", #"{"key": "\#(codes[1])"}"#)
            #expect(fresh.code == 200, "\(fresh.text)")
            #expect(fresh.data["key"].string?.wholeMatch(of: Self.keyPattern) != nil)
            #expect(fresh.data["user_id"].isNull)
            #expect(try await client.call(.post, "/api/token/redeem", #"{"key": "\#(codes[1])"}"#).code == 409)

            // Refusals.
            #expect(try await client.call(.post, "/api/token/login", #"{"key": "\#(RandomSecret.string(count: 32))"}"#).code == 401)
            #expect(try await client.call(.post, "/api/token/login", #"{"key": "sk-\#(RandomSecret.string(count: 48))"}"#).code == 401)
            let topup = try await Self.codes(client, #"{"name": "money", "quota": 10}"#, as: root)[0]
            #expect(try await client.call(.post, "/api/token/login", #"{"key": "\#(topup)"}"#).code == 400)
            try await database.withSQL { sql in try await sql.raw("UPDATE tokens SET status = 2 WHERE id = \(bind: tokenId)").run() }
            #expect(try await client.call(.post, "/api/token/login", #"{"key": "\#(key)"}"#).code == 403, "a disabled token cannot log in")

            // A user session and no session.
            let (alice, _) = try await client.newUser("alice")
            #expect(try await client.call(.get, "/api/token/self", as: alice).code == 403)
            #expect(try await client.call(.get, "/api/token/self").code == 401)
            #expect(try await client.call(.post, "/api/token/self/key").code == 401)

            // Deleting the token ends its sessions.
            _ = try await client.call(.post, "/api/token/bind", #"{"key": "\#(codes[2])"}"#, as: alice)
            let aliceToken = try await client.call(.get, "/api/token/", as: alice).data["items"][0]
            let aliceKey = try #require(try await client.call(.post, "/api/token/\(aliceToken["id"].int ?? 0)/key", as: alice).data["key"].string)
            let aliceSession = try await client.call(.post, "/api/token/login", #"{"key": "\#(aliceKey)"}"#)
            let cookie = Credential.cookie(String(try #require(aliceSession.headers[.setCookie]).split(separator: ";")[0]))
            #expect(try await client.call(.get, "/api/token/self", as: cookie).code == 200)
            #expect(try await client.call(.delete, "/api/token/\(aliceToken["id"].int ?? 0)", as: alice).code == 200)
            #expect(try await client.call(.get, "/api/token/self", as: cookie).code == 401)
        }
        await database.shutdown()
    }

    // MARK: relay

    @Test(arguments: Backend.all)
    func independentTokensAreBilledOnTheirOwnQuotaOnly(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 10, completion: 5))
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await env.test { client in
            // alice has no balance at all.
            let (root, alice, aliceId) = try await client.relaySetup(upstream, balance: 0, callPrice: nil)
            let code = try await Self.codes(client, #"{"name": "pack", "kind": "token", "quota": 1000000, "valid_days": 30}"#, as: root)[0]
            let independent = try await client.call(.post, "/api/user/topup", #"{"key": "\#(code)"}"#, as: alice)
            let independentKey = try #require(independent.data["key"].string)
            let independentId = try #require(independent.data["id"].int)
            let (internalKey, _) = try await client.key(as: alice)

            let served = try await client.relay("/v1/chat/completions", key: independentKey, chatBody())
            #expect(served.code == 200, "an independent token works with the owner's balance at 0: \(served.text)")
            let refused = try await client.relay("/v1/chat/completions", key: internalKey, chatBody())
            #expect(refused.code == 429)
            #expect(refused.json["error"]["code"].string == "insufficient_quota")

            // The charge lands on the token only.
            let logs = try await client.call(.get, "/api/log/self?type=2", as: alice)
            #expect(logs.data["total"].int == 1)
            let cost = try #require(logs.data["items"][0]["quota"].int)
            #expect(cost > 0)
            #expect(logs.data["items"][0]["token_id"].int == independentId)
            let token = try await client.call(.get, "/api/token/\(independentId)", as: alice)
            #expect(token.data["used_quota"].int == cost)
            #expect(token.data["remain_quota"].int == 1_000_000 - cost)
            let me = try await client.call(.get, "/api/user/self", as: alice)
            #expect(me.data["quota"].int == 0)
            #expect(me.data["used_quota"].int == 0, "the user balance is never charged")
            let balance = try await database.withSQL { sql in
                try await sql.raw("SELECT quota, used_quota, leased FROM users WHERE id = \(bind: aliceId)").first().map {
                    [try $0.decode(column: "quota", as: Int.self), try $0.decode(column: "used_quota", as: Int.self)]
                }
            }
            #expect(balance == [0, 0])
            let login = try await client.call(.post, "/api/token/login", #"{"key": "\#(independentKey)"}"#)
            let session = Credential.cookie(String(try #require(login.headers[.setCookie]).split(separator: ";")[0]))
            #expect(try await client.call(.get, "/api/token/self", as: session).data["used_quota"].int == cost, "token login sees the charge")

            // An unbound independent token works too; binding it later moves its calls onto the account's log.
            let loose = try await Self.codes(client, #"{"name": "loose", "kind": "token", "quota": 1000000}"#, as: root)[0]
            let looseToken = try await client.call(.post, "/api/token/redeem", #"{"key": "\#(loose)"}"#)
            let looseKey = try #require(looseToken.data["key"].string)
            #expect(try await client.relay("/v1/chat/completions", key: looseKey, chatBody()).code == 200)
            let looseUsage = try await client.call(.get, "/api/usage/token", headers: [.authorization: "Bearer \(looseKey)"])
            #expect(looseUsage.data["total_used"].int ?? 0 > 0)
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "\#(looseKey)"}"#, as: alice).code == 200)
            #expect(try await client.relay("/v1/chat/completions", key: looseKey, chatBody()).code == 200, "still served at balance 0 once bound")
            let afterBinding = try await client.call(.get, "/api/log/self?type=2", as: alice)
            #expect(afterBinding.data["total"].int == 2, "the call after binding is the account's: \(afterBinding.text)")
            #expect(try await client.call(.get, "/api/user/self", as: alice).data["used_quota"].int == 0)

            // Independent tokens expire after their validity.
            let short = try await Self.codes(client, #"{"name": "short", "kind": "token", "quota": 1000000, "valid_days": 1}"#, as: root)[0]
            let shortToken = try await client.call(.post, "/api/token/redeem", #"{"key": "\#(short)"}"#)
            let shortKey = try #require(shortToken.data["key"].string)
            let shortId = try #require(shortToken.data["id"].int)
            try await database.withSQL { sql in try await sql.raw("UPDATE tokens SET expired_time = \(bind: Clock.nowSeconds() - 10) WHERE id = \(bind: shortId)").run() }
            let expired = try await client.relay("/v1/chat/completions", key: shortKey, chatBody())
            #expect(expired.code == 401)
            #expect(expired.json["error"]["code"].string == "token_expired")
        }
        await database.shutdown()
        await upstream.stop()
    }

    @Test(arguments: Backend.all)
    func aTopupReachesTheRelayAtOnce(_ backend: Backend) async throws {
        let upstream = try await FakeUpstream.start(.answer(prompt: 10, completion: 5))
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let (root, alice, _) = try await client.relaySetup(upstream, balance: 0, callPrice: nil)
            let (key, _) = try await client.key(as: alice)
            let before = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(before.code == 429)
            let code = try await Self.codes(client, #"{"name": "refill", "quota": 10000000}"#, as: root)[0]
            #expect(try await client.call(.post, "/api/user/topup", #"{"key": "\#(code)"}"#, as: alice).code == 200)
            let after = try await client.relay("/v1/chat/completions", key: key, chatBody())
            #expect(after.code == 200, "the credited balance is seen by the relay: \(after.text)")
            let me = try await client.call(.get, "/api/user/self", as: alice)
            let used = try #require(me.data["used_quota"].int)
            #expect(used > 0)
            #expect(me.data["quota"].int == 10_000_000 - used)
        }
        await upstream.stop()
    }

    // MARK: helpers

    /// Creates codes as an administrator and answers them.
    static func codes(_ client: any TestClientProtocol, _ body: String, as root: Credential) async throws -> [String] {
        let answer = try await client.call(.post, "/api/redemption/", body, as: root)
        guard answer.code == 200 else { throw TestSetupError("redemption: \(answer.text)") }
        return answer.data.array.compactMap(\.string)
    }
}


/// Sends racing requests on connections of their own (one per request, waiting as long as a loaded machine needs),
/// so that the server sees them at the same moment.
final class RaceClient: Sendable {
    let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(60), read: .seconds(60)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    func post(_ port: Int, _ path: String, _ body: String, cookie: Credential = .none) async throws -> Int {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if case .cookie(let value) = cookie { request.headers.add(name: "Cookie", value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(90))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    /// Runs `body` with a client that is shut down afterwards, also when `body` throws: a client dropped without
    /// shutting down stops the whole test process.
    static func with(_ body: (RaceClient) async throws -> Void) async throws {
        let race = RaceClient()
        do {
            try await body(race)
        } catch {
            try? await race.client.shutdown()
            throw error
        }
        try await race.client.shutdown()
    }
}
