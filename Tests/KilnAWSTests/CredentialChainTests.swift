import Foundation
import KilnAWS
import KilnTestSupport
import Testing

@Suite("credentials chain")
struct CredentialChainTests {
    /// An environment with only what a test gives: no files or endpoints of this machine.
    static func environment(_ dir: TemporaryDirectory, _ extra: [String: String] = [:]) -> [String: String] {
        ["HOME": dir.path, "AWS_CONFIG_FILE": dir.path("config"), "AWS_SHARED_CREDENTIALS_FILE": dir.path("credentials"),
         "AWS_EC2_METADATA_DISABLED": "true"].merging(extra) { _, new in new }
    }

    static func resolve(_ env: [String: String], profile: String? = nil, region: String? = "us-east-1") async throws -> AWSCredentials {
        let transport = AWSTransport(maxConnections: 2)
        defer { Task { await transport.shutdown() } }
        let chain = CredentialChain(environment: env, explicitProfile: profile, transport: transport, region: region)
        do {
            let c = try await chain.resolve()
            await transport.shutdown()
            return c
        } catch {
            await transport.shutdown()
            throw error
        }
    }

    @Test("environment keys first; a --profile turns them off; AWS_PROFILE does not")
    func environmentFirst() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try "[dev]\naws_access_key_id = AKIAFILE\naws_secret_access_key = filesecret\n".write(toFile: dir.path("credentials"), atomically: true, encoding: .utf8)
        let env = Self.environment(dir, ["AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "tok", "AWS_PROFILE": "dev"])
        let fromEnv = try await Self.resolve(env)
        #expect(fromEnv.accessKeyID == "AKIAENV" && fromEnv.sessionToken == "tok" && fromEnv.source == "environment")
        let fromProfile = try await Self.resolve(env, profile: "dev")
        #expect(fromProfile.accessKeyID == "AKIAFILE" && fromProfile.secretAccessKey == "filesecret")
    }

    @Test("profiles from the credentials and config files; credential_process; a missing profile is named")
    func sharedFiles() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try """
            # comment
            [default]
            aws_access_key_id=AKIADEFAULT
            aws_secret_access_key = defsecret ; inline comment
            """.write(toFile: dir.path("credentials"), atomically: true, encoding: .utf8)
        let script = dir.path("creds.sh")
        try """
            #!/bin/sh
            echo '{"Version": 1, "AccessKeyId": "AKIAPROCESS", "SecretAccessKey": "procsecret", "SessionToken": "proctoken", "Expiration": "2099-01-01T00:00:00Z"}'
            """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        try """
            [default]
            region = eu-central-1
            [profile cfg]
            aws_access_key_id = AKIACONFIG
            aws_secret_access_key = cfgsecret
            region = ap-south-1
            [profile proc]
            credential_process = \(script) --flag
            [profile badproc]
            credential_process = /bin/false
            [sso-session x]
            aws_access_key_id = NOTAPROFILE
            """.write(toFile: dir.path("config"), atomically: true, encoding: .utf8)
        let env = Self.environment(dir)
        #expect(try await Self.resolve(env).accessKeyID == "AKIADEFAULT")
        #expect(try await Self.resolve(env).secretAccessKey == "defsecret")
        #expect(try await Self.resolve(env, profile: "cfg").accessKeyID == "AKIACONFIG")
        let process = try await Self.resolve(env.merging(["AWS_PROFILE": "proc"]) { _, n in n })
        #expect(process.accessKeyID == "AKIAPROCESS" && process.sessionToken == "proctoken" && process.expiration != nil)
        await #expect(throws: CredentialChain.Error.process("badproc", "exited with status 1")) { try await Self.resolve(env, profile: "badproc") }
        await #expect(throws: CredentialChain.Error.self) { try await Self.resolve(env, profile: "x") }
        #expect(CredentialChain.region(explicit: nil, environment: env, profile: nil) == "eu-central-1")
        #expect(CredentialChain.region(explicit: nil, environment: env, profile: "cfg") == "ap-south-1")
        #expect(CredentialChain.region(explicit: nil, environment: env.merging(["AWS_DEFAULT_REGION": "us-west-1"]) { _, n in n }, profile: "cfg") == "us-west-1")
        #expect(CredentialChain.region(explicit: nil, environment: env.merging(["AWS_DEFAULT_REGION": "us-west-1", "AWS_REGION": "sa-east-1"]) { _, n in n }, profile: nil) == "sa-east-1")
        #expect(CredentialChain.region(explicit: "af-south-1", environment: env, profile: nil) == "af-south-1")
    }

    @Test("nothing found names every source tried, and no secret")
    func nothingFound() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        do {
            _ = try await Self.resolve(Self.environment(dir))
            Issue.record("resolved credentials from nothing")
        } catch let e as CredentialChain.Error {
            let text = e.description
            #expect(text.contains("environment") && text.contains("web identity") && text.contains("container"), "\(text)")
        }
    }

    @Test("role_arn + source_profile through moto's STS AssumeRole, signed with the source profile's keys",
          .requires(AWSStandin.requirement))
    func assumeRole() async throws {
        let standin = try AWSStandin()
        defer { standin.stop() }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try "[base]\naws_access_key_id = \(AWSStandin.accessKey)\naws_secret_access_key = \(AWSStandin.secretKey)\n"
            .write(toFile: dir.path("credentials"), atomically: true, encoding: .utf8)
        try "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/kiln-upload\nsource_profile = base\nrole_session_name = ci\n"
            .write(toFile: dir.path("config"), atomically: true, encoding: .utf8)
        let env = Self.environment(dir, ["AWS_PROFILE": "deploy", "AWS_ENDPOINT_URL_STS": standin.endpoint])
        let c = try await Self.resolve(env)
        #expect(c.accessKeyID.hasPrefix("ASIA") && c.sessionToken != nil && c.expiration != nil, "\(c)")
        #expect(c.source.contains("AssumeRole arn:aws:iam::123456789012:role/kiln-upload"))
        let sts = try standin.requests().filter { $0.op == "AssumeRole" }
        #expect(sts.count == 1 && sts.allSatisfy { $0.signature == "ok" })
    }

    @Test("web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE) through moto's STS, unsigned",
          .requires(AWSStandin.requirement))
    func webIdentity() async throws {
        let standin = try AWSStandin()
        defer { standin.stop() }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmtpbG4ifQ.c2ln\n".write(toFile: dir.path("token"), atomically: true, encoding: .utf8)
        let env = Self.environment(dir, ["AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/gha", "AWS_WEB_IDENTITY_TOKEN_FILE": dir.path("token"),
                                         "AWS_ENDPOINT_URL_STS": standin.endpoint])
        let c = try await Self.resolve(env)
        #expect(c.sessionToken != nil && c.source.contains("web identity"), "\(c)")
        let calls = try standin.requests().filter { $0.op == "AssumeRoleWithWebIdentity" }
        #expect(calls.count == 1 && calls[0].signature == nil)
    }

    @Test("container credentials with a token file, and IMDSv2", .requires(AWSStandin.requirement))
    func containerAndInstanceMetadata() async throws {
        let standin = try AWSStandin()
        defer { standin.stop() }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try "Bearer standin-container-token\n".write(toFile: dir.path("token"), atomically: true, encoding: .utf8)
        let container = try await Self.resolve(Self.environment(dir, [
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": standin.endpoint + "/container-credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": dir.path("token"),
        ]))
        #expect(container.accessKeyID == "ASIASTANDIN" && container.sessionToken == "standin-token" && container.source == "container credentials")
        await #expect(throws: AWSError.self) {
            try await Self.resolve(Self.environment(dir, ["AWS_CONTAINER_CREDENTIALS_FULL_URI": standin.endpoint + "/container-credentials",
                                                          "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer wrong"]))
        }
        await #expect(throws: AWSError.self) {
            try await Self.resolve(Self.environment(dir, ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://192.0.2.1/creds"]))
        }
        let imds = try await Self.resolve(Self.environment(dir, ["AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": standin.endpoint]))
        #expect(imds.accessKeyID == "ASIASTANDIN" && imds.source == "instance metadata (role standin-role)")
    }
}
