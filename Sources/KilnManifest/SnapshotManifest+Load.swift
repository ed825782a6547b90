import Foundation
import KilnCore

extension SnapshotManifest {
    /// Errors raised when a manifest cannot be read.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case missing(String)
        case unreadable(String, String)
        case invalid(String, String)
        case unsupportedSchema(String, Int)
        /// Longer than ``SnapshotManifest/maximumFileSize``: refused before it is read.
        case tooLarge(String, length: UInt64, limit: UInt64)

        public var description: String {
            switch self {
            case .missing(let p): return "manifest '\(p)' does not exist"
            case .unreadable(let p, let why): return "cannot read manifest '\(p)': \(why)"
            case .invalid(let p, let why): return "'\(p)' is not a valid kiln snapshot manifest: \(why)"
            case .unsupportedSchema(let p, let v):
                return "manifest '\(p)' has schemaVersion \(v); this kiln reads schemaVersion \(SnapshotManifest.currentSchemaVersion)"
            case .tooLarge(let p, let length, let limit):
                return "manifest '\(p)' is \(length) bytes, past the \(limit)-byte budget for a manifest (kiln's manifests of a million files are a few MB): refused before it is read"
            }
        }
    }

    /// Decodes a manifest from its bytes; `name` is used in errors.
    public init(decoding data: Data, name: String) throws {
        struct Version: Decodable { var schemaVersion: Int }
        do {
            let version = try JSONDecoder().decode(Version.self, from: data).schemaVersion
            guard version == Self.currentSchemaVersion else { throw Error.unsupportedSchema(name, version) }
            self = try JSONDecoder().decode(SnapshotManifest.self, from: data)
            // Foundation keeps the first of a repeated key, Python and jq the last: one manifest must not say
            // two things to the tools that check it.
            if let key = JSONDuplicateKeys.first(in: [UInt8](data)) {
                throw Error.invalid(name, "key '\(key)' is given twice; readers disagree on which one counts")
            }
            if let problem = shapeProblem { throw Error.invalid(name, problem) }
        } catch let error as Error {
            throw error
        } catch let error as DecodingError {
            // Foundation reports a number that does not fit its field (negative, fractional, too large) as
            // invalid JSON with no path; JSON that parses cannot be invalid, so say what it is.
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
               (try? JSONSerialization.jsonObject(with: data)) != nil {
                throw Error.invalid(name, "a number does not fit its field (negative, fractional or too large where a whole count is expected)")
            }
            throw Error.invalid(name, Self.explain(error))
        } catch {
            // Values that decode their own text (digests, block lists) throw their own errors.
            throw Error.invalid(name, "\(error)")
        }
    }

    /// What no manifest kiln writes can hold, checked before anything is read by it: a block size the hasher
    /// cannot use, and files named anywhere but beside the manifest (a hostile manifest must not send `verify`
    /// or `upload` to read `/dev/sda` or `../../secret`).
    var shapeProblem: String? {
        if blocks.size <= 0 || blocks.size % 4096 != 0 || blocks.size > BlockHasher.maximumBlockSize {
            return "bad value at 'blocks.size': \(blocks.size) is not a multiple of 4096 between 4096 and \(BlockHasher.maximumBlockSize)"
        }
        var named = [("volume.file", volume.file), ("blockDigests.file", blockDigests.file)]
        if let p = placement { named.append(("placement.file", p.file)) }
        if let b = base { named.append(("base.changes.file", b.changes.file)) }
        for (field, file) in named where !Self.isPlainFileName(file) {
            return "bad value at '\(field)': '\(file)' is not a file name beside the manifest"
        }
        return nil
    }

    static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.utf8.contains(0x2F) && !name.utf8.contains(0)
    }

    /// The longest manifest kiln reads, 256 MiB. A manifest lists at most a few thousand files one by one and
    /// its block runs stay short, so a real one is a few MB; the budget keeps a hostile one from costing gigabytes
    /// of memory in the decoder.
    public static let maximumFileSize: UInt64 = 256 << 20

    /// Reads and decodes the manifest at `path`.
    public static func load(path: String) throws -> SnapshotManifest {
        try loadWithBytes(path: path).manifest
    }

    /// Reads and decodes the manifest at `path`, returning the bytes it was decoded from as well (their digest
    /// identifies the manifest). The file must be a regular file within ``maximumFileSize``: a FIFO or a device
    /// named `manifest.json` is refused instead of read forever.
    public static func loadWithBytes(path: String) throws -> (manifest: SnapshotManifest, bytes: [UInt8]) {
        let bytes: [UInt8]
        do {
            let file = try InputFile(path: path)
            bytes = try file.readAll(limit: maximumFileSize)
        } catch {
            switch error {
            case .missing: throw Error.missing(path)
            case .notARegularFile("a directory"): throw Error.invalid(path, "it is a directory (give the manifest.json in it)")
            case .tooLarge(let length, let limit): throw Error.tooLarge(path, length: length, limit: limit)
            case .notARegularFile, .sparse: throw Error.invalid(path, "it \(error)")
            case .unreadable(let why): throw Error.unreadable(path, why)
            case .changed: throw Error.unreadable(path, "it \(error)")
            }
        }
        return (try SnapshotManifest(decoding: Data(bytes), name: path), bytes)
    }

    /// The path of the sidecar of the manifest at `manifestPath`.
    public func sidecarPath(manifestPath: String) -> String {
        URL(fileURLWithPath: manifestPath).deletingLastPathComponent().appendingPathComponent(blockDigests.file).path
    }

    /// The path of the image of the manifest at `manifestPath`.
    public func imagePath(manifestPath: String) -> String {
        URL(fileURLWithPath: manifestPath).deletingLastPathComponent().appendingPathComponent(volume.file).path
    }

    static func explain(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, _ extra: [CodingKey] = []) -> String {
            let p = (context.codingPath + extra).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return p.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing '\(path(context, [key]))'"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return "not valid JSON" + (context.underlyingError.map { " (\($0.localizedDescription))" } ?? "")
            }
            return "bad value at '\(path(context))': \(context.debugDescription)"
        case .typeMismatch(let type, let context): return "'\(path(context))' is not a \(type)"
        case .valueNotFound(let type, let context): return "'\(path(context))' is null, expected a \(type)"
        @unknown default: return "\(error)"
        }
    }
}
