import Foundation
import KilnCore
import KilnDigest
import KilnOCI
import KilnPlan

/// A bake recipe (YAML): which images go on the volume, for which platforms, how the volume is laid out, what
/// the manifest records, and defaults for `kiln plan`.
///
/// ```yaml
/// name: example
/// platform: linux/amd64            # or platforms: [linux/amd64, linux/arm64]
/// images:
///   - source: oci:fixtures/example-oci:app:v1
///     names: [registry.example.com/app:v1]
/// volume:
///   layout: bottlerocket           # bottlerocket | containerd | rootfs
///   size: auto                     # or e.g. 20GiB
///   keepLayerBlobs: true
///   namespace: k8s.io
///   base: ../previous-bake      # optional: keep a previous bake's places (incremental)
/// manifest:
///   fileDigest: false
/// plan:
///   deadline: 7m
/// ```
///
/// Recipes are read strictly (``init(path:)``): an unknown key at any level is an input error naming its full
/// path and the closest valid key.
public struct Recipe: Sendable {
    public struct Image: Sendable, Hashable {
        public var source: String
        public var names: [String]?

        public init(source: String, names: [String]? = nil) {
            self.source = source
            self.names = names
        }
    }

    public enum Layout: String, Sendable, Codable, CaseIterable {
        case rootfs
        case containerd
        case bottlerocket
    }

    public var name: String
    public var platforms: [Platform]
    public var images: [Image]
    public var layout: Layout
    public var size: VolumeSize
    public var keepLayerBlobs: Bool
    public var namespace: String
    /// Whether the manifest records the sha256 of the whole image file (`manifest.fileDigest`, default false).
    /// It is a sequential pass over the whole image that can only start once the image is complete, while the
    /// block digests, which identify the content without it, are taken as the image is written.
    public var fileDigest = false
    /// `cache:`: an OCI layout keeping the blobs fetched from registries (`--cache` overrides it), resolved
    /// against the recipe's directory.
    public var cache: String?
    /// `volume.base`: a previous bake (its output directory or its `manifest.json`) whose places this bake
    /// keeps, so that only what changed lands on new blocks (`--base` overrides it); resolved against the
    /// recipe's directory.
    public var base: String?
    /// `volume.baseOptional`: bake without the base, with a warning, when it cannot be followed (`--base-optional`).
    public var baseOptional = false
    /// Defaults for `kiln plan` (the `plan:` section), paths already resolved against the recipe's directory.
    public var plan = PlanOptions()
    /// sha256 of the recipe file as written (nil for recipes built from command-line options).
    public var digest: Digest?
    /// The recipe file, when there is one.
    public var path: String?
    /// Where relative source paths are looked up when they do not exist from the working directory.
    public var baseDirectory: String?

    /// `auto` or an explicit byte count.
    public enum VolumeSize: Sendable, Hashable, CustomStringConvertible {
        case automatic
        case bytes(UInt64)

        /// Parses `auto` or a size (``Quantity``: `20GiB`, `500M`, `1048576`) of at most ``largest``.
        public init(parsing text: String) throws(QuantityError) {
            if text.trimmingCharacters(in: .whitespaces).lowercased() == "auto" {
                self = .automatic
                return
            }
            let bytes = try Quantity.bytes(text)
            guard bytes > 0 else { throw .notPositive(text) }
            guard bytes <= Self.largest else { throw .tooLarge(text) }
            self = .bytes(bytes)
        }

        /// The largest EBS volume (64 TiB): a larger image could not become a snapshot.
        public static let largest: UInt64 = 64 << 40

        public var description: String {
            switch self {
            case .automatic: return "auto"
            case .bytes(let n): return "\(n)"
            }
        }
    }

    /// The valid containerd namespace characters (containerd's `namespaces.Validate`: letters, digits, `.`,
    /// `_` and `-`, starting with a letter or digit).
    public static func isValidNamespace(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first.isASCIIAlphanumeric, text.utf8.count <= 76 else { return false }
        return text.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || $0 == "." || $0 == "-" || $0 == "_" }
    }

    public init(name: String, platforms: [Platform], images: [Image], layout: Layout, size: VolumeSize,
                keepLayerBlobs: Bool = true, namespace: String = "k8s.io") {
        self.name = name
        self.platforms = platforms
        self.images = images
        self.layout = layout
        self.size = size
        self.keepLayerBlobs = keepLayerBlobs
        self.namespace = namespace
    }

    /// Why a recipe cannot be used.
    public enum Error: KilnError, Equatable {
        case notFound(String)
        case unreadable(String, String)
        case malformed(String, String)
        /// A value that does not read: the file, the key's full path, and why.
        case invalid(file: String?, key: String, String)
        /// A key the recipe does not have: the file, the key's full path, and the closest valid key.
        case unknownKey(file: String, key: String, closest: String?, valid: [String])
        case duplicateKey(file: String, key: String)
        /// A `plan:` value that does not read; the message names the key and file.
        case plan(PlanError)

        public var exitStatus: ExitStatus {
            switch self {
            case .unreadable: return .environment
            case .plan(let e): return e.exitStatus
            default: return .input
            }
        }

        public var description: String {
            switch self {
            case .notFound(let p): return "\(p): no such recipe file"
            case .unreadable(let p, let e): return "\(p): cannot read recipe: \(e)"
            case .malformed(let p, let e): return "\(p): malformed recipe: \(e)"
            case .invalid(let file, let key, let e): return "\(file.map { "\($0): " } ?? "")\(key): \(e)"
            case .unknownKey(let file, let key, let closest, let valid):
                let hint = closest.map { "did you mean '\($0)'?" } ?? "valid keys: \(valid.joined(separator: ", "))"
                return "\(file): unknown key '\(key)' (\(hint))"
            case .duplicateKey(let file, let key): return "\(file): key '\(key)' is given twice"
            case .plan(let e): return e.description
            }
        }
    }
}

extension Unicode.Scalar {
    var isASCIIAlphanumeric: Bool { isASCII && (properties.isAlphabetic || ("0"..."9").contains(self)) }
}

extension Recipe {
    /// The source of `image`, parsed; a relative path that is not there from the working directory is looked
    /// up beside the recipe.
    public func source(of image: Image) throws -> ImageSource {
        let fm = FileManager.default
        let text = image.source
        if let base = baseDirectory, let parsed = try? ImageSource(parsing: text), parsed.kind != .registry,
           !parsed.path.hasPrefix("/"), !fm.fileExists(atPath: parsed.path), fm.fileExists(atPath: base + "/" + parsed.path) {
            return ImageSource(kind: parsed.kind, path: base + "/" + parsed.path, reference: parsed.reference)
        }
        do {
            return try ImageSource(parsing: text)
        } catch {
            // A bare path that only exists beside the recipe.
            if let base = baseDirectory, !text.hasPrefix("/"), !text.contains(":"), fm.fileExists(atPath: base + "/" + text) {
                return try ImageSource(parsing: base + "/" + text)
            }
            throw error
        }
    }
}
