import Foundation
import KilnCore

/// The model files every node loads from EFS.
public struct ModelSet: Sendable, Hashable, Codable {
    public struct File: Sendable, Hashable, Codable {
        public var path: String
        public var bytes: UInt64

        public init(path: String, bytes: UInt64) {
            self.path = path
            self.bytes = bytes
        }
    }

    public var files: [File]

    public init(files: [File]) { self.files = files }

    /// One file of `bytes`, for `--model-bytes` (no listing): only byte-range streaming can split it.
    public static func single(bytes: UInt64, path: String = "models") -> ModelSet {
        bytes == 0 ? ModelSet(files: []) : ModelSet(files: [File(path: path, bytes: bytes)])
    }

    public var totalBytes: UInt64 { files.reduce(0) { $0 + $1.bytes } }

    /// Parses a listing: one file a line, the size last (`path size`, `path<TAB>size` or `path,size`; sizes
    /// as in ``ByteSize``). Blank lines and lines starting with `#` are skipped; a first line whose size
    /// does not parse is taken as a header.
    public static func parseListing(_ text: String, source: String) throws -> ModelSet {
        var files: [File] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let split = line.lastIndex(where: { $0 == " " || $0 == "\t" || $0 == "," }) else {
                throw Error.badLine(source: source, line: index + 1, text: line)
            }
            let path = line[..<split].trimmingCharacters(in: CharacterSet(charactersIn: " \t,"))
            let sizeText = String(line[line.index(after: split)...])
            guard let size = try? ByteSize(parsing: sizeText), !path.isEmpty else {
                if files.isEmpty && index == 0 { continue }
                throw Error.badLine(source: source, line: index + 1, text: line)
            }
            files.append(File(path: path, bytes: size.bytes))
        }
        return ModelSet(files: files)
    }

    /// Reads a listing file, or scans a directory for regular files (recursively, symlinks not followed)
    /// and records their sizes relative to it.
    public static func load(from path: String) throws -> ModelSet {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw Error.missing(path)
        }
        if isDirectory.boolValue {
            return try scan(directory: path)
        }
        guard let data = PlanFile.read(path) else { throw Error.unreadable(path) }
        guard let text = String(data: data, encoding: .utf8) else { throw Error.notText(path) }
        return try parseListing(text, source: path)
    }

    static func scan(directory: String) throws -> ModelSet {
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        let keys: [URLResourceKey] = [.isRegularFileKey, .fileSizeKey]
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: keys) else {
            throw Error.unreadable(directory)
        }
        var files: [File] = []
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        for case let url as URL in walker {
            let values = try? url.resourceValues(forKeys: Set(keys))
            guard values?.isRegularFile == true, let size = values?.fileSize else { continue }
            let full = url.standardizedFileURL.path
            let relative = full.hasPrefix(prefix) ? String(full.dropFirst(prefix.count)) : full
            files.append(File(path: relative, bytes: UInt64(max(0, size))))
        }
        files.sort { $0.path < $1.path }
        return ModelSet(files: files)
    }

    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case missing(String)
        case unreadable(String)
        case notText(String)
        case badLine(source: String, line: Int, text: String)

        public var description: String {
            switch self {
            case .missing(let path): return "model listing '\(path)' does not exist"
            case .unreadable(let path): return "model listing '\(path)' cannot be read"
            case .notText(let path): return "model listing '\(path)' is not UTF-8 text"
            case .badLine(let source, let line, let text):
                return "model listing '\(source)' line \(line): expected 'path size' (e.g. 'model-00001.safetensors 4.9GB'), got '\(text)'"
            }
        }
    }
}
