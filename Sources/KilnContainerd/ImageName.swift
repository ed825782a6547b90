/// Image references normalised the way containerd's CRI plugin and kubelet name them.
///
/// `busybox:1.36` is `docker.io/library/busybox:1.36`; `org/app` is `docker.io/org/app:latest`;
/// `registry.example.com/app:v1` stays as written; digests are kept.
public struct ImageName: Sendable, Hashable, CustomStringConvertible {
    /// `docker.io/library/busybox`
    public var repository: String
    public var tag: String?
    public var digest: String?

    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case invalid(String)
        public var description: String {
            switch self {
            case .invalid(let s): return "'\(s)' is not a valid image reference"
            }
        }
    }

    public init(parsing text: String) throws {
        var rest = Substring(text)
        guard !rest.isEmpty, !rest.contains(" "), !rest.hasPrefix("/"), !rest.hasSuffix("/") else { throw Error.invalid(text) }
        if let at = rest.firstIndex(of: "@") {
            digest = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
            guard digest?.hasPrefix("sha256:") == true else { throw Error.invalid(text) }
        }
        // A tag is after the last colon that follows the last slash (a colon before it is a registry port).
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            tag = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
            guard tag?.isEmpty == false else { throw Error.invalid(text) }
        }
        var repo = String(rest)
        guard !repo.isEmpty else { throw Error.invalid(text) }
        let first = repo.split(separator: "/", maxSplits: 1).first.map(String.init) ?? repo
        let hasRegistry = repo.contains("/") && (first.contains(".") || first.contains(":") || first == "localhost")
        if !hasRegistry {
            repo = repo.contains("/") ? "docker.io/" + repo : "docker.io/library/" + repo
        }
        if repo.hasPrefix("index.docker.io/") { repo = "docker.io/" + repo.dropFirst("index.docker.io/".count) }
        if tag == nil && digest == nil { tag = "latest" }
        guard repo == repo.lowercased() else { throw Error.invalid(text) }
        repository = repo
    }

    /// The registry host (`docker.io`, `registry.example.com:5000`).
    public var host: String { String(repository.split(separator: "/", maxSplits: 1).first ?? "") }
    /// The repository path without the host (`library/busybox`).
    public var path: String { String(repository.split(separator: "/", maxSplits: 1).dropFirst().first ?? "") }

    public var description: String {
        var s = repository
        if let tag { s += ":" + tag }
        if let digest { s += "@" + digest }
        return s
    }
}
