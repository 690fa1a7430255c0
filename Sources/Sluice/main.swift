import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import SluiceAPI
import SluiceStore

/// The `sluice` command.
struct SluiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Sluice: an LLM API gateway.",
        subcommands: [Serve.self, Ledger.self, DoctorCommand.self],
        defaultSubcommand: Serve.self
    )
}

/// `sluice serve`: the API and the console.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the API and the console.")

    @Option(help: "Listen address (env SLUICE_HOST, default 127.0.0.1).") var host: String?
    @Option(help: "Listen port (env SLUICE_PORT, default 3000).") var port: Int?
    @Option(help: "sqlite:PATH or postgres://user:pass@host:port/db (env SLUICE_DATABASE, default sqlite:data/sluice.sqlite).") var database: String?

    func run() async throws {
        let config = SluiceConfig.resolve(host: host, port: port, database: database)
        let app = try await buildApplication(config)
        try await app.runService()
    }
}

/// `sluice ledger ...`: money checks.
struct Ledger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the ledger.", subcommands: [Check.self])

    /// `sluice ledger check`: balances, spent amounts, leases and the call log agree for every token and user.
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify that balances, used amounts, leases and logs agree for every token and user (exit 1 if not).")

        @Option(help: "sqlite:PATH or postgres://... (env SLUICE_DATABASE, default sqlite:data/sluice.sqlite).") var database: String?

        func run() async throws {
            let config = SluiceConfig.resolve(database: database)
            let report = try await ledgerCheck(config)
            for problem in report.problems { print("problem: \(problem)") }
            print("ledger check: \(report.tokens) tokens, \(report.users) users, \(report.logs) log rows, \(report.problems.count) problems")
            if !report.ok { throw ExitCode(1) }
        }
    }
}

/// `sluice doctor`: checks the configuration and says what to fix (exit 1 if something must be).
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "doctor", abstract: "Check the configuration, the database and the secret.")

    @Option(help: "sqlite:PATH or postgres://... (env SLUICE_DATABASE).") var database: String?
    @Option(help: "Listen port to check (env SLUICE_PORT).") var port: Int?

    func run() async throws {
        let findings = await Doctor.run(SluiceConfig.resolve(port: port, database: database))
        for finding in findings { print("\(finding.ok ? "ok  " : "FAIL") \(finding.check): \(finding.detail)") }
        let failed = findings.filter { !$0.ok }.count
        print(failed == 0 ? "sluice doctor: everything looks right" : "sluice doctor: \(failed) problem(s) to fix")
        if failed > 0 { throw ExitCode(1) }
    }
}

// NIO's event loops run Sluice's tasks too: a call then stays on the thread whose socket it came in on, instead of
// hopping to the cooperative pool and back for each await (docs/performance.md, finding 1). Blocking work (SQLite,
// bcrypt) runs on thread pools of its own. Installed before any task starts.
LoggingSystem.bootstrap({ label, provider in LineLogHandler(label: label, metadataProvider: provider) }, metadataProvider: nil)
_ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
await runSluice()

/// What ArgumentParser's async `main` does; written out because top-level code cannot pick the async overload.
func runSluice() async {
    do {
        var command = try SluiceCommand.parseAsRoot()
        if var asyncCommand = command as? any AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
    } catch {
        SluiceCommand.exit(withError: error)
    }
}
