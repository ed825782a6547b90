import Foundation

/// Where a service is reached in a region: the AWS default or an override (`--endpoint-url`,
/// `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`).
public struct AWSEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var scheme: String
    public var host: String
    public var port: Int?
    /// A path prefix of the override, without a trailing slash (usually empty).
    public var basePath: String

    public init(scheme: String, host: String, port: Int?, basePath: String = "") {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.basePath = basePath
    }

    /// Errors in an endpoint override.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case invalid(String, String)

        public var description: String {
            switch self {
            case .invalid(let url, let source): return "\(source): '\(url)' is not an http or https URL"
            }
        }
    }

    /// Parses an override URL; `source` names where it came from in errors.
    public init(url text: String, source: String) throws {
        guard let c = URLComponents(string: text), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = c.host, !host.isEmpty
        else { throw Error.invalid(text, source) }
        var path = c.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        self.init(scheme: scheme, host: host, port: c.port, basePath: path)
    }

    /// The AWS endpoint of `service` (`ebs`, `ec2`, `sts`) in `region`.
    public static func standard(service: String, region: String) -> AWSEndpoint {
        let suffix = region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
        return AWSEndpoint(scheme: "https", host: "\(service).\(region).\(suffix)", port: nil)
    }

    /// The `Host` header value.
    public var hostHeader: String {
        guard let port, !(scheme == "https" && port == 443), !(scheme == "http" && port == 80) else { return host }
        return "\(host):\(port)"
    }

    /// The URL for `path` (already encoded) and an encoded query.
    public func url(path: String, query: String) -> String {
        let base = "\(scheme)://\(hostHeader.contains(":") && host.contains(":") ? "[\(host)]" : hostHeader)\(basePath)\(path)"
        return query.isEmpty ? base : "\(base)?\(query)"
    }

    public var description: String { "\(scheme)://\(hostHeader)\(basePath)" }

    /// The override for `service` from the environment, as the SDKs read it: `AWS_ENDPOINT_URL_<SERVICE>` first,
    /// then `AWS_ENDPOINT_URL`.
    public static func override(service: String, environment: [String: String]) throws -> AWSEndpoint? {
        let specific = "AWS_ENDPOINT_URL_\(service.uppercased())"
        if let v = environment[specific], !v.isEmpty { return try AWSEndpoint(url: v, source: specific) }
        if let v = environment["AWS_ENDPOINT_URL"], !v.isEmpty { return try AWSEndpoint(url: v, source: "AWS_ENDPOINT_URL") }
        return nil
    }
}
