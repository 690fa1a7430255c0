import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SluiceCore

/// A real `sluice serve` process, for what only a process shows: start-up, signals, crashes, several instances.
final class SluiceProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let output: URL
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The built binary (`SLUICE_BIN`, else `.build/debug/sluice` of this package).
    static var binary: String {
        if let bin = ProcessInfo.processInfo.environment["SLUICE_BIN"] { return bin }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/sluice").path
    }

    /// A free loopback port.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Starts `sluice serve` with the environment and extra arguments, and waits for `/healthz`.
    init(environment: [String: String], arguments: [String] = [], port: Int = SluiceProcess.freePort()) async throws {
        self.port = port
        output = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-proc-\(RandomSecret.string(count: 8)).log")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--port", String(port)] + arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if !process.isRunning { throw TestSetupError("sluice exited early: \(log)") }
            if (try? await get("/healthz").status) == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSetupError("sluice did not answer /healthz in 30 s: \(log)")
    }

    /// What the process printed.
    var log: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

    /// Sends a signal.
    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the exit (up to `seconds`) and answers the exit status, or nil if it is still running.
    func waitForExit(seconds: Double) async throws -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Stops the process for good.
    func stop() async {
        if process.isRunning { signal(SIGKILL) }
        _ = try? await waitForExit(seconds: 5)
    }

    /// One request through a shared client.
    func request(_ method: HTTPMethod, _ path: String, body: String? = nil, headers: [(String, String)] = [],
                 timeout: TimeAmount = .seconds(30)) async throws -> (status: Int, body: String, headers: HTTPHeaders) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), String(buffer: bytes), response.headers)
    }

    func get(_ path: String) async throws -> (status: Int, body: String, headers: HTTPHeaders) {
        try await request(.GET, path)
    }
}
