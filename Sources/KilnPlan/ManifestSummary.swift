import Foundation

/// The few fields of a `kiln bake` snapshot manifest the planner needs, decoded tolerantly: unknown keys are
/// ignored so the manifest can grow without breaking `plan` and `emit`.
public struct ManifestSummary: Sendable, Hashable, Decodable {
    public var name: String?
    public var snapshotId: String?
    /// The snapshot in each region `kiln upload` put it in: region -> id.
    public var snapshots: [String: String]?
    /// The image (volume) size in bytes.
    public var volumeBytes: UInt64?
    public var layout: String?
    /// Full snapshot size: written blocks x block size.
    public var writtenBytes: UInt64

    public init(name: String? = nil, snapshotId: String? = nil, volumeBytes: UInt64? = nil, layout: String? = nil, writtenBytes: UInt64) {
        self.name = name
        self.snapshotId = snapshotId
        self.volumeBytes = volumeBytes
        self.layout = layout
        self.writtenBytes = writtenBytes
    }

    enum Keys: String, CodingKey { case name, recipe, snapshotId, snapshots, volume, blocks }
    enum RecipeKeys: String, CodingKey { case name }
    enum VolumeKeys: String, CodingKey { case size, layout }
    enum BlockKeys: String, CodingKey { case size, written, writtenBytes }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        // The snapshot manifest names its recipe under `recipe.name`; a top-level `name` is accepted too.
        if let recipe = try? c.nestedContainer(keyedBy: RecipeKeys.self, forKey: .recipe) {
            name = try? recipe.decodeIfPresent(String.self, forKey: .name)
        }
        if name == nil { name = try? c.decodeIfPresent(String.self, forKey: .name) }
        snapshotId = try? c.decodeIfPresent(String.self, forKey: .snapshotId)
        snapshots = try? c.decodeIfPresent([String: String].self, forKey: .snapshots)
        if let volume = try? c.nestedContainer(keyedBy: VolumeKeys.self, forKey: .volume) {
            volumeBytes = try? volume.decodeIfPresent(UInt64.self, forKey: .size)
            layout = try? volume.decodeIfPresent(String.self, forKey: .layout)
        }
        guard let blocks = try? c.nestedContainer(keyedBy: BlockKeys.self, forKey: .blocks) else {
            throw DecodingError.keyNotFound(Keys.blocks, .init(codingPath: c.codingPath, debugDescription: "no 'blocks' object"))
        }
        if let bytes = try? blocks.decodeIfPresent(UInt64.self, forKey: .writtenBytes) {
            writtenBytes = bytes
        } else if let count = try? blocks.decodeIfPresent(UInt64.self, forKey: .written),
            let size = try? blocks.decodeIfPresent(UInt64.self, forKey: .size)
        {
            writtenBytes = count * size
        } else {
            throw DecodingError.keyNotFound(BlockKeys.writtenBytes, .init(codingPath: c.codingPath + [Keys.blocks], debugDescription: "no 'blocks.writtenBytes' (or 'written' and 'size')"))
        }
    }

    /// Reads and decodes a manifest file named by `label` (an option or recipe key), errors typed for their exit code.
    public static func load(path: String, as label: String) throws -> ManifestSummary {
        do {
            return try load(path: path)
        } catch let error as Error {
            if case .unreadable = error { throw PlanError.unreadable(error.description) }
            throw PlanError.invalidInput("\(label): \(error.description)")
        }
    }

    /// Reads and decodes a manifest file.
    public static func load(path: String) throws -> ManifestSummary {
        guard FileManager.default.fileExists(atPath: path) else { throw Error.missing(path) }
        guard let data = PlanFile.read(path) else { throw Error.unreadable(path) }
        do {
            return try JSONDecoder().decode(ManifestSummary.self, from: data)
        } catch let error as DecodingError {
            throw Error.invalid(path, Self.explain(error))
        }
    }

    static func explain(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            let path = (context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
            return "missing '\(path)'"
        case .dataCorrupted(let context):
            return context.underlyingError.map { "not valid JSON (\($0.localizedDescription))" } ?? context.debugDescription
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "unexpected value at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        @unknown default:
            return "\(error)"
        }
    }

    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case missing(String)
        case unreadable(String)
        case invalid(String, String)

        public var description: String {
            switch self {
            case .missing(let path): return "manifest '\(path)' does not exist"
            case .unreadable(let path): return "manifest '\(path)' cannot be read"
            case .invalid(let path, let why): return "manifest '\(path)' is not a kiln snapshot manifest: \(why)"
            }
        }
    }
}
