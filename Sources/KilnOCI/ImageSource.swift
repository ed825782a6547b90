import Foundation

/// Where images come from, written the way skopeo users write it:
/// `oci:PATH[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REPO:TAG]`, `docker://HOST/REPO:TAG` or
/// `docker://HOST/REPO@sha256:...` (a registry), or a bare path.
public struct ImageSource: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable {
        case ociLayout = "oci"
        case ociArchive = "oci-archive"
        case dockerArchive = "docker-archive"
        /// A registry: `path` is the normalised image reference (``ImageName``).
        case registry = "docker"
    }

    public var kind: Kind
    public var path: String
    /// The tag (`org.opencontainers.image.ref.name`) or `repo:tag` selecting one image; nil selects every tagged image.
    public var reference: String?

    public enum Error: Swift.Error, CustomStringConvertible {
        case empty
        case unknownTransport(String)
        case notFound(String)
        case undetectable(String)
        case notALayout(String)

        public var description: String {
            switch self {
            case .empty: return "empty image source"
            case .unknownTransport(let t):
                return "unknown source transport '\(t):' (use docker://, oci:, oci-archive: or docker-archive:, or a plain path)"
            case .notFound(let p): return "\(p): no such file or directory"
            case .notALayout(let p): return "\(p) is a directory but not an OCI image layout (no oci-layout or index.json in it)"
            case .undetectable(let p):
                return "\(p) is neither an OCI image layout (no oci-layout file) nor an image archive (no manifest.json or index.json inside)"
            }
        }
    }

    public init(kind: Kind, path: String, reference: String? = nil) {
        self.kind = kind
        self.path = path
        self.reference = reference
    }

    /// Parses a source string; bare paths are detected by looking at the file system.
    public init(parsing text: String) throws {
        guard !text.isEmpty else { throw Error.empty }
        if text.hasPrefix("docker://") {
            let name = try ImageName(parsing: String(text.dropFirst("docker://".count)))
            self.init(kind: .registry, path: name.description)
            return
        }
        for kind in [Kind.ociArchive, .dockerArchive, .ociLayout] where text.hasPrefix(kind.rawValue + ":") {
            let rest = String(text.dropFirst(kind.rawValue.count + 1))
            // The path ends at the first colon; everything after is the reference (which may hold colons).
            if let colon = rest.firstIndex(of: ":") {
                let ref = String(rest[rest.index(after: colon)...])
                self.init(kind: kind, path: String(rest[..<colon]), reference: ref.isEmpty ? nil : ref)
            } else {
                self.init(kind: kind, path: rest)
            }
            return
        }
        if let colon = text.firstIndex(of: ":"), !FileManager.default.fileExists(atPath: text) {
            let transport = String(text[..<colon])
            if !transport.contains("/"), ["docker", "containers-storage", "dir", "docker-daemon", "http", "https"].contains(transport) {
                throw Error.unknownTransport(transport)
            }
        }
        self.init(kind: try Self.detect(path: text), path: text)
    }

    /// Guesses the kind of a bare path.
    public static func detect(path: String) throws -> Kind {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw Error.notFound(path) }
        if isDir.boolValue {
            if FileManager.default.fileExists(atPath: path + "/oci-layout") || FileManager.default.fileExists(atPath: path + "/index.json") {
                return .ociLayout
            }
            throw Error.notALayout(path)
        }
        let index: TarIndex
        do { index = try TarIndex(path: path) } catch let e as TarIndex.Error {
            // A tar that is compressed, cut short or carries an impossible size says so; only a file that is
            // not a tar at all is "undetectable".
            if case .notATar = e { throw Error.undetectable(path) }
            throw e
        }
        if index.location(of: "manifest.json") != nil { return .dockerArchive }
        if index.location(of: "index.json") != nil { return .ociArchive }
        throw Error.undetectable(path)
    }

    /// The image reference of a registry source.
    public var imageName: ImageName? {
        kind == .registry ? try? ImageName(parsing: path) : nil
    }

    public var description: String {
        if kind == .registry { return "docker://" + path }
        if let reference { return "\(kind.rawValue):\(path):\(reference)" }
        return "\(kind.rawValue):\(path)"
    }
}
