import Foundation
import HTTPTypes
import Logging
import SQLKit
import SluiceCore
@testable import SluiceStore
import SluiceTestSupport
import Testing

/// Log pages, totals and hourly usage come from the totals by the day, hour and minute and the partial minutes of `logs`; they
/// must equal what counting and grouping every row gives, for any filter, page and time range, on every backend.
/// Token lists take their total from the owner's token count, which must follow every way a token comes and goes.
@Suite struct LogQueryTests {
    static let users: [Int64?] = [nil, 1, 2, 3, 4]
    static let models = ["gpt-a", "gpt-b", "claude-c", ""]
    /// Names rows carry besides their key's own (`key-ID`): keys renamed, names reused.
    static let tokenNames = ["alpha", "beta", "gamma", "renamed", ""]
    /// The first hour of the data (the start of a day); rows spread over the eight days after it.
    static let firstHour: Int64 = 1_767_225_600

    /// A random row: mostly charged calls, some of every other type, timestamps anywhere in eight days, often on the
    /// first or last second of an hour, and many sharing a second.
    static func randomEntry(_ rng: inout SplitMix64) -> LogEntry {
        let hour = firstHour + Int64.random(in: 0..<192, using: &rng) * 3600
        let second: Int64 = switch Int.random(in: 0..<10, using: &rng) {
        case 0: 0
        case 1: 3599
        case 2: 1800
        default: Int64.random(in: 0..<3600, using: &rng)
        }
        let tokenId: Int64? = Int.random(in: 0..<8, using: &rng) == 0 ? nil : Int64.random(in: 1...12, using: &rng)
        let type = Int.random(in: 0..<10, using: &rng) < 6 ? LogEntry.Kind.consume : Int.random(in: 1...5, using: &rng)
        let ownName = tokenId.map { "key-\($0)" }
        let tokenName = Int.random(in: 0..<4, using: &rng) == 0 ? tokenNames.randomElement(using: &rng)! : ownName ?? ""
        var entry = LogEntry(createdAt: hour + second, type: type, userId: users.randomElement(using: &rng)!, tokenId: tokenId,
                             tokenName: tokenName, modelName: models.randomElement(using: &rng)!,
                             group: "default", channelId: 1, channelName: "c", promptTokens: Int.random(in: 0...5000, using: &rng),
                             completionTokens: Int.random(in: 0...3000, using: &rng), quota: Int64.random(in: 0...100_000, using: &rng),
                             useTimeMs: 5, isStream: false, ip: "127.0.0.1", content: "", requestId: "r")
        entry.userCharged = false
        return entry
    }

    /// A random timestamp for a filter: on, just before or just after an hour boundary, anywhere, or out of range.
    static func randomTime(_ rng: inout SplitMix64) -> Int64 {
        let hour = firstHour + Int64.random(in: -2...194, using: &rng) * 3600
        switch Int.random(in: 0..<12, using: &rng) {
        case 0: return hour
        case 1: return hour - 1
        case 2: return hour + 1
        case 3: return hour + 3599
        case 4: return Int.random(in: 0..<2, using: &rng) == 0 ? Int64.max : Int64.min
        default: return hour + Int64.random(in: 0..<3600, using: &rng)
        }
    }

    static func randomFilter(_ rng: inout SplitMix64) -> LogFilter {
        func sometimes<T>(_ percent: Int, _ make: (inout SplitMix64) -> T) -> T? {
            Int.random(in: 0..<100, using: &rng) < percent ? make(&rng) : nil
        }
        func oneIn(_ n: Int, _ rng: inout SplitMix64) -> Bool { Int.random(in: 0..<n, using: &rng) == 0 }
        var filter = LogFilter()
        // Ids below 1 now and then (no row has them), user 5 and key 13 own no rows.
        filter.userId = sometimes(60) { oneIn(12, &$0) ? Int64.random(in: -1...0, using: &$0) : Int64.random(in: 1...5, using: &$0) }
        filter.tokenId = sometimes(25) { oneIn(12, &$0) ? 0 : Int64.random(in: 1...13, using: &$0) }
        filter.tokenName = sometimes(25) { oneIn(2, &$0) ? tokenNames.randomElement(using: &$0)! : "key-\(Int.random(in: 1...13, using: &$0))" }
        filter.modelName = sometimes(25) { (models + ["nobody-calls-this"]).randomElement(using: &$0)! }
        filter.type = sometimes(25) { Int.random(in: 1...5, using: &$0) }
        filter.start = sometimes(45) { randomTime(&$0) }
        filter.end = sometimes(45) { randomTime(&$0) }
        if Int.random(in: 0..<10, using: &rng) == 0, let start = filter.start, (-(1 << 40)...(1 << 40)).contains(start) {
            filter.end = start + Int64.random(in: -1...7200, using: &rng)  // narrow ranges: within one or two hours
        }
        return filter
    }

    /// The conditions of `filter`, written plainly: what the rows say, without the hourly totals.
    static func plainWhere(_ filter: LogFilter) -> SQLQueryString {
        var clause: SQLQueryString = "1 = 1"
        if let userId = filter.userId { clause = "\(clause) AND user_id = \(bind: userId)" }
        if let tokenId = filter.tokenId { clause = "\(clause) AND token_id = \(bind: tokenId)" }
        if let name = filter.tokenName, !name.isEmpty { clause = "\(clause) AND token_name = \(bind: name)" }
        if let model = filter.modelName, !model.isEmpty { clause = "\(clause) AND model_name = \(bind: model)" }
        if let type = filter.type { clause = "\(clause) AND type = \(bind: type)" }
        if let start = filter.start { clause = "\(clause) AND created_at >= \(bind: start)" }
        if let end = filter.end { clause = "\(clause) AND created_at <= \(bind: end)" }
        return clause
    }

    static func describe(_ filter: LogFilter) -> String {
        "user \(filter.userId.map(String.init) ?? "-") token \(filter.tokenId.map(String.init) ?? "-") name \(filter.tokenName ?? "-") "
            + "model \(filter.modelName ?? "-") type \(filter.type.map(String.init) ?? "-") "
            + "from \(filter.start.map(String.init) ?? "-") to \(filter.end.map(String.init) ?? "-")"
    }

    /// Inserts rows as they were written before the hourly totals existed.
    static func insertRaw(_ entries: [LogEntry], on database: Database) async throws {
        try await database.withSQL { sql in
            for start in stride(from: 0, to: entries.count, by: 200) {
                var insert = sql.insert(into: "logs").columns("created_at", "type", "user_id", "token_id", "token_name", "model_name",
                                                              "group_name", "prompt_tokens", "completion_tokens", "quota")
                for entry in entries[start..<min(start + 200, entries.count)] {
                    insert = insert.values(SQLBind(entry.createdAt), SQLBind(entry.type), SQLBind(entry.userId), SQLBind(entry.tokenId),
                                           SQLBind(entry.tokenName), SQLBind(entry.modelName), SQLBind(entry.group),
                                           SQLBind(entry.promptTokens), SQLBind(entry.completionTokens), SQLBind(entry.quota))
                }
                try await insert.run()
            }
        }
    }

    /// The group commit binds its rows' values itself, in statements of `LogRows.chunk` rows: a flush of several
    /// statements and a remainder stores every field of every row as it was given.
    @Test(arguments: Backend.all)
    func theGroupCommitStoresEveryFieldOfEveryRow(_ backend: Backend) async throws {
        var rng = SplitMix64(seed: UInt64.random(in: 0...UInt64.max))
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await database.migrate()
        let texts = ["", "a", "ключ ✓", "it's \"quoted\"; -- not SQL", String(repeating: "long text ", count: 60), "127.0.0.1", "::1"]
        func text(_ rng: inout SplitMix64) -> String { texts.randomElement(using: &rng)! }
        func id(_ rng: inout SplitMix64) -> Int64? { Int.random(in: 0..<4, using: &rng) == 0 ? nil : Int64.random(in: 1...Int64.max, using: &rng) }
        let count = LogRows.chunk * 2 + 37
        let entries = (0..<count).map { _ in
            var entry = LogEntry(createdAt: Int64.random(in: -(1 << 40)...(1 << 40), using: &rng), type: Int.random(in: 1...5, using: &rng),
                                 userId: id(&rng), tokenId: id(&rng), tokenName: text(&rng), modelName: text(&rng), group: text(&rng),
                                 channelId: id(&rng), channelName: text(&rng), promptTokens: Int.random(in: 0...Int(Int32.max), using: &rng),
                                 completionTokens: Int.random(in: 0...1_000_000, using: &rng), quota: Int64.random(in: 0...Int64.max, using: &rng),
                                 useTimeMs: Int.random(in: 0...600_000, using: &rng), isStream: Bool.random(using: &rng), ip: text(&rng),
                                 content: text(&rng), requestId: text(&rng))
            entry.userCharged = Bool.random(using: &rng)
            return entry
        }
        let writer = LedgerWriter(database: database, instanceId: "test", logger: Logger(label: "test"))
        writer.append { $0.logs.append(contentsOf: entries) }
        try await writer.flush()
        let stored = try await database.withSQL { sql in
            try await sql.raw("SELECT * FROM logs ORDER BY id").all().map { row in
                var entry = try LogStore.decode(row)
                entry.id = 0
                entry.userCharged = try row.decode(column: "user_charged", as: Int.self) != 0
                return entry
            }
        }
        #expect(stored.count == count)
        for (index, (got, want)) in zip(stored, entries).enumerated() where got != want {
            Issue.record("row \(index): stored \(got), given \(want)")
            break
        }
        await database.shutdown()
    }

    @Test(arguments: Backend.all)
    func pagesTotalsAndHourlyUsageEqualCountingEveryRow(_ backend: Backend) async throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var rng = SplitMix64(seed: seed)
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        // Rows from before the hourly totals: the migration adds them up.
        try await database.migrate(through: 4)
        try await Self.insertRaw((0..<600).map { _ in Self.randomEntry(&rng) }, on: database)
        try await database.migrate()
        // Rows written since: group commits of many rows, and single management rows.
        let writer = LedgerWriter(database: database, instanceId: "test", logger: Logger(label: "test"))
        let store = LogStore(database: database)
        for _ in 0..<12 {
            let batch = (0..<Int.random(in: 1...400, using: &rng)).map { _ in Self.randomEntry(&rng) }
            writer.append { $0.logs.append(contentsOf: batch) }
            try await writer.flush()
            for _ in 0..<Int.random(in: 0...4, using: &rng) { try await store.insert(Self.randomEntry(&rng)) }
        }
        let rows = try await database.withSQL { sql in
            try await sql.raw("SELECT COUNT(*) AS n FROM logs").first()?.decode(column: "n", as: Int.self) ?? 0
        }
        #expect(rows > 2000)

        for round in 0..<250 {
            var filter = Self.randomFilter(&rng)
            if round == 0 { filter = LogFilter() }
            let context = "seed \(seed), round \(round): \(Self.describe(filter))"
            let plain = Self.plainWhere(filter)
            let expectedTotal = try await database.withSQL { sql in
                try await sql.raw("SELECT COUNT(*) AS n FROM logs WHERE \(plain)").first()?.decode(column: "n", as: Int.self) ?? 0
            }
            // Pages: the first, one at or after the end, and a few in between, of random sizes.
            let size = [1, 7, 20, 100].randomElement(using: &rng)!
            let lastPage = max(1, (expectedTotal + size - 1) / size)
            var numbers = [1, lastPage, lastPage + 1]
            for _ in 0..<2 { numbers.append(Int.random(in: 1...lastPage, using: &rng)) }
            for number in numbers {
                let page = Page(number: number, size: size)
                let expectedIds = try await database.withSQL { sql in
                    try await sql.raw("""
                        SELECT id FROM logs WHERE \(plain) ORDER BY created_at DESC, id DESC LIMIT \(bind: page.size) OFFSET \(bind: page.offset)
                        """).all().map { try $0.decode(column: "id", as: Int64.self) }
                }
                let got = try await store.list(filter, page: page)
                #expect(got.total == expectedTotal, "total, \(context)")
                #expect(got.items.map(\.id) == expectedIds, "page \(number) of size \(size), \(context)")
            }

            let expectedHourly = try await database.withSQL { sql in
                try await sql.raw("""
                    SELECT (created_at / 3600) * 3600 AS hour, model_name, COALESCE(token_id, 0) AS token_id, COUNT(*) AS n,
                           CAST(SUM(prompt_tokens) AS BIGINT) AS p, CAST(SUM(completion_tokens) AS BIGINT) AS c, CAST(SUM(quota) AS BIGINT) AS q
                    FROM logs WHERE \(plain) AND type = 2
                    GROUP BY (created_at / 3600) * 3600, model_name, COALESCE(token_id, 0) ORDER BY hour, model_name, token_id
                    """).all().map { row in
                    HourlyUsage(hour: try row.decode(column: "hour", as: Int64.self), modelName: try row.decode(column: "model_name", as: String.self),
                                tokenId: try row.decode(column: "token_id", as: Int64.self), count: try row.decode(column: "n", as: Int64.self),
                                promptTokens: try row.decode(column: "p", as: Int64.self), completionTokens: try row.decode(column: "c", as: Int64.self),
                                quota: try row.decode(column: "q", as: Int64.self))
                }
            }
            let hourly = try await store.hourly(filter)
            #expect(hourly == expectedHourly, "hourly usage, \(context)")

            let expectedTotals = UsageTotals(count: expectedHourly.reduce(0) { $0 + $1.count },
                                             promptTokens: expectedHourly.reduce(0) { $0 + $1.promptTokens },
                                             completionTokens: expectedHourly.reduce(0) { $0 + $1.completionTokens },
                                             quota: expectedHourly.reduce(0) { $0 + $1.quota })
            #expect(try await store.totals(filter) == expectedTotals, "totals, \(context)")
        }

        // The ledger check compares the hourly totals with the rows, and finds a total that drifted.
        #expect(try await LedgerCheck(database: database).run().ok)
        try await database.withSQL { sql in
            try await sql.raw("UPDATE log_hours SET count = count + 1 WHERE hour = (SELECT MIN(hour) FROM log_hours)").run()
        }
        let report = try await LedgerCheck(database: database).run()
        #expect(report.problems.contains { $0.subject.hasPrefix("log hour \(Self.firstHour) ") }, "\(report.problems)")
        await database.shutdown()
    }

    /// A range cut inside an hour is counted from the totals by the minute and the rows of its partial minutes: rows on
    /// every second around the cuts, filters with and without their own range, equal counting the rows.
    @Test(arguments: Backend.all)
    func aRangeCutInsideAnHourIsCountedFromItsMinutes(_ backend: Backend) async throws {
        var rng = SplitMix64(seed: 7)
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await database.migrate()
        let hour = Self.firstHour + 5 * 3600
        let cuts: [Int64] = [1, 1799, 1800, 1801, 2400, 3598]
        var seconds: [Int64] = [0, 3599]
        for cut in cuts { seconds += [cut - 1, cut, cut + 1] }
        for _ in 0..<200 { seconds.append(Int64.random(in: 0..<3600, using: &rng)) }
        var entries: [LogEntry] = []
        for second in seconds + [-1, 3600] {  // and a row on each side of the hour
            var entry = Self.randomEntry(&rng)
            entry.createdAt = hour + second
            entries.append(entry)
        }
        let writer = LedgerWriter(database: database, instanceId: "test", logger: Logger(label: "test"))
        writer.append { $0.logs.append(contentsOf: entries) }
        try await writer.flush()
        let store = LogStore(database: database)
        for cut in cuts {
            let ranges: [(Int64?, Int64?)] = [(hour + cut, nil), (nil, hour + cut), (hour + cut, hour + 3599), (hour, hour + cut),
                                                (hour + cut, hour + cut + 1799), (hour + cut - 1800, hour + cut)]
            for (start, end) in ranges {
                for type in [nil, LogEntry.Kind.consume] {
                    var filter = LogFilter()
                    filter.start = start
                    filter.end = end
                    filter.type = type
                    let plain = Self.plainWhere(filter)
                    let expected = try await database.withSQL { sql in
                        try await sql.raw("SELECT COUNT(*) AS n FROM logs WHERE \(plain)").first()?.decode(column: "n", as: Int.self) ?? 0
                    }
                    #expect(try await store.list(filter, page: Page(number: 1, size: 5)).total == expected, "\(Self.describe(filter))")
                }
            }
        }
        await database.shutdown()
    }

    @Test(arguments: Backend.all)
    func theTokenCountFollowsEveryWayATokenComesAndGoes(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        try await env.test { client in
            let root = try await client.loginRoot()
            let (alice, _) = try await client.newUser("alice")
            let (bob, bobId) = try await client.newUser("bobby")
            func total(_ credential: Credential) async throws -> Int? {
                try await client.call(.get, "/api/token/?p=1&size=5", as: credential).data["total"].int
            }

            let batch = try await client.call(.post, "/api/token/", #"{"name": "many", "count": 12, "unlimited_quota": true}"#, as: alice)
            let ids = batch.data.array.compactMap { $0["id"].int }
            #expect(ids.count == 12)
            #expect(try await total(alice) == 12)
            #expect(try await client.call(.get, "/api/token/?p=3&size=5", as: alice).data["items"].array.count == 2)
            #expect(try await client.call(.delete, "/api/token/\(ids[0])", as: alice).code == 200)
            #expect(try await client.call(.delete, "/api/token/\(ids[0])", as: alice).code == 404)
            #expect(try await client.call(.delete, "/api/token/\(ids[1])", as: bob).code == 404, "not bob's to delete")
            let deleted = try await client.call(.post, "/api/token/batch", #"{"ids": [\#(ids[1]), \#(ids[2]), \#(ids[2]), 999999]}"#, as: alice)
            #expect(deleted.data.int == 2)
            #expect(try await total(alice) == 9)
            #expect(try await total(bob) == 0)
            #expect(try await client.call(.get, "/api/token/search?keyword=many", as: alice).data["total"].int == 9)
            #expect(try await client.call(.get, "/api/token/search?keyword=", as: alice).data["total"].int == 9)

            // Token codes: redeemed onto the account, redeemed unbound and then bound, bound by its code.
            let codes = try await RedemptionTests.codes(client, #"{"name": "t", "kind": "token", "quota": 5000, "count": 3}"#, as: root)
            #expect(try await client.call(.post, "/api/user/topup", #"{"key": "\#(codes[0])"}"#, as: bob).code == 200)
            #expect(try await total(bob) == 1)
            let loose = try await client.call(.post, "/api/token/redeem", #"{"key": "\#(codes[1])"}"#)
            let looseKey = try #require(loose.data["key"].string)
            #expect(try await total(bob) == 1, "an unbound token counts for nobody")
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "\#(looseKey)"}"#, as: bob).code == 200)
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "\#(looseKey)"}"#, as: bob).code == 200, "again: no change")
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "\#(looseKey)"}"#, as: alice).code == 409)
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "\#(codes[2])"}"#, as: bob).code == 200)
            #expect(try await total(bob) == 3)
            #expect(try await total(alice) == 9)

            // Deleting bob unbinds his independent tokens; alice may then bind one.
            #expect(try await client.call(.delete, "/api/user/\(bobId)", as: root).code == 200)
            #expect(try await client.call(.post, "/api/token/bind", #"{"key": "\#(looseKey)"}"#, as: alice).code == 200)
            #expect(try await total(alice) == 10)
            let renamed = try await client.call(.put, "/api/token/", #"{"id": \#(ids[3]), "name": "renamed"}"#, as: alice)
            #expect(renamed.code == 200)
            #expect(try await total(alice) == 10)
        }
        let database = try env.openDatabase()
        let counts = try await database.withSQL { sql in
            try await sql.raw("""
                SELECT u.token_count, (SELECT COUNT(*) FROM tokens t WHERE t.user_id = u.id) AS owned FROM users u
                """).all().map { (try $0.decode(column: "token_count", as: Int.self), try $0.decode(column: "owned", as: Int.self)) }
        }
        #expect(counts.allSatisfy { $0.0 == $0.1 }, "\(counts)")
        #expect(try await LedgerCheck(database: database).run().ok)
        try await database.withSQL { sql in try await sql.raw("UPDATE users SET token_count = token_count + 1 WHERE id = 1").run() }
        let report = try await LedgerCheck(database: database).run()
        #expect(report.problems.map(\.description) == ["user 1: token_count 1 but owns 0 tokens"])
        await database.shutdown()
    }

    @Test(arguments: Backend.all)
    func theMigrationCountsExistingTokens(_ backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        let database = try env.openDatabase()
        try await database.migrate(through: 4)
        try await database.withSQL { sql in
            for (id, name) in [(Int64(1), "one"), (2, "two")] {
                try await sql.raw("""
                    INSERT INTO users (id, username, password_hash, created_at, updated_at) VALUES (\(bind: id), \(bind: name), 'x', 0, 0)
                    """).run()
            }
            for index in 0..<5 {
                let owner: Int64? = index < 3 ? 1 : (index == 3 ? 2 : nil)
                try await sql.raw("""
                    INSERT INTO tokens (user_id, name, key_hash, key_enc, created_time, updated_at)
                    VALUES (\(bind: owner), 't', \(bind: "hash-\(index)"), 'sealed', 0, 0)
                    """).run()
            }
        }
        try await database.migrate()
        let counts = try await database.withSQL { sql in
            try await sql.raw("SELECT id, token_count FROM users ORDER BY id").all()
                .map { try $0.decode(column: "token_count", as: Int.self) }
        }
        #expect(counts == [3, 1])
        await database.shutdown()
    }
}
