import Foundation
import KilnCore

/// What kiln presents to a registry: a user and password, or an identity (refresh) token. Never printed.
public struct RegistryCredentials: Sendable, Hashable, CustomStringConvertible {
    public var username: String
    public var secret: String
    /// True when `secret` is an OAuth2 refresh token (`identitytoken`, or a helper's `<token>` user).
    public var isIdentityToken: Bool
    /// Where the credentials were found, for messages: an auth file or a helper's name.
    public var origin: String

    public init(username: String, secret: String, isIdentityToken: Bool = false, origin: String) {
        self.username = username
        self.secret = secret
        self.isIdentityToken = isIdentityToken
        self.origin = origin
    }

    /// The Basic authorization header value.
    var basicHeader: String { "Basic " + Data("\(username):\(secret)".utf8).base64EncodedString() }

    public var description: String { "credentials for \(username.isEmpty ? "a token" : "'\(username)'") from \(origin)" }
}

/// Finds credentials for a registry the way podman, skopeo and docker do.
///
/// Files, in order: `--authfile` (or `REGISTRY_AUTH_FILE`) alone when given; else
/// `$XDG_RUNTIME_DIR/containers/auth.json`, `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/...`),
/// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. In each file: `credHelpers[host]`, then `auths`
/// (the most specific `host/namespace` key first, then the host, then keys written as URLs), then `credsStore`.
/// The first file that knows the registry wins; none means anonymous.
public struct CredentialStore: Sendable {
    public var files: [String]
    /// Runs `docker-credential-NAME`; found on `PATH`.
    var environment: [String: String]

    public init(authFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
        if let explicit = authFile ?? environment["REGISTRY_AUTH_FILE"], !explicit.isEmpty {
            files = [explicit]
            return
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        var list: [String] = []
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { list.append(runtime + "/containers/auth.json") }
        list.append((environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.config") + "/containers/auth.json")
        list.append((environment["DOCKER_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.docker") + "/config.json")
        files = list
    }

    /// The file format shared by containers' auth.json and docker's config.json (only what matters here).
    struct AuthFile: Decodable {
        struct Entry: Decodable {
            var auth: String?
            var username: String?
            var password: String?
            var identitytoken: String?
        }
        var auths: [String: Entry]?
        var credHelpers: [String: String]?
        var credsStore: String?
    }

    /// Credentials for `host` (and repository `repository`), or nil for anonymous access.
    public func credentials(host: String, repository: String) throws -> RegistryCredentials? {
        for file in files {
            guard FileManager.default.fileExists(atPath: file) else { continue }
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
                throw RegistryError.credentials("\(file): cannot read the auth file: \(error.localizedDescription)", exit: .environment)
            }
            let parsed: AuthFile
            do { parsed = try JSONDecoder().decode(AuthFile.self, from: data) } catch {
                throw RegistryError.credentials("\(file): not a valid auth file (JSON with auths, credHelpers, credsStore)", exit: .input)
            }
            if let helper = parsed.credHelpers?[host] ?? (Self.isDockerHub(host) ? parsed.credHelpers?["docker.io"] ?? parsed.credHelpers?["index.docker.io"] : nil) {
                return try CredentialHelper(name: helper, environment: environment).get(serverURL: Self.serverURL(host))
            }
            if let auths = parsed.auths, let (key, entry) = Self.match(auths, host: host, repository: repository) {
                return try Self.decode(entry, key: key, file: file)
            }
            if let store = parsed.credsStore, !store.isEmpty {
                if let found = try CredentialHelper(name: store, environment: environment).get(serverURL: Self.serverURL(host)) {
                    return found
                }
            }
        }
        return nil
    }

    static func isDockerHub(_ host: String) -> Bool {
        ["docker.io", "index.docker.io", "registry-1.docker.io"].contains(host)
    }

    /// What a helper and a docker config call a registry: Docker Hub's legacy URL, else the host.
    static func serverURL(_ host: String) -> String { isDockerHub(host) ? "https://index.docker.io/v1/" : host }

    static func match(_ auths: [String: AuthFile.Entry], host: String, repository: String) -> (String, AuthFile.Entry)? {
        // Most specific first: host/a/b, host/a, host.
        var candidates: [String] = []
        var parts = repository.split(separator: "/").map(String.init)
        while !parts.isEmpty {
            candidates.append(host + "/" + parts.joined(separator: "/"))
            parts.removeLast()
        }
        candidates.append(host)
        if isDockerHub(host) { candidates += ["docker.io", "index.docker.io", "https://index.docker.io/v1/", "registry-1.docker.io"] }
        for c in candidates { if let e = auths[c] { return (c, e) } }
        // Keys written as URLs (`https://host/v1/`, `http://host`): compare their host part.
        for key in auths.keys.sorted() {
            var k = Substring(key)
            if let r = k.range(of: "://") { k = k[r.upperBound...] }
            if let slash = k.firstIndex(of: "/") { k = k[..<slash] }
            if k == host || (isDockerHub(host) && isDockerHub(String(k))), let e = auths[key] { return (key, e) }
        }
        return nil
    }

    static func decode(_ entry: AuthFile.Entry, key: String, file: String) throws -> RegistryCredentials? {
        if let token = entry.identitytoken, !token.isEmpty {
            return RegistryCredentials(username: "", secret: token, isIdentityToken: true, origin: file)
        }
        if let auth = entry.auth, !auth.isEmpty {
            guard let raw = Data(base64Encoded: auth), let text = String(data: raw, encoding: .utf8), let colon = text.firstIndex(of: ":") else {
                throw RegistryError.credentials("\(file): auths[\"\(key)\"].auth is not base64 of user:password", exit: .input)
            }
            return RegistryCredentials(username: String(text[..<colon]), secret: String(text[text.index(after: colon)...]), origin: file)
        }
        if let user = entry.username, let password = entry.password {
            return RegistryCredentials(username: user, secret: password, origin: file)
        }
        return nil
    }
}

/// The `docker-credential-*` protocol: `docker-credential-NAME get`, the server URL on stdin, JSON
/// `{"ServerURL","Username","Secret"}` on stdout. How ECR's, GCR's and the desktop keychains' helpers work.
struct CredentialHelper {
    var name: String
    var environment: [String: String]

    struct Answer: Decodable {
        var Username: String?
        var Secret: String?
    }

    func get(serverURL: String) throws -> RegistryCredentials? {
        let program = "docker-credential-" + name
        guard let path = Self.find(program, path: environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin") else {
            throw RegistryError.credentials("credential helper \(program) is not on PATH (named by credHelpers or credsStore)", exit: .environment)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["get"]
        process.environment = environment
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch {
            throw RegistryError.credentials("credential helper \(program) cannot be started: \(error.localizedDescription)", exit: .environment)
        }
        input.fileHandleForWriting.write(Data((serverURL + "\n").utf8))
        try? input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let said = String(decoding: out + err, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            // The protocol's "not found" answer means anonymous access, not a failure.
            if said.lowercased().contains("credentials not found") { return nil }
            let first = said.split(separator: "\n").first.map(String.init) ?? ""
            throw RegistryError.credentials("credential helper \(program) failed for \(serverURL) (exit \(process.terminationStatus)): \(first.prefix(200))", exit: .environment)
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: out), let secret = answer.Secret else {
            throw RegistryError.credentials("credential helper \(program) answered something that is not {\"Username\",\"Secret\"} JSON for \(serverURL)", exit: .environment)
        }
        let user = answer.Username ?? ""
        if user == "<token>" {
            return RegistryCredentials(username: "", secret: secret, isIdentityToken: true, origin: program)
        }
        return RegistryCredentials(username: user, secret: secret, origin: program)
    }

    static func find(_ program: String, path: String) -> String? {
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}
