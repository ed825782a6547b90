import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A request to a registry (or a token server, or where a registry redirects).
struct RegistryRequest: Sendable {
    var method: HTTPMethod = .GET
    var url: String
    var headers: [(String, String)] = []
    var body: [UInt8]? = nil
}

/// The HTTP layer of the registry client (async-http-client): TLS with the system's roots plus the registry's
/// CA folders, redirects followed by hand so that `Authorization` never reaches another host, and timeouts.
final class RegistryTransport: Sendable {
    let client: HTTPClient
    let options: RegistryOptions

    init(options: RegistryOptions) {
        self.options = options
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .milliseconds(Int64(options.connectTimeout * 1000)),
                                      read: .milliseconds(Int64(options.readTimeout * 1000)))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 16)
        // A connection that cannot be made fails the request at once: the session's own retries (with their
        // waits and a count the message gives) cover flaky networks, and probing https on a plain-http
        // loopback registry must not wait for a timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.decompression = .disabled
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func shutdown() { try? client.syncShutdown() }

    /// The TLS configuration for `host` (`name[:port]`): system roots, plus CAs and a client certificate from
    /// its certificate folders; no verification with `--tls-verify=false`.
    func tlsConfiguration(for host: String) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if !options.tlsVerify {
            tls.certificateVerification = .none
            return tls
        }
        let folders = options.certDirectory.map { [$0] } ?? ["/etc/containers/certs.d/\(host)", "/etc/docker/certs.d/\(host)"]
        for folder in folders {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
                if options.certDirectory != nil { throw RegistryError.tls("--cert-dir \(folder): not a readable directory") }
                continue
            }
            for name in names.sorted() where name.hasSuffix(".crt") {
                do {
                    let certificates = try NIOSSLCertificate.fromPEMFile(folder + "/" + name)
                    tls.additionalTrustRoots.append(.certificates(certificates))
                } catch {
                    throw RegistryError.tls("\(folder)/\(name): not a PEM certificate: \(error)")
                }
            }
            for name in names.sorted() where name.hasSuffix(".cert") {
                let key = folder + "/" + name.dropLast(".cert".count) + ".key"
                guard FileManager.default.fileExists(atPath: key) else {
                    throw RegistryError.tls("\(folder)/\(name): client certificate without its key \(key)")
                }
                do {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMFile(folder + "/" + name).map { .certificate($0) }
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                } catch {
                    throw RegistryError.tls("\(folder)/\(name): cannot load the client certificate: \(error)")
                }
            }
        }
        return tls
    }

    /// Sends a request, following up to 10 redirects. `Authorization` goes only to the origin it was meant for:
    /// a redirect to another scheme, host or port (S3, a CDN's presigned URL) is followed without it.
    func execute(_ request: RegistryRequest, tls: TLSConfiguration?, deadline: TimeInterval) async throws -> (HTTPClientResponse, finalURL: String) {
        var current = request
        let origin = Self.origin(request.url)
        for _ in 0...10 {
            var r = HTTPClientRequest(url: current.url)
            r.method = current.method
            for (name, value) in current.headers { r.headers.add(name: name, value: value) }
            if let body = current.body { r.body = .bytes(ByteBuffer(bytes: body)) }
            if current.url.hasPrefix("https:") { r.tlsConfiguration = tls }
            let response = try await client.execute(r, timeout: .milliseconds(Int64(deadline * 1000)))
            let code = response.status.code
            guard [301, 302, 303, 307, 308].contains(code), let location = response.headers.first(name: "location") else {
                return (response, current.url)
            }
            // The redirect's own body is not wanted.
            _ = try? await response.body.collect(upTo: 1 << 20)
            guard let next = URL(string: location, relativeTo: URL(string: current.url))?.absoluteURL.absoluteString,
                  next.hasPrefix("http://") || next.hasPrefix("https://") else {
                throw RegistryError.protocolViolation(host: Self.origin(current.url), detail: "redirect to an unusable location")
            }
            if Self.origin(next) != origin {
                current.headers.removeAll { $0.0.lowercased() == "authorization" }
            }
            if code == 303 { current.method = .GET; current.body = nil }
            current.url = next
        }
        throw RegistryError.protocolViolation(host: origin, detail: "more than 10 redirects")
    }

    /// `scheme://host:port` of a URL, the unit that credentials are scoped to.
    static func origin(_ url: String) -> String {
        guard let c = URLComponents(string: url) else { return url }
        let scheme = c.scheme ?? ""
        let port = c.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(c.host ?? ""):\(port)"
    }

    /// True for a failure of the TLS layer (handshake, certificate), as opposed to the network's.
    static func isTLSFailure(_ error: any Swift.Error) -> Bool {
        error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError
    }

    /// Says what went wrong below HTTP, for messages: in words, without the layers' type names and codes.
    static func describe(_ error: any Swift.Error) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded: return "no answer in time"
            case .readTimeout: return "the connection went silent (read timeout)"
            case .connectTimeout: return "connecting timed out"
            case .remoteConnectionClosed: return "the connection was closed"
            default: return "\(e)"
            }
        }
        let error = underlying(error)
        if let e = error as? NIOConnectionError { return "cannot connect to \(e.host):\(e.port)" }
        if let e = error as? SocketAddressError.UnknownHost {
            return "the name \(e.host) cannot be resolved (\(e.errorDescription.lowercased()))"
        }
        if let e = error as? IOError { return String(cString: strerror(e.errnoCode)).lowercased() }
        if let e = error as? NIOSSLExtraError, e == .failedToValidateHostname {
            return "the registry's certificate is not issued for this host name or address"
        }
        if case .handshakeFailed(let inner)? = error as? NIOSSLError { return "the TLS handshake failed: \(inner)" }
        if let e = error as? NIOSSLError { return "TLS: \(e)" }
        if let e = error as? BoringSSLError { return "TLS: \(e)" }
        return "\(error)"
    }

    /// True when asking again cannot help: the registry's name does not exist (as opposed to a resolver that did
    /// not answer, which may).
    static func isPermanent(_ error: any Swift.Error) -> Bool {
        guard let e = underlying(error) as? SocketAddressError.UnknownHost else { return false }
        return Int32(e.errorCode) == EAI_NONAME
    }

    /// What a failed connection attempt failed on: its name lookup's error, else its first connection's.
    private static func underlying(_ error: any Swift.Error) -> any Swift.Error {
        guard let e = error as? NIOConnectionError else { return error }
        return e.dnsAError ?? e.dnsAAAAError ?? e.connectionErrors.first?.error ?? error
    }
}
