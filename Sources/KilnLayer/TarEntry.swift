import KilnCore

/// One entry of a layer tar, as libarchive reads it.
public struct TarEntry: Sendable {
    public enum Kind: String, Sendable, Codable {
        case file, directory, symlink, hardlink, characterDevice, blockDevice, fifo, socket
    }

    /// A point in time with nanoseconds.
    public struct Time: Sendable, Hashable, Codable {
        public var seconds: Int64
        public var nanoseconds: Int32
        public init(seconds: Int64, nanoseconds: Int32 = 0) {
            self.seconds = seconds
            self.nanoseconds = nanoseconds
        }
    }

    /// The path exactly as stored in the tar, as bytes (may start with `./` or `/`, may hold `..`).
    public var path: BytePath
    public var kind: Kind
    /// Permission bits including setuid, setgid and sticky (`0o7777`).
    public var permissions: UInt32
    public var uid: UInt32
    public var gid: UInt32
    /// Size of the data (for sparse files: the logical size).
    public var size: Int64
    public var modificationTime: Time
    public var accessTime: Time?
    public var changeTime: Time?
    /// Symlink target or hard-link target path, as bytes.
    public var linkTarget: BytePath?
    public var deviceMajor: UInt32
    public var deviceMinor: UInt32
    /// Extended attributes in tar order (`SCHILY.xattr.*` and `LIBARCHIVE.xattr.*` records).
    public var xattrs: [(name: String, value: [UInt8])]
    /// True when the tar stores holes (GNU or pax sparse formats).
    public var isSparse: Bool

    /// The path cleaned the way OCI consumers compare paths: no leading `./` or `/`, no trailing `/`, `.`
    /// components removed. `..` is kept; ``KilnCore/BytePath/cleaned`` is how an entry is applied.
    public var normalizedPath: BytePath { path.normalized }
}
