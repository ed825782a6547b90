import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// An HTTP response, its body read whole (AWS answers are small; a snapshot block is 512 KiB).
public struct AWSResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of header `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.0.lowercased() == n }?.1
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// The HTTP connection pool every AWS call goes through (async-http-client), with kiln's timeouts.
public final class AWSTransport: Sendable {
    let client: HTTPClient
    /// The longest a single request may take, connection included.
    public let requestTimeout: TimeInterval

    /// A pool of up to `maxConnections` connections per host.
    public init(maxConnections: Int = 64, connectTimeout: TimeInterval = 10, readTimeout: TimeInterval = 60, requestTimeout: TimeInterval = 120) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .milliseconds(Int64(connectTimeout * 1000)), read: .milliseconds(Int64(readTimeout * 1000)))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, maxConnections))
        configuration.decompression = .disabled
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.requestTimeout = requestTimeout
    }

    /// Closes every connection. Call once, when done.
    public func shutdown() async {
        try? await client.shutdown()
    }

    /// Sends one request; a connection failure or timeout is a transient ``AWSError``.
    public func execute(operation: String, method: String, url: String, headers: [(String, String)], body: [UInt8]?,
                        timeout: TimeInterval? = nil, maxResponseBytes: Int = 4 << 20) async throws -> AWSResponse {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64((timeout ?? requestTimeout) * 1000)))
            var buffer = try await response.body.collect(upTo: maxResponseBytes)
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            return AWSResponse(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: bytes)
        } catch let error as AWSError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw AWSError(kind: .transient, operation: operation, message: Self.describe(error, url: url))
        }
    }

    static func describe(_ error: any Swift.Error, url: String) -> String {
        let host = URLComponents(string: url).map { "\($0.host ?? "")\($0.port.map { ":\($0)" } ?? "")" } ?? url
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded: return "no answer from \(host) in time"
            case .readTimeout: return "read from \(host) timed out"
            case .connectTimeout: return "connecting to \(host) timed out"
            case .remoteConnectionClosed: return "\(host) closed the connection"
            default: return "\(host): \(e)"
            }
        }
        return "\(host): \(error)"
    }
}
