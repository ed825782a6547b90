import Foundation

/// The region, credentials, endpoints and connection pool of one command: clients for each service come from it.
public struct AWSSession: Sendable {
    public var region: String
    public var environment: [String: String]
    /// `--endpoint-url`: used for every service when given.
    public var endpointOverride: AWSEndpoint?
    public let transport: AWSTransport
    public let credentials: CredentialProvider
    public let statistics = AWSCallStatistics()

    /// Resolves the region (`region`, `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile) and sets up the credentials
    /// chain; credentials are looked up on the first call.
    public init(region: String?, profile: String?, endpointURL: String?, environment: [String: String], maxConnections: Int) throws {
        guard let resolved = CredentialChain.region(explicit: region, environment: environment, profile: profile) else {
            throw CredentialChain.Error.noRegion
        }
        self.region = resolved
        self.environment = environment
        endpointOverride = try endpointURL.map { try AWSEndpoint(url: $0, source: "--endpoint-url") }
        let transport = AWSTransport(maxConnections: maxConnections)
        self.transport = transport
        let chain = CredentialChain(environment: environment, explicitProfile: profile, transport: transport, region: resolved)
        credentials = CredentialProvider { try await chain.resolve() }
    }

    /// The endpoint of `service` in `region`: `--endpoint-url`, `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, or AWS's.
    public func endpoint(service: String, region: String) throws -> AWSEndpoint {
        if let endpointOverride { return endpointOverride }
        return try AWSEndpoint.override(service: service, environment: environment) ?? .standard(service: service, region: region)
    }

    /// A signing client for `service` in `region` (default: the session's).
    public func client(service: String, region: String? = nil, retry: RetryPolicy = RetryPolicy()) throws -> AWSClient {
        let r = region ?? self.region
        return AWSClient(service: service, region: r, endpoint: try endpoint(service: service, region: r), transport: transport,
                         credentials: credentials, retry: retry, statistics: statistics)
    }

    public func shutdown() async { await transport.shutdown() }
}
