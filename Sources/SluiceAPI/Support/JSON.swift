import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SluiceCore

/// The management API's answer: `{"success": bool, "message": string, "data": ...}`.
struct Envelope<T: Encodable>: Encodable {
    let success: Bool
    let message: String
    let data: T?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(success, forKey: .success)
        try container.encode(message, forKey: .message)
        if let data { try container.encode(data, forKey: .data) } else { try container.encodeNil(forKey: .data) }
    }

    enum CodingKeys: String, CodingKey { case success, message, data }
}

/// A value that encodes `nil` as JSON null instead of leaving the key out.
struct Nullable<Wrapped: Codable & Sendable>: Codable, Sendable {
    let value: Wrapped?
    init(_ value: Wrapped?) { self.value = value }
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        value = container.decodeNil() ? nil : try container.decode(Wrapped.self)
    }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}

/// A list given either as a JSON array of strings or as one comma/newline-separated string.
struct FlexibleList: Decodable, Sendable {
    let values: [String]
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { values = [] }
        else if let array = try? container.decode([String].self) { values = Token.parseModelList(array.joined(separator: ",")) }
        else { values = Token.parseModelList(try container.decode(String.self)) }
    }
}

/// Answers and request bodies of the management API.
enum API {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// Answers `data` in the success envelope.
    static func ok<T: Encodable>(_ data: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        respond(Envelope(success: true, message: "", data: data), status: status, headers: headers)
    }

    /// Answers success with `data: null`.
    static func ok(status: HTTPResponse.Status = .ok) -> Response {
        respond(Envelope<Int>(success: true, message: "", data: nil), status: status)
    }

    /// Answers a failure in the envelope.
    static func failure(_ error: APIError) -> Response {
        var headers = HTTPFields()
        if let retry = error.retryAfter { headers[.retryAfter] = String(retry) }
        return respond(Envelope<Int>(success: false, message: error.message, data: nil),
                       status: HTTPResponse.Status(code: error.status), headers: headers)
    }

    /// Encodes any value as a JSON answer.
    static func respond<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        let data = (try? encoder().encode(value)) ?? Data("{}".utf8)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Reads and decodes a JSON body; malformed JSON and wrong types become a 400 that names the field.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int = 1 << 20) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw APIError(status: 413, "The request body is larger than \(limit) bytes")
        }
        let data = Data(buffer.readableBytesView)
        if data.isEmpty { throw APIError.badRequest("The request body must be a JSON object") }
        do {
            return try decoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw APIError.badRequest(describe(error))
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.badRequest("The request body is not valid JSON")
        }
    }

    /// A sentence for a decoding failure, naming the field in the API's snake_case.
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? snakeCase($0.stringValue) }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let field = path(context.codingPath)
            return field.isEmpty ? "The request body must be a JSON object" : "\(field) has the wrong type"
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            return field.isEmpty ? "The request body is not valid JSON" : "\(field): \(context.debugDescription)"
        case .keyNotFound(let key, _):
            return "\(snakeCase(key.stringValue)) is required"
        @unknown default:
            return "The request body is not valid JSON"
        }
    }

    static func snakeCase(_ text: String) -> String {
        var out = ""
        for character in text {
            if character.isUppercase { out += "_" + character.lowercased() } else { out.append(character) }
        }
        return out
    }
}

extension Request {
    /// A query parameter as an integer; a present but non-numeric value is a 400.
    func intQuery(_ names: String...) throws -> Int? {
        for name in names {
            if let text = uri.queryParameters.get(name), !text.isEmpty {
                guard let value = Int(text) else { throw APIError.badRequest("\(name) must be an integer") }
                return value
            }
        }
        return nil
    }

    /// A query parameter as text.
    func query(_ name: String) -> String? {
        uri.queryParameters.get(name)
    }
}

extension HTTPField.Name {
    static let newApiUser = HTTPField.Name("New-Api-User")!
    static let xApiKey = HTTPField.Name("x-api-key")!
    static let xRequestId = HTTPField.Name("X-Request-Id")!
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let xSluiceGroup = HTTPField.Name("X-Sluice-Group")!
}
