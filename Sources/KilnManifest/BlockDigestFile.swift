import Foundation
import KilnCore
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
        /// The sidecar's block size or count is not its manifest's.
        case doesNotFitManifest(String, String)
        /// Not a regular file (a symlink, a directory, a device).
        case notARegularFile(String, String)
        /// Far longer than what the filesystem stores for it: a file with holes, which kiln never writes.
        case sparse(String, length: UInt64, stored: UInt64)

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
            case .doesNotFitManifest(let p, let why): return "block digest file '\(p)' is not its manifest's: \(why)"
            case .notARegularFile(let p, let what): return "block digest file '\(p)' is \(what), not a regular file"
            case .sparse(let p, let length, let stored):
                return "block digest file '\(p)' is \(length) bytes long but only \(stored) bytes of it are stored: it has holes, and kiln writes none (refused before reading it into memory)"
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
        try self.init(decoding: bytes, name: name, fileLength: UInt64(bytes.count))
    }

    /// Parses a sidecar whose whole length is `fileLength`: `bytes` may be its header alone, which is then
    /// checked against that length (a mismatch throws before any entry is read).
    init(decoding bytes: UnsafeRawBufferPointer, name: String, fileLength: UInt64) throws {
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
        guard !overflow, !past, expected == fileLength else { throw Error.badLength(name, entries: n, actual: fileLength) }
        guard fileLength == UInt64(bytes.count) else { throw Error.truncatedHeader(name, actual: UInt64(bytes.count)) }
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
    ///
    /// The sidecar is input like the manifest: it is opened without following a symlink, must be a regular
    /// file, and its header is read first, so a file whose length is not what the header lists is refused
    /// before its body is read (a sparse terabyte named `manifest.blocks` costs nothing), and so is one whose
    /// header agrees with a length mostly made of holes.
    public static func load(path: String) throws -> Loaded {
        let file: InputFile
        do { file = try InputFile(path: path, followSymlink: false) } catch { throw Self.error(error, path: path) }
        let size = file.length
        var header = [UInt8](repeating: 0, count: headerSize)
        let got: Int
        do { got = try file.read(into: &header, at: 0) } catch { throw Self.error(error, path: path) }
        if got >= magic.count, Array(header[0..<magic.count]) != magic { throw Error.badMagic(path) }
        let declared: UInt64? = got == headerSize && Array(header[0..<8]) == magic
            ? header.withUnsafeBytes { raw in
                let n = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
                let (body, o1) = n.multipliedReportingOverflow(by: UInt64(entrySize))
                let (total, o2) = body.addingReportingOverflow(UInt64(headerSize))
                return o1 || o2 ? UInt64.max : total
            } : nil
        if let declared, declared != size {
            // The decoder gives the precise refusal from the header alone.
            _ = try header.withUnsafeBytes { try BlockDigestFile(decoding: $0, name: path, fileLength: size) }
        }
        // A header and a length that agree can still claim a terabyte of holes: the body is read whole, so a file
        // that stores far less than its length is refused before memory is set aside for it.
        let bytes: [UInt8]
        do { bytes = try file.readAll(limit: UInt64(Int.max)) } catch { throw Self.error(error, path: path) }
        return try bytes.withUnsafeBytes { raw in
            let file = try BlockDigestFile(decoding: raw, name: path)
            return Loaded(file: file, digest: Digest(sha256: SHA256Hasher.hashBytes(raw)), size: UInt64(raw.count))
        }
    }

    private static func error(_ failure: InputFile.Failure, path: String) -> Error {
        switch failure {
        case .missing: return .missing(path)
        case .notARegularFile(let what): return .notARegularFile(path, what)
        case .tooLarge(let length, _): return .truncatedHeader(path, actual: length)
        case .sparse(let length, let stored): return .sparse(path, length: length, stored: stored)
        case .unreadable(let why): return .unreadable(path, why)
        case .changed: return .unreadable(path, "the file changed while it was read")
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
