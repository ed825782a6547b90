import Foundation
import KilnDigest

/// The per-block digest sidecar (`manifest.blocks`): the index and sha256 of every written block, in a compact
/// binary form whose sha256 the manifest records.
///
/// Format, all integers little-endian:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `KILNBLKS` |
/// | 8 | 4 | format version, 1 |
/// | 12 | 4 | block size in bytes (524288) |
/// | 16 | 8 | block count of the volume (written or not) |
/// | 24 | 8 | entry count N |
/// | 32 | 40 x N | entries: block index (u64), then the block's 32 raw sha256 bytes |
///
/// Entries are sorted by strictly ascending block index, each below the block count; the file ends right after
/// the last entry. A 200 GB volume with 380,000 written blocks needs 15 MB.
public struct BlockDigestFile: Sendable, Hashable {
    /// The default file name beside the manifest.
    public static let defaultFileName = "manifest.blocks"
    /// The format name recorded in ``SnapshotManifest/BlockDigestsReference/format``.
    public static let formatName = "kiln-block-digests-v1"
    /// The magic at the start of the file.
    public static let magic: [UInt8] = Array("KILNBLKS".utf8)
    /// The format version this library reads and writes.
    public static let version: UInt32 = 1
    static let headerSize = 32
    static let entrySize = 8 + SHA256Sum.byteCount

    public var blockSize: Int
    public var blockCount: UInt64
    /// Written blocks, ascending.
    public var entries: [BlockDigest]

    public init(blockSize: Int, blockCount: UInt64, entries: [BlockDigest]) {
        self.blockSize = blockSize
        self.blockCount = blockCount
        self.entries = entries
    }

    /// The sidecar of hashed blocks.
    public init(_ hashes: BlockHashes) {
        self.init(blockSize: hashes.blockSize, blockCount: hashes.blockCount, entries: hashes.written)
    }

    /// Errors raised when a sidecar is malformed.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case missing(String)
        case unreadable(String, String)
        case badMagic(String)
        case unsupportedVersion(String, UInt32)
        case truncatedHeader(String, actual: UInt64)
        case badLength(String, entries: UInt64, actual: UInt64)
        case unsorted(String, entry: UInt64)
        case outOfRange(String, entry: UInt64, index: UInt64, blockCount: UInt64)
        case badBlockSize(String, UInt32)

        public var description: String {
            switch self {
            case .missing(let p): return "block digest file '\(p)' does not exist"
            case .unreadable(let p, let why): return "cannot read block digest file '\(p)': \(why)"
            case .badMagic(let p): return "'\(p)' is not a kiln block digest file (no KILNBLKS magic)"
            case .unsupportedVersion(let p, let v): return "block digest file '\(p)' has format version \(v); this kiln reads version \(BlockDigestFile.version)"
            case .truncatedHeader(let p, let a): return "block digest file '\(p)' is \(a) bytes, shorter than its \(BlockDigestFile.headerSize)-byte header"
            case .badLength(let p, let n, let a):
                return "block digest file '\(p)' is \(a) bytes; its header lists \(n) entries of \(BlockDigestFile.entrySize) bytes after \(BlockDigestFile.headerSize) bytes of header"
            case .unsorted(let p, let n): return "block digest file '\(p)': entry \(n) is not in ascending block order"
            case .outOfRange(let p, let n, let i, let c): return "block digest file '\(p)': entry \(n) names block \(i), past the volume's \(c) blocks"
            case .badBlockSize(let p, let s): return "block digest file '\(p)' has block size \(s)"
            }
        }
    }

    /// The file's bytes.
    public func encoded() -> [UInt8] {
        let total = Self.headerSize + entries.count * Self.entrySize
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            let p = UnsafeMutableRawPointer(buffer.baseAddress!)
            for (i, b) in Self.magic.enumerated() { p.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
            p.storeBytes(of: Self.version.littleEndian, toByteOffset: 8, as: UInt32.self)
            p.storeBytes(of: UInt32(truncatingIfNeeded: blockSize).littleEndian, toByteOffset: 12, as: UInt32.self)
            p.storeBytes(of: blockCount.littleEndian, toByteOffset: 16, as: UInt64.self)
            p.storeBytes(of: UInt64(entries.count).littleEndian, toByteOffset: 24, as: UInt64.self)
            var at = Self.headerSize
            for e in entries {
                p.storeBytes(of: e.index.littleEndian, toByteOffset: at, as: UInt64.self)
                e.sha256.store(to: p + at + 8)
                at += Self.entrySize
            }
            count = total
        }
    }

    /// Parses a sidecar's bytes; `name` is used in errors.
    public init(decoding bytes: UnsafeRawBufferPointer, name: String) throws {
        guard bytes.count >= Self.headerSize, let p = bytes.baseAddress else {
            throw bytes.count >= Self.magic.count && Array(bytes.prefix(Self.magic.count)) == Self.magic
                ? Error.truncatedHeader(name, actual: UInt64(bytes.count)) : Error.badMagic(name)
        }
        guard Array(bytes[0..<8]) == Self.magic else { throw Error.badMagic(name) }
        let version = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard version == Self.version else { throw Error.unsupportedVersion(name, version) }
        let size = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        guard size > 0 else { throw Error.badBlockSize(name, size) }
        let blockCount = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        let n = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        let (body, overflow) = n.multipliedReportingOverflow(by: UInt64(Self.entrySize))
        let (expected, past) = body.addingReportingOverflow(UInt64(Self.headerSize))
        guard !overflow, !past, expected == UInt64(bytes.count) else { throw Error.badLength(name, entries: n, actual: UInt64(bytes.count)) }
        var entries: [BlockDigest] = []
        entries.reserveCapacity(Int(n))
        var at = Self.headerSize
        var previous: UInt64? = nil
        for i in 0..<n {
            let index = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt64.self))
            if let prev = previous, index <= prev { throw Error.unsorted(name, entry: i) }
            guard index < blockCount else { throw Error.outOfRange(name, entry: i, index: index, blockCount: blockCount) }
            entries.append(BlockDigest(index: index, sha256: SHA256Sum(bytesAt: p + at + 8)))
            previous = index
            at += Self.entrySize
        }
        self.init(blockSize: Int(size), blockCount: blockCount, entries: entries)
    }

    /// A sidecar read from disk together with the sha256 and size of its bytes.
    public struct Loaded: Sendable {
        public var file: BlockDigestFile
        public var digest: Digest
        public var size: UInt64
    }

    /// Reads, hashes and parses the sidecar at `path`.
    public static func load(path: String) throws -> Loaded {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw Error.missing(path) }
        guard !isDirectory.boolValue else { throw Error.badMagic(path) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw Error.unreadable(path, error.localizedDescription)
        }
        return try data.withUnsafeBytes { raw in
            let file = try BlockDigestFile(decoding: raw, name: path)
            return Loaded(file: file, digest: Digest(sha256: SHA256Hasher.hashBytes(raw)), size: UInt64(raw.count))
        }
    }

    /// Writes the sidecar atomically to `path` and returns what the manifest records about it.
    @discardableResult
    public func write(to path: String) throws -> SnapshotManifest.BlockDigestsReference {
        let bytes = encoded()
        try ManifestWriter.writeAtomically(bytes, to: path)
        let digest = bytes.withUnsafeBytes { Digest(sha256: SHA256Hasher.hashBytes($0)) }
        return .init(file: (path as NSString).lastPathComponent, digest: digest, size: UInt64(bytes.count))
    }

    /// The LINEAR aggregate checksum of the entries.
    public var linearChecksum: String { LinearChecksum.compute(entries) }
}
