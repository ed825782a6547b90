import Foundation

extension CredentialChain {
    /// The container credentials endpoint (ECS, CodeBuild, EKS Pod Identity): `AWS_CONTAINER_CREDENTIALS_FULL_URI` or
    /// `_RELATIVE_URI` under 169.254.170.2, with the token from `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or `_TOKEN`.
    /// Plain http is accepted only to loopback and the ECS and EKS link-local addresses.
    func containerCredentials() async throws -> AWSCredentials? {
        let url: String
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], !relative.isEmpty {
            url = "http://169.254.170.2" + (relative.hasPrefix("/") ? relative : "/" + relative)
        } else if let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"], !full.isEmpty {
            guard let c = URLComponents(string: full), let scheme = c.scheme?.lowercased(), let host = c.host else {
                throw AWSError(kind: .configuration, operation: "container credentials", message: "AWS_CONTAINER_CREDENTIALS_FULL_URI '\(full)' is not a URL")
            }
            let allowed = ["127.0.0.1", "localhost", "::1", "[::1]", "169.254.170.2", "169.254.170.23", "fd00:ec2::23", "[fd00:ec2::23]"]
            guard scheme == "https" || (scheme == "http" && (allowed.contains(host) || host.hasPrefix("127."))) else {
                throw AWSError(kind: .configuration, operation: "container credentials",
                               message: "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback or the container link-local address")
            }
            url = full
        } else {
            return nil
        }
        var headers: [(String, String)] = []
        if let file = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"], !file.isEmpty {
            guard let token = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw AWSError(kind: .configuration, operation: "container credentials", message: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '\(file)' cannot be read")
            }
            headers.append(("Authorization", token.trimmingCharacters(in: .whitespacesAndNewlines)))
        } else if let token = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"], !token.isEmpty {
            headers.append(("Authorization", token))
        }
        var last: AWSError?
        for attempt in 0..<3 {
            if attempt > 0 { try await Task.sleep(nanoseconds: UInt64(RetryPolicy().delay(attempt: attempt) * 1e9)) }
            do {
                let r = try await transport.execute(operation: "container credentials", method: "GET", url: url, headers: headers, body: nil, timeout: 5)
                guard r.status == 200 else {
                    last = AWSError.classify(status: r.status, code: nil, message: String(r.text.prefix(200)), operation: "container credentials")
                    if last?.kind == .transient { continue }
                    break
                }
                return try Self.credentialsJSON(r.body, source: "container credentials", operation: "container credentials")
            } catch let e as AWSError where e.kind == .transient {
                last = e
            }
        }
        throw last ?? AWSError(kind: .configuration, operation: "container credentials", message: "no answer")
    }

    var imdsEndpoint: String {
        var e = environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://169.254.169.254"
        while e.hasSuffix("/") { e.removeLast() }
        return e
    }

    /// IMDSv2: a session token by PUT, then the instance role's credentials. Nil when nothing answers.
    func instanceMetadataCredentials() async throws -> AWSCredentials? {
        let base = imdsEndpoint
        let token: AWSResponse
        do {
            token = try await transport.execute(operation: "IMDS token", method: "PUT", url: base + "/latest/api/token",
                                                headers: [("x-aws-ec2-metadata-token-ttl-seconds", "21600")], body: nil, timeout: 2)
        } catch is AWSError {
            return nil
        }
        guard token.status == 200 else { return nil }
        let h = [("x-aws-ec2-metadata-token", token.text)]
        let roles = try await transport.execute(operation: "IMDS", method: "GET", url: base + "/latest/meta-data/iam/security-credentials/",
                                                headers: h, body: nil, timeout: 2)
        guard roles.status == 200, let role = roles.text.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else { return nil }
        let creds = try await transport.execute(operation: "IMDS", method: "GET", url: base + "/latest/meta-data/iam/security-credentials/" + role,
                                                headers: h, body: nil, timeout: 2)
        guard creds.status == 200 else {
            throw AWSError(kind: .configuration, operation: "IMDS", status: creds.status, message: "no credentials for instance role \(role)")
        }
        return try Self.credentialsJSON(creds.body, source: "instance metadata (role \(role))", operation: "IMDS")
    }

    /// `{AccessKeyId, SecretAccessKey, Token, Expiration}` as the container and IMDS endpoints answer.
    static func credentialsJSON(_ body: [UInt8], source: String, operation: String) throws -> AWSCredentials {
        guard let o = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let key = o["AccessKeyId"] as? String,
            let secret = o["SecretAccessKey"] as? String
        else { throw AWSError(kind: .configuration, operation: operation, message: "the answer holds no AccessKeyId and SecretAccessKey") }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: o["Token"] as? String ?? o["SessionToken"] as? String,
                              expiration: (o["Expiration"] as? String).flatMap(parseDate), source: source)
    }
}

/// `credential_process`: a command printing `{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}`.
enum CredentialProcess {
    static func run(_ command: String, profile: String) throws -> AWSCredentials {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw CredentialChain.Error.process(profile, "cannot start: \(error.localizedDescription)")
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CredentialChain.Error.process(profile, "exited with status \(process.terminationStatus)")
        }
        guard let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CredentialChain.Error.process(profile, "did not print a JSON object")
        }
        guard (o["Version"] as? NSNumber)?.intValue == 1 else {
            throw CredentialChain.Error.process(profile, "printed Version \(o["Version"].map { "\($0)" } ?? "none"); only Version 1 is understood")
        }
        guard let key = o["AccessKeyId"] as? String, let secret = o["SecretAccessKey"] as? String else {
            throw CredentialChain.Error.process(profile, "printed no AccessKeyId and SecretAccessKey")
        }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: o["SessionToken"] as? String,
                              expiration: (o["Expiration"] as? String).flatMap(CredentialChain.parseDate), source: "profile \(profile) (credential_process)")
    }
}
