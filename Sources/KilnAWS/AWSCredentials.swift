import Foundation

/// An access key pair, with the session token of temporary credentials. Its description never shows the secret.
public struct AWSCredentials: Sendable, Hashable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// When temporary credentials expire; nil for long-term keys.
    public var expiration: Date?
    /// Where the credentials came from, e.g. `environment` or `profile dev (credential_process)`.
    public var source: String

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil, source: String) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
        self.source = source
    }

    /// The access key id with all but its last four characters masked, and the source.
    public var description: String {
        "\(Self.mask(accessKeyID)) from \(source)"
    }

    /// `AKIA****************WXYZ`-style masking, for messages.
    public static func mask(_ value: String) -> String {
        guard value.count > 4 else { return String(repeating: "*", count: value.count) }
        return String(repeating: "*", count: value.count - 4) + value.suffix(4)
    }

    /// True when the credentials expire within `margin` seconds of `now`.
    public func expires(within margin: TimeInterval, now: Date = Date()) -> Bool {
        guard let expiration else { return false }
        return expiration.timeIntervalSince(now) < margin
    }
}
