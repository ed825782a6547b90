import Foundation
import KilnDigest

/// Where a blob's bytes live: a byte range of a file (a whole file for layouts, a member of a tar for archives),
/// or a remote blob fetched as it is read (a registry).
public struct BlobLocation: Sendable {
    /// The file holding the bytes.
    public var path: String
    /// Offset of the first byte within `path`.
    public var offset: Int64
    /// Number of bytes stored.
    public var length: Int64
    /// How to name this blob to a user, e.g. `fixtures/x/blobs/sha256/ab..` or `image.tar:blobs/sha256/ab..`.
    public var displayName: String

    /// When set, the bytes come from here (`path` and `offset` are then unused).
    public var remote: (any RemoteBlob)?
    /// Opened with `O_NOFOLLOW`: a layout's blob that became a symlink after it was located is refused when it is
    /// opened, not followed (the check and the open are one step).
    public var refusesSymlink: Bool

    public init(path: String, offset: Int64, length: Int64, displayName: String, refusesSymlink: Bool = false) {
        self.path = path
        self.offset = offset
        self.length = length
        self.displayName = displayName
        self.remote = nil
        self.refusesSymlink = refusesSymlink
    }

    /// A blob of `length` bytes fetched from `remote` when opened.
    public init(remote: any RemoteBlob, length: Int64, displayName: String) {
        self.path = ""
        self.offset = 0
        self.length = length
        self.displayName = displayName
        self.remote = remote
        self.refusesSymlink = false
    }

    /// Opens the bytes for one sequential read.
    public func open() throws -> any BlobReader {
        if let remote { return try remote.open() }
        return try RangeReader(self)
    }
}

/// Reads a blob's bytes once, in order.
public protocol BlobReader: AnyObject {
    /// Reads up to `buffer.count` bytes; returns 0 at the end of the blob. Blocks until bytes are there.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Called when the reader will not be read further (at the end, or abandoned part way).
    func finish()
}

extension BlobReader {
    public func finish() {}

    /// Reads everything left into memory, refusing more than `limit` bytes (for small JSON documents).
    public func readAll(limit: Int64, what: String) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try read(into: $0) }
            if n == 0 { break }
            out += chunk[0..<n]
            if Int64(out.count) > limit { throw BlobError.tooLarge(what, size: Int64(out.count), limit: limit) }
        }
        finish()
        return out
    }
}

/// A blob kiln does not hold as a file: fetched, from the start, each time it is opened.
public protocol RemoteBlob: Sendable {
    func open() throws -> any BlobReader
}

/// Content-addressed blobs of one source (an image layout directory or an archive).
public protocol BlobStore: Sendable {
    /// A short name of the store for messages.
    var displayName: String { get }
    /// The location of a blob, or nil when the store does not have it.
    func locate(_ digest: Digest) throws -> BlobLocation?
    /// The location of the blob a descriptor names (a registry needs its media type and size to fetch it).
    func locate(_ descriptor: Descriptor) throws -> BlobLocation?
    /// Tells the store which blobs are about to be read, in order (a registry starts fetching ahead).
    func willRead(_ descriptors: [Descriptor])
}

extension BlobStore {
    public func locate(_ descriptor: Descriptor) throws -> BlobLocation? { try locate(descriptor.digest) }
    public func willRead(_ descriptors: [Descriptor]) {}
}

/// Errors reading blobs and source containers.
public enum BlobError: Swift.Error, CustomStringConvertible {
    case missing(Digest, store: String)
    case tooLarge(String, size: Int64, limit: Int64)
    case io(String, errno: Int32)
    case truncated(String, expected: Int64, actual: Int64)
    /// A layout's blob is a symlink: blobs are never opened through a link that could lead out of the layout.
    case symlink(String)
    /// A byte range that no file can hold (negative, or past the largest offset).
    case badRange(String, offset: Int64, length: Int64)

    public var description: String {
        switch self {
        case .missing(let d, let store): return "blob \(d) is missing from \(store)"
        case .tooLarge(let what, let size, let limit):
            return "\(what) is \(size) bytes, more than the \(limit)-byte limit for JSON documents"
        case .io(let what, let e): return "cannot read \(what): \(String(cString: strerror(e)))"
        case .truncated(let what, let expected, let actual):
            return "\(what) is truncated: expected \(expected) bytes, found \(actual)"
        case .symlink(let path):
            return "\(path) is a symbolic link; blobs of an image layout must be regular files (a link could lead out of the layout)"
        case .badRange(let what, let offset, let length):
            return "\(what): \(length) bytes at offset \(offset) is not a range a file can hold"
        }
    }
}

/// Reads a byte range of a file sequentially with `pread`, so many readers can share nothing.
public final class RangeReader: BlobReader {
    private let fd: Int32
    private var position: Int64
    private let end: Int64
    public let location: BlobLocation

    public init(_ location: BlobLocation) throws {
        guard location.offset >= 0, location.length >= 0, location.offset <= Int64.max - location.length else {
            throw BlobError.badRange(location.displayName, offset: location.offset, length: location.length)
        }
        let fd = open(location.path, O_RDONLY | O_CLOEXEC | (location.refusesSymlink ? O_NOFOLLOW : 0))
        guard fd >= 0 else {
            if errno == ELOOP && location.refusesSymlink { throw BlobError.symlink(location.path) }
            throw BlobError.io(location.displayName, errno: errno)
        }
        self.fd = fd
        self.location = location
        self.position = location.offset
        self.end = location.offset + location.length
        posix_fadvise(fd, off_t(location.offset), off_t(location.length), POSIX_FADV_SEQUENTIAL)
    }

    deinit { close(fd) }

    /// Bytes left in the range.
    public var remaining: Int64 { end - position }

    /// Reads up to `buffer.count` bytes; returns 0 at the end of the range.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let want = Int(min(Int64(buffer.count), end - position))
        guard want > 0, let base = buffer.baseAddress else { return 0 }
        while true {
            let n = pread(fd, base, want, off_t(position))
            if n < 0 {
                if errno == EINTR { continue }
                throw BlobError.io(location.displayName, errno: errno)
            }
            if n == 0 {
                // The file is shorter than the range promised.
                throw BlobError.truncated(location.displayName, expected: location.length, actual: position - location.offset)
            }
            position += Int64(n)
            return n
        }
    }

    /// Reads the whole remaining range into memory (only for small JSON documents).
    public func readAll(limit: Int64) throws -> [UInt8] {
        guard remaining <= limit else { throw BlobError.tooLarge(location.displayName, size: remaining, limit: limit) }
        var out = [UInt8](repeating: 0, count: Int(remaining))
        var filled = 0
        while filled < out.count {
            let n = try out.withUnsafeMutableBytes { try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...])) }
            filled += n
        }
        return out
    }
}

/// Blobs of an OCI image layout directory: `blobs/<alg>/<hex>`.
public struct LayoutBlobStore: BlobStore {
    public let root: String
    public var displayName: String { root }

    public init(root: String) { self.root = root }

    public func locate(_ digest: Digest) throws -> BlobLocation? {
        let path = "\(root)/blobs/\(digest.algorithm)/\(digest.encoded)"
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return nil }
            throw BlobError.io(path, errno: errno)
        }
        if (st.st_mode & S_IFMT) == S_IFLNK { throw BlobError.symlink(path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return BlobLocation(path: path, offset: 0, length: Int64(st.st_size), displayName: path, refusesSymlink: true)
    }
}

/// Blobs of an image layout stored inside an uncompressed tar (an OCI archive or a current `docker save`).
public struct ArchiveBlobStore: BlobStore {
    public let archive: TarIndex
    public var displayName: String { archive.path }

    public init(archive: TarIndex) { self.archive = archive }

    public func locate(_ digest: Digest) throws -> BlobLocation? {
        archive.location(of: "blobs/\(digest.algorithm)/\(digest.encoded)")
    }
}

/// Blobs addressed by digest whose bytes sit at known locations (legacy `docker save` layers and configs).
public struct MappedBlobStore: BlobStore {
    public let displayName: String
    public let locations: [Digest: BlobLocation]

    public init(displayName: String, locations: [Digest: BlobLocation]) {
        self.displayName = displayName
        self.locations = locations
    }

    public func locate(_ digest: Digest) throws -> BlobLocation? { locations[digest] }
}

/// Blobs kept in memory: manifests kiln synthesises for legacy `docker save` images, layered over another store.
public struct OverlayBlobStore: BlobStore {
    public let base: any BlobStore
    public let extra: MappedBlobStore
    public var displayName: String { base.displayName }

    public init(base: any BlobStore, extra: MappedBlobStore) {
        self.base = base
        self.extra = extra
    }

    public func locate(_ digest: Digest) throws -> BlobLocation? {
        if let l = try extra.locate(digest) { return l }
        return try base.locate(digest)
    }

    public func locate(_ descriptor: Descriptor) throws -> BlobLocation? {
        if let l = try extra.locate(descriptor.digest) { return l }
        return try base.locate(descriptor)
    }

    public func willRead(_ descriptors: [Descriptor]) { base.willRead(descriptors) }
}

extension BlobLocation: Hashable {
    // Two locations are the same when they name the same bytes the same way; a remote blob is known by its name.
    public static func == (a: BlobLocation, b: BlobLocation) -> Bool {
        a.path == b.path && a.offset == b.offset && a.length == b.length && a.displayName == b.displayName
            && (a.remote == nil) == (b.remote == nil)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(path)
        hasher.combine(offset)
        hasher.combine(length)
        hasher.combine(displayName)
    }
}
