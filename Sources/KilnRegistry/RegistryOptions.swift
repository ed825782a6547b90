import Foundation
import KilnCore

/// How kiln reaches registries: credentials, TLS, the blob cache, and how hard to try.
public struct RegistryOptions: Sendable {
    /// `--authfile`; nil: `REGISTRY_AUTH_FILE`, then the standard files.
    public var authFile: String?
    /// `--cert-dir`: CAs (`*.crt`) and a client certificate (`*.cert` + `*.key`) for every registry; nil:
    /// `/etc/containers/certs.d/HOST[:PORT]/` and `/etc/docker/certs.d/HOST[:PORT]/`.
    public var certDirectory: String?
    /// `--tls-verify=false`: accept any certificate, and plain HTTP, for every registry. Loopback registries
    /// may always fall back to plain HTTP.
    public var tlsVerify: Bool = true
    /// `--cache DIR`: an OCI layout keeping every blob fetched, so the next bake of the same images transfers
    /// no blob again.
    public var cacheDirectory: String?
    /// `--offline`: never contact a registry. Tags resolve to the digest the cache recorded when it last fetched
    /// them, and every blob must be in the cache; anything missing is refused naming it.
    public var offline: Bool = false
    /// Where warnings go (a tag resolved from the cache because its registry was unreachable), if anywhere.
    public var warn: (@Sendable (String) -> Void)?
    /// Layers fetched at once ahead of the one being unpacked.
    public var layersInFlight: Int = 4
    /// Waits between attempts of a request that failed in a way worth retrying (408, 429, 5xx, a reset).
    public var retryDelays: [Double] = [1, 3, 9]
    /// Bytes a fetched layer may hold in memory ahead of the unpacking (the rest waits in the connection).
    public var bufferPerLayer: Int = 16 << 20
    public var connectTimeout: Double = 30
    /// The longest a connection may stay silent while a body is read.
    public var readTimeout: Double = 60
    /// Where each layer download reports its bytes (a progress display), if anywhere.
    public var transfers: TransferBoard?
    /// Where the credential store, helpers and `HOME` come from.
    public var environment: [String: String] = ProcessInfo.processInfo.environment

    public init() {}
}
