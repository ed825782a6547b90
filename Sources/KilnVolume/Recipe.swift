import Foundation
import KilnDigest
import KilnOCI
import Yams

/// A bake recipe (YAML): which images go on the volume, for which platforms, and how the volume is laid out.
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
/// ```
public struct Recipe: Sendable {
    public struct Image: Sendable, Decodable {
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

    public struct Volume: Sendable, Decodable {
        public var layout: Layout?
        public var size: String?
        public var keepLayerBlobs: Bool?
        public var namespace: String?
        public var label: String?
    }

    public var name: String
    public var platforms: [Platform]
    public var images: [Image]
    public var layout: Layout
    public var size: VolumeSize
    public var keepLayerBlobs: Bool
    public var namespace: String
    /// Whether the manifest records the sha256 of the whole image file (`manifest.fileDigest`, default true).
    /// It is sequential and can only start once the image is complete, so on a large image it is the longest
    /// part of a bake's hashing; the block digests identify the content without it.
    public var fileDigest = true
    /// sha256 of the recipe file as written (nil for recipes built from command-line options).
    public var digest: Digest?
    /// Where relative source paths are looked up when they do not exist from the working directory.
    public var baseDirectory: String?

    /// `auto` or an explicit byte count.
    public enum VolumeSize: Sendable, Hashable, CustomStringConvertible {
        case automatic
        case bytes(UInt64)

        public init(parsing text: String) throws {
            let t = text.trimmingCharacters(in: .whitespaces)
            if t.lowercased() == "auto" { self = .automatic; return }
            guard let n = Self.parseBytes(t), n > 0 else { throw Error.invalid("volume.size", "'\(text)' is not a size (e.g. auto, 20GiB, 500MB)") }
            self = .bytes(n)
        }

        static func parseBytes(_ text: String) -> UInt64? {
            let units: [(String, UInt64)] = [
                ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
                ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000),
                ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40), ("B", 1),
            ]
            for (suffix, factor) in units where text.hasSuffix(suffix) {
                let number = text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
                guard let v = Double(number), v >= 0, v * Double(factor) < 1.8e19 else { return nil }
                return UInt64((v * Double(factor)).rounded())
            }
            return UInt64(text)
        }

        public var description: String {
            switch self {
            case .automatic: return "auto"
            case .bytes(let n): return "\(n)"
            }
        }
    }

    public enum Error: Swift.Error, CustomStringConvertible {
        case unreadable(String, String)
        case malformed(String, String)
        case invalid(String, String)
        case unknownKey(String, String)

        public var description: String {
            switch self {
            case .unreadable(let p, let e): return "\(p): cannot read recipe: \(e)"
            case .malformed(let p, let e): return "\(p): malformed recipe: \(e)"
            case .invalid(let key, let e): return "recipe \(key): \(e)"
            case .unknownKey(let p, let k): return "\(p): unknown recipe key '\(k)' (known: name, platform, platforms, images, volume, manifest, plan)"
            }
        }
    }

    private struct File: Decodable {
        var name: String?
        var platform: String?
        var platforms: [String]?
        var images: [Image]?
        var volume: Volume?
        var manifest: ManifestOptions?
    }

    private struct ManifestOptions: Decodable {
        var fileDigest: Bool?
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

    /// Loads and validates a recipe file.
    public init(path: String) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw Error.unreadable(path, (error as NSError).localizedFailureReason ?? "no such file or not readable")
        }
        let text = String(decoding: data, as: UTF8.self)
        let file: File
        do {
            if let top = try Yams.load(yaml: text) as? [String: Any] {
                for key in top.keys where !["name", "platform", "platforms", "images", "volume", "manifest", "plan"].contains(key) {
                    throw Error.unknownKey(path, key)
                }
            } else {
                throw Error.malformed(path, "expected a mapping at the top level")
            }
            file = try YAMLDecoder().decode(File.self, from: text)
        } catch let e as Error {
            throw e
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw Error.malformed(path, "wrong type at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'")
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw Error.malformed(path, "missing '\((ctx.codingPath + [key]).map(\.stringValue).joined(separator: "."))'")
        } catch {
            throw Error.malformed(path, "\(error)".split(separator: "\n").first.map(String.init) ?? "invalid YAML")
        }
        guard let images = file.images, !images.isEmpty else { throw Error.invalid("images", "list at least one image") }
        var platforms: [Platform] = []
        for text in (file.platforms ?? []) + (file.platform.map { [$0] } ?? []) {
            do { platforms.append(try Platform(parsing: text)) } catch { throw Error.invalid("platform", "\(error)") }
        }
        let volume = file.volume
        self.init(
            name: file.name ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent,
            platforms: platforms.isEmpty ? [Platform.host] : platforms,
            images: images,
            layout: volume?.layout ?? .bottlerocket,
            size: try VolumeSize(parsing: volume?.size ?? "auto"),
            keepLayerBlobs: volume?.keepLayerBlobs ?? true,
            namespace: volume?.namespace ?? "k8s.io")
        self.fileDigest = file.manifest?.fileDigest ?? true
        self.digest = SHA256Hasher.hash(Array(data))
        self.baseDirectory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        for (i, image) in images.enumerated() where image.source.isEmpty {
            throw Error.invalid("images[\(i)].source", "is empty")
        }
    }
}
