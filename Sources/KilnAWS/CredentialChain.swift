import Foundation

/// Finds credentials as the AWS SDKs do, in their order: environment variables; the profile's `role_arn`
/// (with `source_profile` or `credential_source`, through STS AssumeRole, or `web_identity_token_file`); web identity
/// from `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`; the profile's keys in the credentials file; its
/// `credential_process`; its keys in the config file; container credentials; IMDSv2.
public struct CredentialChain: Sendable {
    public var environment: [String: String]
    /// The profile named on the command line; it turns off the environment's keys, as in the SDKs.
    public var explicitProfile: String?
    public var transport: AWSTransport
    /// The region for STS calls.
    public var region: String?

    public init(environment: [String: String], explicitProfile: String? = nil, transport: AWSTransport, region: String?) {
        self.environment = environment
        self.explicitProfile = explicitProfile
        self.transport = transport
        self.region = region
    }

    /// Errors finding credentials or a region.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case none([String])
        case profileMissing(String, String)
        case profileCycle([String])
        case incomplete(String, String)
        case process(String, String)
        case noRegion
        case unsupportedCredentialSource(String, String)

        public var description: String {
            switch self {
            case .none(let tried): return "no AWS credentials found; tried: \(tried.joined(separator: "; "))"
            case .profileMissing(let p, let files): return "profile '\(p)' is not in \(files)"
            case .profileCycle(let chain): return "profiles refer to each other in a cycle: \(chain.joined(separator: " -> "))"
            case .incomplete(let p, let why): return "profile '\(p)': \(why)"
            case .process(let p, let why): return "profile '\(p)': credential_process \(why)"
            case .noRegion: return "no AWS region: give --region or set AWS_REGION (or AWS_DEFAULT_REGION, or region in the profile)"
            case .unsupportedCredentialSource(let p, let s): return "profile '\(p)': credential_source '\(s)' is not Environment, Ec2InstanceMetadata or EcsContainer"
            }
        }
    }

    public var profileName: String { explicitProfile ?? environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default" }

    /// The region: `explicit`, `AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's `region`.
    public static func region(explicit: String?, environment: [String: String], profile: String?) -> String? {
        for v in [explicit, environment["AWS_REGION"], environment["AWS_DEFAULT_REGION"]] {
            if let v, !v.isEmpty { return v }
        }
        let config = SharedConfig(environment: environment)
        let name = profile ?? environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        return config.profiles[name]?["region"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Resolves credentials once.
    public func resolve() async throws -> AWSCredentials {
        var tried: [String] = []
        if explicitProfile == nil {
            if let c = environmentCredentials() { return c }
            tried.append("environment (AWS_ACCESS_KEY_ID)")
        }
        let config = SharedConfig(environment: environment)
        let name = profileName
        let profile = config.profiles[name]
        if profile == nil && (explicitProfile != nil || environment["AWS_PROFILE"] != nil) {
            throw Error.profileMissing(name, "\(config.credentialsPath) or \(config.configPath)")
        }
        if let profile, profile["role_arn"] != nil {
            return try await assumeRoleProfile(name, config: config, visited: [])
        }
        if let c = try await webIdentity(roleARN: environment["AWS_ROLE_ARN"], tokenFile: environment["AWS_WEB_IDENTITY_TOKEN_FILE"],
                                         sessionName: environment["AWS_ROLE_SESSION_NAME"], source: "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)") {
            return c
        }
        tried.append("web identity (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE)")
        if let profile {
            if let c = try await profileCredentials(name, profile, config: config) { return c }
        }
        tried.append("profile '\(name)' in \(config.credentialsPath) and \(config.configPath)")
        if let c = try await containerCredentials() { return c }
        tried.append("container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI, _RELATIVE_URI)")
        if environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() != "true" {
            if let c = try await instanceMetadataCredentials() { return c }
            tried.append("instance metadata (IMDSv2 at \(imdsEndpoint))")
        }
        throw Error.none(tried)
    }

    func environmentCredentials() -> AWSCredentials? {
        guard let key = environment["AWS_ACCESS_KEY_ID"], !key.isEmpty, let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else { return nil }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token,
                              expiration: environment["AWS_CREDENTIAL_EXPIRATION"].flatMap(Self.parseDate), source: "environment")
    }

    /// Static keys, then credential_process, of one profile.
    func profileCredentials(_ name: String, _ p: [String: String], config: SharedConfig) async throws -> AWSCredentials? {
        if let key = p["aws_access_key_id"], let secret = p["aws_secret_access_key"], !key.isEmpty, !secret.isEmpty {
            let file = config.credentialsFileKeys[name]?.contains("aws_access_key_id") == true ? config.credentialsPath : config.configPath
            return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: p["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 },
                                  source: "profile \(name) (\(file))")
        }
        if let command = p["credential_process"], !command.isEmpty {
            return try CredentialProcess.run(command, profile: name)
        }
        return nil
    }

    func assumeRoleProfile(_ name: String, config: SharedConfig, visited: [String]) async throws -> AWSCredentials {
        guard !visited.contains(name) else { throw Error.profileCycle(visited + [name]) }
        guard let p = config.profiles[name] else { throw Error.profileMissing(name, "\(config.credentialsPath) or \(config.configPath)") }
        guard let role = p["role_arn"] else {
            guard let c = try await profileCredentials(name, p, config: config) else {
                throw Error.incomplete(name, "has no aws_access_key_id, credential_process or role_arn")
            }
            return c
        }
        let session = p["role_session_name"] ?? "kiln-\(Int(Date().timeIntervalSince1970))"
        if let tokenFile = p["web_identity_token_file"] {
            guard let c = try await webIdentity(roleARN: role, tokenFile: tokenFile, sessionName: session, source: "profile \(name) (web_identity_token_file)") else {
                throw Error.incomplete(name, "web_identity_token_file '\(tokenFile)' cannot be read")
            }
            return c
        }
        let source: AWSCredentials
        if let sourceProfile = p["source_profile"] {
            if sourceProfile == name, let key = p["aws_access_key_id"], let secret = p["aws_secret_access_key"] {
                source = AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: p["aws_session_token"], source: "profile \(name)")
            } else {
                source = try await assumeRoleProfile(sourceProfile, config: config, visited: visited + [name])
            }
        } else if let cs = p["credential_source"] {
            switch cs {
            case "Environment":
                guard let c = environmentCredentials() else { throw Error.incomplete(name, "credential_source Environment, but AWS_ACCESS_KEY_ID is not set") }
                source = c
            case "EcsContainer":
                guard let c = try await containerCredentials() else { throw Error.incomplete(name, "credential_source EcsContainer, but no container credentials") }
                source = c
            case "Ec2InstanceMetadata":
                guard let c = try await instanceMetadataCredentials() else { throw Error.incomplete(name, "credential_source Ec2InstanceMetadata, but no answer from IMDS") }
                source = c
            default:
                throw Error.unsupportedCredentialSource(name, cs)
            }
        } else {
            throw Error.incomplete(name, "role_arn needs source_profile, credential_source or web_identity_token_file")
        }
        let stsRegion = p["region"] ?? region ?? "us-east-1"
        let endpoint = try AWSEndpoint.override(service: "sts", environment: environment) ?? .standard(service: "sts", region: stsRegion)
        let client = AWSClient(service: "sts", region: stsRegion, endpoint: endpoint, transport: transport, credentials: CredentialProvider(static: source),
                               retry: RetryPolicy(maxAttempts: 4))
        return try await STSClient.assumeRole(client: client, roleARN: role, sessionName: session, externalID: p["external_id"],
                                              durationSeconds: p["duration_seconds"].flatMap { Int($0) }, source: "profile \(name) (AssumeRole \(role))")
    }

    /// AssumeRoleWithWebIdentity with the token file read now (it is rotated underneath).
    func webIdentity(roleARN: String?, tokenFile: String?, sessionName: String?, source: String) async throws -> AWSCredentials? {
        guard let roleARN, !roleARN.isEmpty, let tokenFile, !tokenFile.isEmpty else { return nil }
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty else {
            throw AWSError(kind: .configuration, operation: "AssumeRoleWithWebIdentity", message: "web identity token file '\(tokenFile)' cannot be read or is empty")
        }
        let stsRegion = region ?? "us-east-1"
        let endpoint = try AWSEndpoint.override(service: "sts", environment: environment) ?? .standard(service: "sts", region: stsRegion)
        return try await STSClient.assumeRoleWithWebIdentity(transport: transport, endpoint: endpoint, roleARN: roleARN,
                                                             sessionName: sessionName ?? "kiln-\(Int(Date().timeIntervalSince1970))", token: token, source: source)
    }

    /// Parses the SDKs' expiration times: RFC 3339 with or without fractional seconds.
    public static func parseDate(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text)
    }
}
