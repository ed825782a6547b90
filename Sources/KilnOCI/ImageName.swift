import KilnDigest

/// Image references (`HOST[:PORT]/REPO[:TAG][@DIGEST]`), checked against the distribution grammar and
/// normalised the way containerd's CRI plugin and kubelet name them.
///
/// `busybox:1.36` is `docker.io/library/busybox:1.36`; `org/app` is `docker.io/org/app:latest`;
/// `registry.example.com/app:v1` stays as written; digests are kept. The one parser of image references: the
/// names a recipe gives images and the `docker://` sources both go through it.
public struct ImageName: Sendable, Hashable, CustomStringConvertible {
    /// `docker.io/library/busybox`
    public var repository: String
    public var tag: String?
    public var digest: String?

    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case invalid(String, reason: String)
        public var description: String {
            switch self {
            case .invalid(let s, let reason): return "'\(s)' is not a valid image reference: \(reason)"
            }
        }
    }

    public init(parsing text: String) throws {
        func invalid(_ reason: String) -> Error { .invalid(text, reason: reason) }
        var rest = Substring(text)
        guard !rest.isEmpty else { throw invalid("it is empty") }
        guard rest.utf8.count <= 4096 else { throw invalid("it is longer than 4096 bytes") }
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            guard d.hasPrefix("sha256:"), (try? Digest(parsing: d)) != nil else {
                throw invalid("the digest must be sha256: and 64 lowercase hex digits")
            }
            digest = d
            rest = rest[..<at]
        }
        // A tag is after the last colon that follows the last slash (a colon before it is a registry port).
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let t = String(rest[rest.index(after: colon)...])
            guard Self.isTag(t) else { throw invalid("the tag '\(t)' must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'") }
            tag = t
            rest = rest[..<colon]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !components.isEmpty, !components.contains("") else { throw invalid("empty path component") }
        let first = components[0]
        let hasRegistry = components.count > 1 && (first.contains(".") || first.contains(":") || first == "localhost")
        var host = "docker.io"
        if hasRegistry {
            host = components.removeFirst()
            guard Self.isHost(host) else { throw invalid("'\(host)' is not a registry host[:port]") }
            if host == "index.docker.io" || host == "registry-1.docker.io" { host = "docker.io" }
        }
        if host == "docker.io" && components.count == 1 { components.insert("library", at: 0) }
        for c in components where !Self.isPathComponent(c) {
            throw invalid("the repository component '\(c)' must be lowercase letters and digits separated by '.', '_', '__' or '-'")
        }
        if tag == nil && digest == nil { tag = "latest" }
        repository = host + "/" + components.joined(separator: "/")
        guard repository.utf8.count <= 255 else { throw invalid("the repository name is longer than 255 bytes") }
    }

    /// The registry host (`docker.io`, `registry.example.com:5000`).
    public var host: String { String(repository.split(separator: "/", maxSplits: 1).first ?? "") }
    /// The repository path without the host (`library/busybox`).
    public var path: String { String(repository.split(separator: "/", maxSplits: 1).dropFirst().first ?? "") }

    /// What the registry's API is asked for: the digest when there is one, else the tag.
    public var apiReference: String { digest ?? tag ?? "latest" }

    public var description: String {
        var s = repository
        if let tag { s += ":" + tag }
        if let digest { s += "@" + digest }
        return s
    }

    // The grammar of github.com/distribution/reference.
    static func isTag(_ t: String) -> Bool {
        let u = Array(t.utf8)
        guard (1...128).contains(u.count) else { return false }
        func word(_ c: UInt8) -> Bool { isAlnum(c) || c == UInt8(ascii: "_") }
        return word(u[0]) && u.dropFirst().allSatisfy { word($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    static func isPathComponent(_ c: String) -> Bool {
        let u = Array(c.utf8)
        guard let f = u.first, let l = u.last, isLowerAlnum(f), isLowerAlnum(l) else { return false }
        var i = 0
        while i < u.count {
            if isLowerAlnum(u[i]) { i += 1; continue }
            // A separator: '.', '_', '__' or one or more '-', always between alphanumerics.
            var j = i
            if u[i] == UInt8(ascii: "-") {
                while j < u.count && u[j] == UInt8(ascii: "-") { j += 1 }
            } else if u[i] == UInt8(ascii: "_") {
                j += (i + 1 < u.count && u[i + 1] == UInt8(ascii: "_")) ? 2 : 1
            } else if u[i] == UInt8(ascii: ".") {
                j += 1
            } else {
                return false
            }
            guard j < u.count, isLowerAlnum(u[j]) else { return false }
            i = j
        }
        return true
    }

    static func isHost(_ h: String) -> Bool {
        var name = Substring(h)
        if let colon = h.lastIndex(of: ":"), !h.hasSuffix("]") {
            let port = h[h.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber), let n = Int(port), n <= 65535 else { return false }
            name = h[..<colon]
        }
        if name.hasPrefix("[") && name.hasSuffix("]") { return name.count > 2 }
        return !name.isEmpty && name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let u = Array(label.utf8)
            guard let f = u.first, let l = u.last, isAlnum(f), isAlnum(l) else { return false }
            return u.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "-") }
        }
    }

    static func isAlnum(_ c: UInt8) -> Bool { isLowerAlnum(c) || (c >= 65 && c <= 90) }
    static func isLowerAlnum(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 97 && c <= 122) }
}
