import Foundation
import KilnCore
import KilnTestSupport
import Testing
@testable import KilnRegistry

/// Credential lookup through real files and a real `docker-credential-*` helper program.
@Suite("registry credentials")
struct CredentialStoreTests {
    let dir: TemporaryDirectory

    init() throws { dir = try TemporaryDirectory(prefix: "kiln-creds") }

    func write(_ name: String, _ text: String) throws -> String {
        let path = dir.path(name)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func base64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

    /// A helper that logs what it was asked and answers from a table; "credentials not found" otherwise.
    func helper(_ name: String, answers: [String: String]) throws {
        var cases = ""
        for (server, json) in answers { cases += "  '\(server)') echo '\(json)'; exit 0 ;;\n" }
        let path = try write("bin/docker-credential-\(name)", """
            #!/bin/sh
            [ "$1" = get ] || exit 3
            read -r server
            echo "$server" >> "\(dir.path("helper.log"))"
            case "$server" in
            \(cases)  *) echo "credentials not found in native keychain"; exit 1 ;;
            esac
            """)
        chmod(path, 0o755)
    }

    func env(_ extra: [String: String] = [:]) -> [String: String] {
        ["HOME": dir.path("home"), "PATH": dir.path("bin") + ":/usr/bin:/bin"].merging(extra) { $1 }
    }

    @Test func authFileOrderAndSpecificKeys() throws {
        let containers = try write("xdg/containers/auth.json", """
            {"auths": {"reg.example.com/team": {"auth": "\(base64("team:t-pass"))"},
                       "reg.example.com": {"auth": "\(base64("host:h-pass:with:colons"))"}}}
            """)
        _ = try write("home/.docker/config.json", """
            {"auths": {"https://other.example.com/v1/": {"auth": "\(base64("url:u-pass"))"},
                       "reg.example.com": {"auth": "\(base64("docker:d-pass"))"}}}
            """)
        let store = CredentialStore(authFile: nil, environment: env(["XDG_CONFIG_HOME": dir.path("xdg")]))
        #expect(store.files.first == containers)
        let team = try #require(try store.credentials(host: "reg.example.com", repository: "team/app"))
        #expect(team.username == "team" && team.secret == "t-pass")
        let host = try #require(try store.credentials(host: "reg.example.com", repository: "other/app"))
        #expect(host.username == "host" && host.secret == "h-pass:with:colons")
        // A key written as a URL matches its host; the docker config is read after the containers file.
        let url = try #require(try store.credentials(host: "other.example.com", repository: "x"))
        #expect(url.username == "url")
        #expect(try store.credentials(host: "nobody.example.com", repository: "x") == nil)
    }

    @Test func explicitAuthFileIsTheOnlyOne() throws {
        let file = try write("explicit.json", #"{"auths": {}}"#)
        _ = try write("home/.docker/config.json", #"{"auths": {"reg.example.com": {"auth": "\#(base64("d:p"))"}}}"#)
        let store = CredentialStore(authFile: file, environment: env())
        #expect(store.files == [file])
        #expect(try store.credentials(host: "reg.example.com", repository: "a") == nil)
        let viaEnv = CredentialStore(authFile: nil, environment: env(["REGISTRY_AUTH_FILE": file]))
        #expect(viaEnv.files == [file])
    }

    @Test func dockerHubKeysAndIdentityTokens() throws {
        _ = try write("home/.docker/config.json", #"{"auths": {"https://index.docker.io/v1/": {"identitytoken": "refresh-me"}}}"#)
        let store = CredentialStore(authFile: nil, environment: env())
        let c = try #require(try store.credentials(host: "docker.io", repository: "library/busybox"))
        #expect(c.isIdentityToken && c.secret == "refresh-me")
        #expect(!c.description.contains("refresh-me"))
    }

    @Test func helpersCredHelpersFirstThenAuthsThenCredsStore() throws {
        try helper("ecr-login", answers: ["123.dkr.ecr.us-east-1.amazonaws.com": #"{"ServerURL":"x","Username":"AWS","Secret":"ecr-password"}"#])
        try helper("store", answers: ["fallback.example.com": #"{"Username":"<token>","Secret":"id-token"}"#])
        _ = try write("home/.docker/config.json", """
            {"credHelpers": {"123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"},
             "auths": {"plain.example.com": {"auth": "\(base64("p:q"))"}},
             "credsStore": "store"}
            """)
        let store = CredentialStore(authFile: nil, environment: env())
        let ecr = try #require(try store.credentials(host: "123.dkr.ecr.us-east-1.amazonaws.com", repository: "app"))
        #expect(ecr.username == "AWS" && ecr.secret == "ecr-password" && ecr.origin == "docker-credential-ecr-login")
        #expect(try store.credentials(host: "plain.example.com", repository: "a")?.username == "p")
        let token = try #require(try store.credentials(host: "fallback.example.com", repository: "a"))
        #expect(token.isIdentityToken && token.secret == "id-token")
        // "credentials not found" from the store is anonymous access.
        #expect(try store.credentials(host: "unknown.example.com", repository: "a") == nil)
        let asked = try String(contentsOfFile: dir.path("helper.log"), encoding: .utf8).split(separator: "\n")
        #expect(asked == ["123.dkr.ecr.us-east-1.amazonaws.com", "fallback.example.com", "unknown.example.com"])
    }

    @Test func brokenFilesAndHelpersSayWhatAndWhere() throws {
        let bad = try write("bad.json", "{not json")
        let e1 = #expect(throws: RegistryError.self) { try CredentialStore(authFile: bad, environment: env()).credentials(host: "h.io", repository: "a") }
        #expect(e1?.exitStatus == .input)
        #expect(e1?.description.contains(bad) == true)
        let badAuth = try write("bad-auth.json", #"{"auths": {"h.io": {"auth": "bm9jb2xvbg=="}}}"#)
        let e2 = #expect(throws: RegistryError.self) { try CredentialStore(authFile: badAuth, environment: env()).credentials(host: "h.io", repository: "a") }
        #expect(e2?.description.contains(#"auths["h.io"].auth"#) == true)
        let missing = try write("missing-helper.json", #"{"credHelpers": {"h.io": "nonexistent"}}"#)
        let e3 = #expect(throws: RegistryError.self) { try CredentialStore(authFile: missing, environment: env()).credentials(host: "h.io", repository: "a") }
        #expect(e3?.exitStatus == .environment)
        #expect(e3?.description.contains("docker-credential-nonexistent") == true)
    }
}
