import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore

/// A parsed JSON document with forgiving subscripts, for assertions.
enum JSONValue: Decodable, Equatable, Sendable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    static func parse(_ buffer: ByteBuffer) -> JSONValue {
        (try? JSONDecoder().decode(JSONValue.self, from: Data(buffer.readableBytesView))) ?? .null
    }

    subscript(key: String) -> JSONValue {
        if case .object(let object) = self { return object[key] ?? .null }
        return .null
    }

    subscript(index: Int) -> JSONValue {
        if case .array(let array) = self, array.indices.contains(index) { return array[index] }
        return .null
    }

    var string: String? { if case .string(let value) = self { return value }; return nil }
    var int: Int? { if case .number(let value) = self { return Int(value) }; return nil }
    var int64: Int64? { if case .number(let value) = self { return Int64(value) }; return nil }
    var double: Double? { if case .number(let value) = self { return value }; return nil }
    var bool: Bool? { if case .bool(let value) = self { return value }; return nil }
    var array: [JSONValue] { if case .array(let value) = self { return value }; return [] }
    var isNull: Bool { self == .null }
    var exists: Bool { self != .null }
}

/// One answer: status, headers, parsed body.
struct Answer: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let json: JSONValue
    let text: String

    var code: Int { status.code }
    var data: JSONValue { json["data"] }
    var message: String { json["message"].string ?? "" }
    var success: Bool { json["success"].bool ?? false }
}

/// How a test authenticates a management call.
enum Credential: Sendable {
    case none
    case cookie(String)
    case accessToken(String, userId: Int64)
    case bearer(String)
}

extension TestClientProtocol {
    /// Sends a request with a JSON body (a string, to allow malformed input) and a credential.
    func call(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, as credential: Credential = .none,
              headers extra: HTTPFields = [:]) async throws -> Answer {
        var headers = extra
        if body != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        switch credential {
        case .none: break
        case .cookie(let cookie): headers[.cookie] = cookie
        case .accessToken(let token, let userId):
            headers[.authorization] = "Bearer \(token)"
            headers[HTTPField.Name("New-Api-User")!] = String(userId)
        case .bearer(let token): headers[.authorization] = "Bearer \(token)"
        }
        return try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            Answer(status: response.status, headers: response.headers, json: JSONValue.parse(response.body),
                   text: String(buffer: response.body))
        }
    }

    /// Logs in and answers the session cookie (`name=value`).
    func login(_ username: String, _ password: String) async throws -> Credential {
        let answer = try await call(.post, "/api/user/login", #"{"username": "\#(username)", "password": "\#(password)"}"#)
        guard answer.code == 200, let setCookie = answer.headers[.setCookie] else {
            throw TestSetupError("login of \(username) failed: \(answer.code) \(answer.text)")
        }
        return .cookie(String(setCookie.split(separator: ";")[0]))
    }

    /// Logs in as root.
    func loginRoot() async throws -> Credential {
        try await login("root", TestEnvironment.rootPassword)
    }

    /// Registers and logs in a user; answers their cookie and id.
    func newUser(_ username: String, password: String = "password-123") async throws -> (Credential, Int64) {
        let answer = try await call(.post, "/api/user/register", #"{"username": "\#(username)", "password": "\#(password)"}"#)
        guard answer.code == 200, let id = answer.data["id"].int64 else {
            throw TestSetupError("register \(username) failed: \(answer.text)")
        }
        return (try await login(username, password), id)
    }
}
