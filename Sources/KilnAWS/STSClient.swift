import Foundation

/// STS AssumeRole (signed with the source credentials) and AssumeRoleWithWebIdentity (unsigned).
public enum STSClient {
    public static let apiVersion = "2011-06-15"

    static func parseCredentials(_ xml: String, operation: String, source: String) throws -> AWSCredentials {
        guard let key = XMLFields.first("AccessKeyId", in: xml), let secret = XMLFields.first("SecretAccessKey", in: xml) else {
            throw AWSError(kind: .configuration, operation: operation, message: "the answer holds no credentials")
        }
        let token = XMLFields.first("SessionToken", in: xml)
        let expiration = XMLFields.first("Expiration", in: xml).flatMap(CredentialChain.parseDate)
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token, expiration: expiration, source: source)
    }

    /// AssumeRole with `client` (service sts, signed by the source profile's credentials).
    public static func assumeRole(client: AWSClient, roleARN: String, sessionName: String, externalID: String?, durationSeconds: Int?,
                                  source: String) async throws -> AWSCredentials {
        var p: [(String, String)] = [("Action", "AssumeRole"), ("Version", apiVersion), ("RoleArn", roleARN), ("RoleSessionName", sessionName)]
        if let externalID { p.append(("ExternalId", externalID)) }
        if let durationSeconds { p.append(("DurationSeconds", "\(durationSeconds)")) }
        let response = try await client.send(AWSCall(operation: "AssumeRole", method: "POST", path: "/",
                                                     headers: [("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
                                                     body: XMLFields.formEncode(p)))
        return try parseCredentials(response.text, operation: "AssumeRole", source: source)
    }

    /// AssumeRoleWithWebIdentity: an unsigned call with the identity token.
    public static func assumeRoleWithWebIdentity(transport: AWSTransport, endpoint: AWSEndpoint, roleARN: String, sessionName: String,
                                                 token: String, source: String) async throws -> AWSCredentials {
        let p: [(String, String)] = [("Action", "AssumeRoleWithWebIdentity"), ("Version", apiVersion), ("RoleArn", roleARN),
                                     ("RoleSessionName", sessionName), ("WebIdentityToken", token)]
        let policy = RetryPolicy(maxAttempts: 4)
        var attempt = 0
        while true {
            let response = try await transport.execute(operation: "AssumeRoleWithWebIdentity", method: "POST", url: endpoint.url(path: "/", query: ""),
                                                       headers: [("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
                                                       body: XMLFields.formEncode(p), timeout: 30)
            if (200..<300).contains(response.status) {
                return try parseCredentials(response.text, operation: "AssumeRoleWithWebIdentity", source: source)
            }
            let (code, message) = AWSClient.errorDetails(response)
            var error = AWSError.classify(status: response.status, code: code, message: message, operation: "AssumeRoleWithWebIdentity")
            if code == "InvalidIdentityToken" { error.kind = .transient }
            attempt += 1
            guard error.kind == .transient, attempt < policy.maxAttempts else { throw error }
            try await Task.sleep(nanoseconds: UInt64(policy.delay(attempt: attempt) * 1e9))
        }
    }
}
