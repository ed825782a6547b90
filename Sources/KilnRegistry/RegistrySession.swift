import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// One registry host: how to reach it (https, or plain http where allowed), how it wants to be authenticated,
/// and the tokens it has issued, one per scope. Every request to it goes through ``send(_:repository:what:)``,
/// which authenticates, retries what is worth retrying and follows redirects.
actor RegistrySession {
    /// `name[:port]` as in the image reference (`docker.io` becomes Docker Hub's API host).
    nonisolated let host: String
    nonisolated let apiHost: String
    let transport: RegistryTransport
    let credentials: CredentialStore
    let options: RegistryOptions
    let tls: TLSConfiguration

    private var base: String?
    private var challenge: AuthChallenge?
    private var tokens: [String: (token: String, expires: Date)] = [:]
    private var found: [String: RegistryCredentials?] = [:]

    init(host: String, transport: RegistryTransport, options: RegistryOptions) throws {
        self.host = host
        self.apiHost = CredentialStore.isDockerHub(host) ? "registry-1.docker.io" : host
        self.transport = transport
        self.options = options
        self.credentials = CredentialStore(authFile: options.authFile, environment: options.environment)
        self.tls = try transport.tlsConfiguration(for: host)
    }

    /// True for `localhost`, `127.0.0.0/8` and `[::1]`, with any port: plain HTTP is allowed there, as
    /// containerd and docker allow it.
    nonisolated var isLoopback: Bool {
        var name = apiHost
        if name.hasPrefix("[") { return name.hasPrefix("[::1]") }
        if let colon = name.lastIndex(of: ":") { name = String(name[..<colon]) }
        return name == "localhost" || name.hasPrefix("127.")
    }

    /// `https://host` or, where allowed and https does not answer, `http://host`; found once with `GET /v2/`,
    /// which also says how the registry authenticates.
    func baseURL() async throws -> String {
        if let base { return base }
        var schemes = ["https"]
        if isLoopback || !options.tlsVerify { schemes.append("http") }
        var lastError = ""
        var tlsFailure: String? = nil
        var httpsFailure: String? = nil
        for scheme in schemes {
            let url = "\(scheme)://\(apiHost)/v2/"
            let response: HTTPClientResponse
            if scheme != schemes.last {
                // Probing https where plain http may follow: a connection that fails is an answer, not a fault.
                do {
                    response = try await transport.execute(RegistryRequest(url: url), tls: tls, deadline: 10).0
                } catch {
                    lastError = RegistryTransport.describe(error)
                    httpsFailure = lastError
                    if RegistryTransport.isTLSFailure(error) { tlsFailure = lastError }
                    continue
                }
            } else {
                do {
                    response = try await attempt(RegistryRequest(url: url), what: "the API check (GET /v2/)") { r in
                        try await self.transport.execute(r, tls: self.tls, deadline: 60).0
                    }
                } catch let e as RegistryError {
                    // https failed in TLS and plain http does not answer either: the TLS failure says more.
                    if let tlsFailure { throw RegistryError.tlsFailed(host: host, detail: tlsFailure) }
                    throw e
                }
            }
            _ = try? await response.body.collect(upTo: 1 << 20)
            // Plain http to a server that speaks TLS (Go answers 400): the https failure was the real one, whether
            // the handshake failed or the server closed the connection after it (TLS 1.3 servers refuse a missing
            // client certificate only then).
            if scheme == "http", response.status.code == 400, let failure = tlsFailure ?? httpsFailure {
                throw RegistryError.tlsFailed(host: host, detail: failure + "; plain http gets HTTP 400, so the registry speaks only TLS")
            }
            switch response.status.code {
            case 200..<300:
                challenge = nil
            case 401:
                challenge = response.headers.first(name: "www-authenticate").flatMap(AuthChallenge.init(header:))
            case 404:
                throw RegistryError.protocolViolation(host: host, detail: "\(url) answers 404: not an OCI distribution registry (no /v2/ API)")
            default:
                throw RegistryError.unavailable(host: host, detail: "\(url) answers HTTP \(response.status.code)")
            }
            base = "\(scheme)://\(apiHost)"
            return "\(scheme)://\(apiHost)"
        }
        throw RegistryError.unavailable(host: host, detail: lastError)
    }

    /// Sends a request for `path` (under `/v2/`) of `repository`, authenticated for pulling it.
    /// Returns the response with its body unread; statuses other than 401 are the caller's to read.
    func send(_ path: String, repository: String, headers: [(String, String)] = [], method: HTTPMethod = .GET,
              what: String, deadline: TimeInterval = 120) async throws -> HTTPClientResponse {
        let base = try await baseURL()
        let scope = "repository:\(repository):pull"
        var renewed = false
        while true {
            var request = RegistryRequest(method: method, url: base + "/v2/" + path, headers: headers)
            if let auth = try await authorization(scope: scope, repository: repository) { request.headers.append(("Authorization", auth)) }
            let response = try await attempt(request, what: what) { r in
                try await self.transport.execute(r, tls: self.tls, deadline: deadline).0
            }
            guard response.status.code == 401 else { return response }
            _ = try? await response.body.collect(upTo: 1 << 20)
            let offered = response.headers.first(name: "www-authenticate").flatMap(AuthChallenge.init(header:))
            // A token that expired or lacks the scope: ask once more with what the registry says it wants.
            if !renewed, let offered {
                renewed = true
                challenge = offered
                tokens[offered.scope ?? scope] = nil
                tokens[scope] = nil
                continue
            }
            let who = try credentialsFor(repository)
            let detail = who.map { "the registry refused the \($0)" }
                ?? "the registry wants credentials and none were found (use --authfile, REGISTRY_AUTH_FILE, or `docker login`/`podman login`)"
            throw RegistryError.unauthorized(host: host, repository: repository, status: 401, detail: detail)
        }
    }

    private func credentialsFor(_ repository: String) throws -> RegistryCredentials? {
        if let known = found[repository] { return known }
        let c = try credentials.credentials(host: host, repository: repository)
        found[repository] = c
        return c
    }

    /// The Authorization header for `scope`, fetching a token when the registry wants Bearer.
    private func authorization(scope: String, repository: String) async throws -> String? {
        guard let challenge else { return nil }
        switch challenge.scheme {
        case "basic":
            return try credentialsFor(repository)?.basicHeader
        case "bearer":
            if let t = tokens[scope], t.expires > Date().addingTimeInterval(10) { return "Bearer " + t.token }
            let token = try await fetchToken(challenge, scope: scope, repository: repository)
            return "Bearer " + token
        default:
            throw RegistryError.protocolViolation(host: host, detail: "unsupported authentication scheme '\(challenge.scheme)'")
        }
    }

    struct TokenAnswer: Decodable {
        var token: String?
        var access_token: String?
        var expires_in: Int?
    }

    private func fetchToken(_ challenge: AuthChallenge, scope: String, repository: String) async throws -> String {
        guard let realm = challenge.realm, var components = URLComponents(string: realm),
              components.scheme == "https" || components.scheme == "http" else {
            throw RegistryError.protocolViolation(host: host, detail: "Bearer challenge without a usable realm")
        }
        if components.scheme == "http", !isLoopback, options.tlsVerify, !(components.host.map { $0 == "localhost" || $0.hasPrefix("127.") } ?? false) {
            throw RegistryError.protocolViolation(host: host, detail: "token realm \(realm) is plain http; credentials are not sent there (use --tls-verify=false to allow)")
        }
        let creds = try credentialsFor(repository)
        var request: RegistryRequest
        if let creds, creds.isIdentityToken {
            // An identity token is an OAuth2 refresh token, exchanged with a POST.
            var form = URLComponents()
            form.queryItems = [URLQueryItem(name: "grant_type", value: "refresh_token"), URLQueryItem(name: "refresh_token", value: creds.secret),
                               URLQueryItem(name: "service", value: challenge.service ?? ""), URLQueryItem(name: "scope", value: scope),
                               URLQueryItem(name: "client_id", value: "kiln")]
            request = RegistryRequest(method: .POST, url: realm, headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                      body: Array((form.percentEncodedQuery ?? "").utf8))
        } else {
            var items = components.queryItems ?? []
            if let service = challenge.service { items.append(URLQueryItem(name: "service", value: service)) }
            items.append(URLQueryItem(name: "scope", value: scope))
            components.queryItems = items
            request = RegistryRequest(url: components.url?.absoluteString ?? realm)
            if let creds { request.headers.append(("Authorization", creds.basicHeader)) }
        }
        let response = try await attempt(request, what: "a token from \(components.host ?? realm)") { r in
            try await self.transport.execute(r, tls: self.tls, deadline: 60).0
        }
        let body = try await Self.collect(response, limit: 1 << 20, host: host)
        switch response.status.code {
        case 200..<300: break
        case 401, 403:
            let detail = creds.map { "the token server refused the \($0)" }
                ?? "the token server wants credentials and none were found (use --authfile, REGISTRY_AUTH_FILE, or `docker login`/`podman login`)"
            throw RegistryError.unauthorized(host: host, repository: repository, status: Int(response.status.code), detail: detail)
        default:
            throw RegistryError.unavailable(host: host, detail: "the token server answered HTTP \(response.status.code)")
        }
        guard let answer = try? JSONDecoder().decode(TokenAnswer.self, from: Data(body)), let token = answer.token ?? answer.access_token, !token.isEmpty else {
            throw RegistryError.protocolViolation(host: host, detail: "the token server's answer holds no token")
        }
        let lifetime = max(60, answer.expires_in ?? 60)
        tokens[scope] = (token, Date().addingTimeInterval(TimeInterval(lifetime)))
        return token
    }

    /// Sends `request` with retries: 408, 429 and 5xx answers and connection failures are tried again after
    /// the configured waits (or the answer's `Retry-After`, up to a minute); a TLS failure or a name that does
    /// not resolve is not.
    func attempt(_ request: RegistryRequest, what: String,
                 _ send: @Sendable (RegistryRequest) async throws -> HTTPClientResponse) async throws -> HTTPClientResponse {
        var schedule = RetrySchedule(delays: options.retryDelays, host: host, what: what)
        while true {
            var retryAfter: Double? = nil
            let failure: String
            do {
                let response = try await send(request)
                let code = response.status.code
                guard code == 408 || code == 429 || (500...599).contains(code) else { return response }
                _ = try? await response.body.collect(upTo: 1 << 20)
                retryAfter = response.headers.first(name: "retry-after").flatMap { RetryAfter.seconds($0) }
                failure = "HTTP \(code)"
            } catch let e as RegistryError {
                throw e
            } catch is CancellationError {
                throw CancellationError()
            } catch where RegistryTransport.isTLSFailure(error) {
                // A certificate does not get better by asking again.
                throw RegistryError.tlsFailed(host: host, detail: RegistryTransport.describe(error))
            } catch where RegistryTransport.isPermanent(error) {
                // Nor does a name that does not exist: say so at once instead of after every wait.
                throw RegistryError.unavailable(host: host, detail: "\(what): \(RegistryTransport.describe(error)); check the registry's name")
            } catch {
                failure = RegistryTransport.describe(error)
            }
            try await schedule.failed(failure, retryAfter: retryAfter)
        }
    }

    /// Sends a request for a small document (a manifest, an image config, an error) and reads its body whole.
    /// A body cut short (a reset, a truncated answer) is asked for again, with the same waits as a failed
    /// request: such documents are not resumed, they are small.
    func document(_ path: String, repository: String, headers: [(String, String)] = [], what: String,
                  limit: Int) async throws -> (response: HTTPClientResponse, body: [UInt8]) {
        var schedule = RetrySchedule(delays: options.retryDelays, host: host, what: what)
        while true {
            let response = try await send(path, repository: repository, headers: headers, what: what)
            let failure: String
            do {
                return (response, try await Self.collect(response, limit: limit, host: host))
            } catch let e as RegistryError {
                throw e
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                failure = RegistryTransport.describe(error)
            }
            try await schedule.failed(failure)
        }
    }

    static func collect(_ response: HTTPClientResponse, limit: Int, host: String) async throws -> [UInt8] {
        do {
            var buffer = try await response.body.collect(upTo: limit)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            throw RegistryError.protocolViolation(host: host, detail: "an answer larger than \(limit) bytes where a small document was expected")
        }
    }
}
