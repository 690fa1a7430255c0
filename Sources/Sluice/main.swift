import ArgumentParser
import Foundation
import Hummingbird
import Logging
import SluiceAPI

/// The `sluice` command.
@main
struct SluiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Sluice: an LLM API gateway.",
        subcommands: [Serve.self],
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
