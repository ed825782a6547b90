import Foundation

/// `scripts/lib/registry-standin.py serve`: a real `docker-registry` on 127.0.0.1, with htpasswd or token auth,
/// TLS from a fresh test CA, a fault-injecting proxy and a second host blobs redirect to. Stopped by ``stop()``.
public final class RegistryStandin: @unchecked Sendable {
    public static let script = KilnPackage.root + "/scripts/lib/registry-standin.py"

    /// docker-registry, skopeo and python3 with `cryptography` (probed once).
    public static let requirement: Requirement = {
        let locator = ToolLocator.standard
        let python = (try? ProcessRunner(timeout: ProcessTimeout(seconds: 60)).run("python3", ["-c", "import cryptography"]))?.succeeded ?? false
        return Requirement("docker-registry, skopeo and python3-cryptography (Debian packages docker-registry skopeo python3-cryptography)",
                           isMet: locator.find("docker-registry") != nil && locator.find("skopeo") != nil && python)
    }()

    public enum Auth: String, Sendable { case none, basic, token }

    /// What a client uses: `127.0.0.1:PORT` (the proxy when there is one).
    public let registry: String
    /// The registry itself.
    public let upstream: String
    public let caFile: String
    /// A directory holding the test CA, for `--cert-dir`.
    public let certDir: String
    /// With `clientCertificate`: a directory holding the CA, `client.cert` and `client.key`, for `--cert-dir`.
    public let clientDir: String?
    public let user: String
    public let password: String
    public let tokenRealm: String?
    public let cdn: String?
    /// The registry's storage directory.
    public let storage: String?
    public let logPath: String
    let process: Process
    let directory: TemporaryDirectory

    /// `rate`: bytes per second for every body the proxy sends (a slow link; implies the proxy); `retryAfter`: the
    /// seconds an injected 429 asks the client to wait.
    public init(auth: Auth = .none, tls: Bool = false, proxy: Bool = false, faults: [String] = [], cdn: Bool = false,
                rate: Int = 0, retryAfter: Int = 1, clientCertificate: Bool = false) throws {
        directory = try TemporaryDirectory(prefix: "kiln-registry-standin")
        let ready = directory.path("ready.json")
        logPath = directory.path("requests.jsonl")
        var arguments = ["python3", Self.script, "serve", "--ready", ready, "--log", logPath, "--no-stdin", "--auth", auth.rawValue]
        if tls { arguments.append("--tls") }
        if clientCertificate { arguments.append("--client-cert") }
        if proxy || !faults.isEmpty || cdn || rate > 0 { arguments.append("--proxy") }
        if rate > 0 { arguments += ["--rate", String(rate)] }
        arguments += ["--retry-after", String(retryAfter)]
        if cdn { arguments.append("--cdn") }
        for f in faults { arguments += ["--fault", f] }
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        FileManager.default.createFile(atPath: directory.path("stderr"), contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: directory.path("stderr"))
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: ready) {
            guard process.isRunning, Date() < deadline else {
                let err = (try? String(contentsOfFile: directory.path("stderr"), encoding: .utf8)) ?? ""
                if process.isRunning { process.terminate() }
                throw StandinFailure(description: "registry-standin did not start: \(err)")
            }
            usleep(50_000)
        }
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ready))) as? [String: Any] ?? [:]
        registry = info["registry"] as? String ?? ""
        upstream = info["upstream"] as? String ?? ""
        caFile = info["caFile"] as? String ?? ""
        certDir = info["certDir"] as? String ?? ""
        clientDir = info["clientDir"] as? String
        user = info["user"] as? String ?? ""
        password = info["password"] as? String ?? ""
        tokenRealm = info["tokenRealm"] as? String
        self.cdn = info["cdn"] as? String
        storage = info["storage"] as? String
    }

    deinit { stop() }

    /// Pushes a skopeo source (`oci:DIR:TAG`) to `REPO:TAG` on the registry itself (never through the proxy).
    public func push(_ source: String, as repoTag: String) throws {
        let r = try ProcessRunner(directory: KilnPackage.root, timeout: ProcessTimeout(seconds: 180))
            .run("python3", [Self.script, "push", "--ready", directory.path("ready.json"), source, repoTag])
        guard r.succeeded else { throw StandinFailure(description: "push \(source) as \(repoTag) failed: \(r)") }
    }

    public func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        directory.remove()
    }

    /// One request the proxy, the cdn or the token server saw.
    public struct Entry: Sendable, Decodable {
        public var server: String
        public var method: String
        public var path: String
        public var status: Int?
        public var authorization: String
        public var range: String?
        public var fault: String?
        public var scope: [String]?
        /// When the server saw the request (seconds since 1970).
        public var time: Double?
    }

    public func requests() throws -> [Entry] {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Entry.self, from: Data($0.utf8)) }
    }
}
