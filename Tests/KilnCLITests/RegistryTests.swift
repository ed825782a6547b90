import Foundation
import KilnTestSupport
import Testing

/// `docker://` sources against a real `docker-registry` on 127.0.0.1: plain, htpasswd over TLS, token auth,
/// behind a fault-injecting proxy and a second host that blobs redirect to.
@Suite("kiln and a real registry", .requires(.kilnBinary, RegistryStandin.requirement), .serialized)
struct RegistryTests {
    let dir: TemporaryDirectory

    init() throws { dir = try TemporaryDirectory(prefix: "kiln-registry") }

    /// An environment that finds no credentials of this machine: only what the test writes.
    func isolated(_ extra: [String: String] = [:]) -> [String: String] {
        ["HOME": dir.path("home"), "XDG_RUNTIME_DIR": "", "XDG_CONFIG_HOME": dir.path("xdg"), "DOCKER_CONFIG": dir.path("docker"),
         "REGISTRY_AUTH_FILE": "", "SOURCE_DATE_EPOCH": "0", "CI": "true"].merging(extra) { $1 }
    }

    func authFile(user: String, password: String, host: String) throws -> String {
        let path = dir.path("auth-\(UUID().uuidString).json")
        let auth = Data("\(user):\(password)".utf8).base64EncodedString()
        try Data(#"{"auths": {"\#(host)": {"auth": "\#(auth)"}}}"#.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func bake(_ source: String, _ out: String, _ extra: [String] = [], env: [String: String] = [:]) throws -> ProcessResult {
        try run(kilnBinary, ["bake", "--source", source, "--name", "registry.example.com/app:v1", "--platform", "linux/amd64",
                             "-o", out, "-q"] + extra, environment: isolated(env))
    }

    /// The bake of the same image from the bundled layout, to compare with.
    func layoutBake() throws -> String {
        let out = dir.path("from-layout")
        let r = try bake("oci:\(fixtures)/example-oci:app:v1", out)
        #expect(r.succeeded, "\(r)")
        return out
    }

    func same(_ a: String, _ b: String) -> Bool {
        FileManager.default.contentsEqual(atPath: a + "/data.img", andPath: b + "/data.img")
            && FileManager.default.contentsEqual(atPath: a + "/manifest.json", andPath: b + "/manifest.json")
    }

    @Test("a docker:// bake is byte-identical to the layout bake; verify and inspect read the registry too")
    func plainRegistry() throws {
        defer { dir.remove() }
        let registry = try RegistryStandin()
        defer { registry.stop() }
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "team/app:v1")
        let out = dir.path("from-registry")
        let r = try bake("docker://\(registry.registry)/team/app:v1", out)
        #expect(r.succeeded, "\(r)")
        #expect(same(out, try layoutBake()))
        let v = try run(kilnBinary, ["verify", "docker://\(registry.registry)/team/app:v1", "--all-platforms", "--json"], environment: isolated())
        #expect(v.succeeded, "\(v)")
        let i = try run(kilnBinary, ["inspect", "docker://\(registry.registry)/team/app:v1", "--platform", "linux/amd64"], environment: isolated())
        #expect(i.succeeded, "\(i)")
        #expect(i.stdout.contains("sha256:16c7b5cf0b74"), "\(i)")
    }

    @Test("htpasswd over TLS: CA from --cert-dir, credentials from --authfile; no credentials, wrong ones or an untrusted CA say so")
    func basicAuthOverTLS() throws {
        defer { dir.remove() }
        let registry = try RegistryStandin(auth: .basic, tls: true)
        defer { registry.stop() }
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "app:v1")
        let source = "docker://\(registry.registry)/app:v1"
        let good = try authFile(user: registry.user, password: registry.password, host: registry.registry)

        let ok = try bake(source, dir.path("ok"), ["--authfile", good, "--cert-dir", registry.certDir])
        #expect(ok.succeeded, "\(ok)")
        #expect(same(dir.path("ok"), try layoutBake()))

        // The same credentials found through REGISTRY_AUTH_FILE; TLS unchecked with --tls-verify=false.
        let viaEnv = try bake(source, dir.path("env"), ["--tls-verify=false"], env: ["REGISTRY_AUTH_FILE": good])
        #expect(viaEnv.succeeded, "\(viaEnv)")

        let anonymous = try bake(source, dir.path("anon"), ["--cert-dir", registry.certDir])
        #expect(anonymous.status == 2, "\(anonymous)")
        #expect(anonymous.stderr.contains("\(registry.registry)/app") && anonymous.stderr.contains("none were found"), "\(anonymous)")

        let wrong = try bake(source, dir.path("wrong"), ["--authfile", try authFile(user: "kiln", password: "not it", host: registry.registry),
                                                         "--cert-dir", registry.certDir])
        #expect(wrong.status == 2, "\(wrong)")
        #expect(wrong.stderr.contains("refused"), "\(wrong)")
        #expect(!wrong.output.contains("not it") && !ok.output.contains(registry.password))

        let untrusted = try bake(source, dir.path("untrusted"), ["--authfile", good])
        #expect(untrusted.status == 3, "\(untrusted)")
        #expect(untrusted.stderr.contains("--cert-dir") && untrusted.stderr.contains("TLS handshake failed"), "\(untrusted)")
        for out in ["anon", "wrong", "untrusted"] {
            #expect(!FileManager.default.fileExists(atPath: dir.path(out) + "/data.img"))
        }
    }

    @Test("token auth: one token per scope, reused; anonymous pulls of a public repository; a credential helper as ECR's works")
    func tokenAuthAndHelper() throws {
        defer { dir.remove() }
        let registry = try RegistryStandin(auth: .token, tls: true, proxy: true)
        defer { registry.stop() }
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "team/app:v1")
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "public/app:v1")
        let expected = try layoutBake()

        // A docker config naming a helper for the registry, and the helper: a script on PATH.
        let bin = dir.path("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let helper = bin + "/docker-credential-kilntest"
        try Data("""
            #!/bin/sh
            read -r server
            echo "$server" >> "\(dir.path("helper.log"))"
            [ "$server" = "\(registry.registry)" ] || { echo "credentials not found in native keychain"; exit 1; }
            printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$server" '\(registry.user)' '\(registry.password)'
            """.utf8).write(to: URL(fileURLWithPath: helper))
        chmod(helper, 0o755)
        try FileManager.default.createDirectory(atPath: dir.path("docker"), withIntermediateDirectories: true)
        try Data(#"{"credHelpers": {"\#(registry.registry)": "kilntest"}}"#.utf8).write(to: URL(fileURLWithPath: dir.path("docker/config.json")))
        let path = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")

        let r = try bake("docker://\(registry.registry)/team/app:v1", dir.path("team"), ["--cert-dir", registry.certDir], env: ["PATH": path])
        #expect(r.succeeded, "\(r)")
        #expect(same(dir.path("team"), expected))
        let tokens = try registry.requests().filter { $0.server == "token" }
        #expect(tokens.count == 1, "\(tokens.map { "\($0.path) \($0.status)" })")
        #expect(tokens.first?.authorization == "basic")
        let asked = try String(contentsOfFile: dir.path("helper.log"), encoding: .utf8)
        #expect(asked.contains(registry.registry))
        // Every registry request after the first carried the token.
        let proxied = try registry.requests().filter { $0.server == "proxy" && $0.path.contains("/v2/team/") }
        #expect(!proxied.isEmpty && proxied.allSatisfy { $0.authorization == "bearer" }, "\(proxied.map { "\($0.path) \($0.authorization)" })")

        // No credentials at all: the public repository still pulls, the private one is refused with exit 2.
        try FileManager.default.removeItem(atPath: dir.path("docker/config.json"))
        let pub = try bake("docker://\(registry.registry)/public/app:v1", dir.path("public"), ["--cert-dir", registry.certDir])
        #expect(pub.succeeded, "\(pub)")
        let denied = try bake("docker://\(registry.registry)/team/app:v1", dir.path("denied"), ["--cert-dir", registry.certDir])
        #expect(denied.status == 2, "\(denied)")
    }

    @Test("a token the registry finds insufficient (insufficient_scope) is fetched again once, then refused")
    func insufficientScopeRenewsTheToken() throws {
        defer { dir.remove() }
        let registry = try RegistryStandin(auth: .token, faults: ["no-access:token:2"])
        defer { registry.stop() }
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "team/app:v1")
        let auth = try authFile(user: registry.user, password: registry.password, host: registry.registry)
        let r = try bake("docker://\(registry.registry)/team/app:v1", dir.path("renewed"), ["--authfile", auth])
        #expect(r.succeeded, "\(r)")
        #expect(same(dir.path("renewed"), try layoutBake()))
        let log = try registry.requests()
        let tokens = log.filter { $0.server == "token" }
        #expect(tokens.count == 2 && tokens.first?.fault == "no-access", "\(tokens.map { "\($0.path) \($0.fault ?? "-")" })")

        // A token server that never grants the scope: one renewal, then exit 2 naming the repository.
        let stingy = try RegistryStandin(auth: .token, faults: ["no-access:token:1"])
        defer { stingy.stop() }
        try stingy.push("oci:\(fixtures)/example-oci:app:v1", as: "team/app:v1")
        let stingyAuth = try authFile(user: stingy.user, password: stingy.password, host: stingy.registry)
        let refused = try bake("docker://\(stingy.registry)/team/app:v1", dir.path("refused"), ["--authfile", stingyAuth])
        #expect(refused.status == 2, "\(refused)")
        #expect(refused.stderr.contains("team/app") && refused.stderr.contains("401"), "\(refused)")
        #expect(try stingy.requests().filter { $0.server == "token" }.count == 2)
    }

    @Test("faults: 429 and 503 retried, reset and truncated bodies resumed with Range; an ignored Range is refused")
    func faultsAreRetriedAndResumed() throws {
        defer { dir.remove() }
        let registry = try RegistryStandin(proxy: true, faults: ["429:manifest:2", "503:blob:3", "truncate:blob:2", "reset:ping:2"])
        defer { registry.stop() }
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "app:v1")
        let r = try bake("docker://\(registry.registry)/app:v1", dir.path("faulty"))
        #expect(r.succeeded, "\(r)")
        #expect(same(dir.path("faulty"), try layoutBake()))
        let log = try registry.requests()
        #expect(log.contains { $0.fault == "429" } && log.contains { $0.fault == "truncate" } && log.contains { $0.fault == "503" })
        // Each truncated blob was resumed where it broke, and the resumption was a 206.
        let resumed = log.filter { $0.range != nil && $0.status == 206 }
        #expect(!resumed.isEmpty, "\(log.map { "\($0.method) \($0.path) \($0.status) \($0.fault ?? "-") \($0.range ?? "-")" })")

        let ignoring = try RegistryStandin(proxy: true, faults: ["truncate:blob:2", "ignore-range:blob:1"])
        defer { ignoring.stop() }
        try ignoring.push("oci:\(fixtures)/example-oci:app:v1", as: "app:v1")
        let refused = try bake("docker://\(ignoring.registry)/app:v1", dir.path("ignored"))
        #expect(refused.status == 3, "\(refused)")
        #expect(refused.stderr.contains("Range"), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: dir.path("ignored") + "/data.img"))
    }

    @Test("a registry that requires a client certificate: the pair from --cert-dir is presented; without it, exit 3")
    func clientCertificateFromCertDir() throws {
        defer { dir.remove() }
        let registry = try RegistryStandin(tls: true, clientCertificate: true)
        defer { registry.stop() }
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "app:v1")
        let source = "docker://\(registry.registry)/app:v1"
        let clientDir = try #require(registry.clientDir)
        #expect(FileManager.default.fileExists(atPath: clientDir + "/client.cert") && FileManager.default.fileExists(atPath: clientDir + "/client.key"))

        let ok = try bake(source, dir.path("mtls"), ["--cert-dir", clientDir])
        #expect(ok.succeeded, "\(ok)")
        #expect(same(dir.path("mtls"), try layoutBake()))

        // The CA alone: the server is trusted, but it refuses a client without a certificate.
        let refused = try bake(source, dir.path("no-cert"), ["--cert-dir", registry.certDir])
        #expect(refused.status == 3, "\(refused)")
        #expect(refused.stderr.contains(registry.registry) && refused.stderr.contains("TLS failed") && refused.stderr.contains(".cert"), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: dir.path("no-cert") + "/data.img"))
    }

    @Test("a 429's Retry-After of 2 s is waited out before the request is sent again")
    func retryAfterIsHonoured() throws {
        defer { dir.remove() }
        let registry = try RegistryStandin(proxy: true, faults: ["429:blob:1000"], retryAfter: 2)
        defer { registry.stop() }
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "app:v1")
        let r = try bake("docker://\(registry.registry)/app:v1", dir.path("later"))
        #expect(r.succeeded, "\(r)")
        #expect(same(dir.path("later"), try layoutBake()))
        let log = try registry.requests()
        let refused = try #require(log.first { $0.fault == "429" }, "no 429 was injected")
        let again = try #require(log.first { $0.path == refused.path && $0.fault == nil && $0.method == refused.method },
                                 "\(refused.path) was not asked for again")
        let waited = (again.time ?? 0) - (refused.time ?? 0)
        // The default first wait is 1 s: only the header makes it 2.
        #expect(waited >= 1.9 && waited < 5, "asked again after \(waited) s")
    }

    @Test("blobs redirected to another host are fetched without the Authorization header")
    func redirectsDropAuthorization() throws {
        defer { dir.remove() }
        let registry = try RegistryStandin(auth: .basic, tls: true, proxy: true, cdn: true)
        defer { registry.stop() }
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "app:v1")
        let auth = try authFile(user: registry.user, password: registry.password, host: registry.registry)
        let r = try bake("docker://\(registry.registry)/app:v1", dir.path("cdn"), ["--authfile", auth, "--cert-dir", registry.certDir])
        #expect(r.succeeded, "\(r)")
        #expect(same(dir.path("cdn"), try layoutBake()))
        let log = try registry.requests()
        let cdn = log.filter { $0.server == "cdn" }
        #expect(cdn.count >= 3, "\(log.map { "\($0.server) \($0.path) \($0.status)" })")
        #expect(cdn.allSatisfy { $0.authorization == "none" })
        #expect(log.filter { $0.server == "proxy" && $0.path.contains("/blobs/") }.allSatisfy { $0.authorization == "basic" })
    }

    @Test("--cache: the second bake transfers no blob and is identical; the cache is an OCI layout kiln reads")
    func cacheTransfersNothingTwice() throws {
        defer { dir.remove() }
        let registry = try RegistryStandin(proxy: true)
        defer { registry.stop() }
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "app:v1")
        let cache = dir.path("cache")
        let first = try bake("docker://\(registry.registry)/app:v1", dir.path("first"), ["--cache", cache])
        #expect(first.succeeded, "\(first)")
        let before = try registry.requests().count
        let second = try bake("docker://\(registry.registry)/app:v1", dir.path("second"), ["--cache", cache])
        #expect(second.succeeded, "\(second)")
        let after = Array(try registry.requests().dropFirst(before))
        #expect(!after.contains { $0.path.contains("/blobs/") }, "\(after.map { "\($0.method) \($0.path)" })")
        #expect(!after.contains { $0.method == "GET" && $0.path.contains("/manifests/") }, "\(after.map { "\($0.method) \($0.path)" })")
        #expect(same(dir.path("first"), dir.path("second")))
        #expect(same(dir.path("first"), try layoutBake()))
        let fromCache = try run(kilnBinary, ["bake", "--source", "oci:\(cache):\(registry.registry)/app:v1", "--name", "registry.example.com/app:v1",
                                              "--platform", "linux/amd64", "-o", dir.path("from-cache"), "-q"], environment: isolated())
        #expect(fromCache.succeeded, "\(fromCache)")
        #expect(same(dir.path("first"), dir.path("from-cache")))
        // Nothing half-fetched is left in the cache.
        let names = try FileManager.default.contentsOfDirectory(atPath: cache + "/blobs/sha256")
        #expect(!names.contains { $0.hasPrefix(".") })
    }

    @Test("--offline bakes from the cache alone; a registry that is down falls back to the tag's cached digest and says so")
    func offlineAndUnreachable() throws {
        defer { dir.remove() }
        let registry = try RegistryStandin(proxy: true)
        defer { registry.stop() }
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "app:v1")
        let cache = dir.path("cache")
        let image = "docker://\(registry.registry)/app:v1"
        try #require(try bake(image, dir.path("first"), ["--cache", cache]).succeeded)

        // --offline asks the registry nothing at all, and bakes the same bytes.
        let before = try registry.requests().count
        let offline = try bake(image, dir.path("offline"), ["--cache", cache, "--offline"])
        #expect(offline.succeeded, "\(offline)")
        #expect(try registry.requests().count == before, "--offline sent requests")
        #expect(same(dir.path("first"), dir.path("offline")))
        // verify and inspect take the same option.
        let verify = try run(kilnBinary, ["verify", image, "--platform", "linux/amd64", "--cache", cache, "--offline"], environment: isolated())
        #expect(verify.succeeded, "\(verify)")
        let inspect = try run(kilnBinary, ["inspect", image, "--platform", "linux/amd64", "--cache", cache, "--offline"], environment: isolated())
        #expect(inspect.succeeded && inspect.stdout.contains("sha256:16c7b5cf0b74"), "\(inspect)")
        #expect(try registry.requests().count == before, "--offline sent requests")
        // What the cache cannot answer is refused, naming it, before anything is written.
        let unknown = try bake("docker://\(registry.registry)/app:v2", dir.path("unknown"), ["--cache", cache, "--offline"])
        #expect(unknown.status == 2 && unknown.stderr.contains("app:v2") && unknown.stderr.contains("never fetched"), "\(unknown)")
        #expect(!FileManager.default.fileExists(atPath: dir.path("unknown/data.img")))
        let noCache = try bake(image, dir.path("no-cache"), ["--offline"])
        #expect(noCache.status == 2 && noCache.stderr.contains("--offline needs a cache"), "\(noCache)")
        // A blob gone from the cache: refused naming the blob, not fetched.
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(cache)/index.json"))) as? [String: Any]
        let blobs = try FileManager.default.contentsOfDirectory(atPath: "\(cache)/blobs/sha256")
        let largest = try #require(blobs.max { a, b in
            let size = { (n: String) in (try? FileManager.default.attributesOfItem(atPath: "\(cache)/blobs/sha256/\(n)")[.size] as? Int) ?? 0 }
            return size(a) < size(b)
        })
        try #require(index != nil)
        try FileManager.default.moveItem(atPath: "\(cache)/blobs/sha256/\(largest)", toPath: dir.path("kept-blob"))
        let missing = try bake(image, dir.path("missing"), ["--cache", cache, "--offline"])
        #expect(missing.status == 2 && missing.stderr.contains(largest) && missing.stderr.contains("does not hold this blob"), "\(missing)")
        #expect(try registry.requests().count == before, "--offline sent requests")
        try FileManager.default.moveItem(atPath: dir.path("kept-blob"), toPath: "\(cache)/blobs/sha256/\(largest)")

        // The registry goes down: a tag the cache has fetched is baked as its recorded digest, with a warning.
        let address = registry.registry
        registry.stop()
        let down = try bake("docker://\(address)/app:v1", dir.path("down"), ["--cache", cache])
        #expect(down.succeeded, "\(down)")
        #expect(down.stderr.contains("warning") && down.stderr.contains("unavailable") && down.stderr.contains("may have moved"), "\(down)")
        #expect(same(dir.path("first"), dir.path("down")))
        // A tag it has not fetched still fails as the registry being down.
        let never = try bake("docker://\(address)/app:v2", dir.path("never"), ["--cache", cache])
        #expect(never.status == 3 && never.stderr.contains("unavailable"), "\(never)")
    }

    @Test("unknown tag or repository: exit 2 naming host, repository and status; a registry that is down or a name that does not resolve: exit 3")
    func errorsNameWhatIsWrong() throws {
        defer { dir.remove() }
        let registry = try RegistryStandin()
        try registry.push("oci:\(fixtures)/example-oci:app:v1", as: "app:v1")
        let tag = try bake("docker://\(registry.registry)/app:v9", dir.path("tag"))
        #expect(tag.status == 2, "\(tag)")
        #expect(tag.stderr.contains("\(registry.registry)/app:v9") && tag.stderr.contains("404"), "\(tag)")
        let repo = try bake("docker://\(registry.registry)/nothing/here:v1", dir.path("repo"))
        #expect(repo.status == 2, "\(repo)")
        #expect(repo.stderr.contains("nothing/here"), "\(repo)")
        let pinned = try bake("docker://\(registry.registry)/app@sha256:" + String(repeating: "0", count: 64), dir.path("digest"))
        #expect(pinned.status == 2, "\(pinned)")
        let address = registry.registry
        registry.stop()
        let down = try bake("docker://\(address)/app:v1", dir.path("down"))
        #expect(down.status == 3, "\(down)")
        #expect(down.stderr.contains(address) && down.stderr.contains("unavailable"), "\(down)")
        // In words, without the network layer's type names and codes.
        #expect(down.stderr.contains("connection refused") && !down.stderr.contains("errno"), "\(down)")
        // A name that does not exist is not asked for again and again.
        let unknown = try bake("docker://no-such-registry.invalid/app:v1", dir.path("unknown-host"))
        #expect(unknown.status == 3, "\(unknown)")
        #expect(unknown.stderr.contains("no-such-registry.invalid cannot be resolved"), "\(unknown)")
    }
}
