import KilnCore

/// Why talking to a registry failed. Messages name the host, the repository and the HTTP status, and say what
/// to try; they never carry credentials or tokens.
public enum RegistryError: Swift.Error, CustomStringConvertible, Sendable {
    /// The registry refused the credentials kiln found, or asked for some and there were none (exit 2).
    case unauthorized(host: String, repository: String, status: Int, detail: String)
    /// The repository, tag or digest does not exist there (exit 2).
    case notFound(host: String, repository: String, reference: String, detail: String)
    /// The registry is down, unreachable or kept failing after retries (exit 3).
    case unavailable(host: String, detail: String)
    /// The registry answered something a registry must not (exit 3): not the distribution API, a bad redirect,
    /// a range it did not honour.
    case protocolViolation(host: String, detail: String)
    /// The manifest is not what its digest says (exit 1).
    case digestMismatch(host: String, repository: String, reference: String, expected: String, actual: String)
    /// An auth file or credential helper that cannot be used (exit 2 for a malformed file, 3 for a helper that fails).
    case credentials(String, exit: ExitStatus)
    /// A TLS option or certificate directory that cannot be used (exit 2).
    case tls(String)
    /// The TLS connection failed: an untrusted or wrong certificate, or a server that does not speak TLS (exit 3).
    case tlsFailed(host: String, detail: String)
    /// The blob cache cannot be written (exit 3).
    case cache(String)
    /// `--offline`, and the cache does not hold what the image needs (exit 2).
    case notCached(name: String, detail: String)

    public var description: String {
        switch self {
        case .unauthorized(let host, let repo, let status, let detail):
            return "\(host)/\(repo): access denied (HTTP \(status)): \(detail)"
        case .notFound(let host, let repo, let reference, let detail):
            return "\(host)/\(repo):\(reference) not found: \(detail)"
        case .unavailable(let host, let detail): return "registry \(host) is unavailable: \(detail)"
        case .protocolViolation(let host, let detail): return "registry \(host): \(detail)"
        case .digestMismatch(let host, let repo, let reference, let expected, let actual):
            return "\(host)/\(repo)@\(reference): manifest digest mismatch (expected \(expected), got \(actual))"
        case .tlsFailed(let host, let detail):
            return "registry \(host): TLS failed: \(detail) (give the registry's CA with --cert-dir DIR or in /etc/containers/certs.d/\(host)/, or use --tls-verify=false; a registry that requires a client certificate needs its pair, NAME.cert and NAME.key, in that directory)"
        case .credentials(let m, _), .tls(let m), .cache(let m): return m
        case .notCached(let name, let detail):
            return "\(name): \(detail), and --offline allows no registry to be asked (run once without --offline to fill the cache)"
        }
    }
}

extension RegistryError: KilnError {
    public var exitStatus: ExitStatus {
        switch self {
        case .unauthorized, .notFound, .tls, .notCached: return .input
        case .unavailable, .protocolViolation, .cache, .tlsFailed: return .environment
        case .digestMismatch: return .verificationFailed
        case .credentials(_, let exit): return exit
        }
    }
}
