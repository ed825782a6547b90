import KilnCore
/// ext4 filesystem images written without mkfs, mount or root.
///
/// ``EXT4Writer`` lays out an ext4 filesystem inside a file (optionally at a byte offset, e.g. behind a GPT)
/// while file contents stream in; ``EXT4Reader`` reads such images back. The value types in this namespace are
/// shared by both.
public enum EXT4 {
    /// The filesystem block size kiln writes: 4 KiB.
    public static let blockSize = 4096

    /// The largest regular file size ext4 supports with 4 KiB blocks and extents: (2^32 - 1) blocks.
    public static let maximumFileSize: UInt64 = ((UInt64(1) << 32) - 1) * UInt64(blockSize)

    /// The longest name of one directory entry, in bytes.
    public static let maximumNameLength = 255

    /// The longest symbolic link target, in bytes.
    public static let maximumSymlinkLength = 4095
}

extension EXT4 {
    /// A point in time with nanoseconds, as ext4 stores it (seconds from 1901 to 2446).
    public struct Timestamp: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
        /// Seconds since the Unix epoch (may be negative).
        public var seconds: Int64
        /// Nanoseconds within the second, 0..<1_000_000_000.
        public var nanoseconds: UInt32

        public init(seconds: Int64, nanoseconds: UInt32 = 0) {
            self.seconds = seconds
            self.nanoseconds = nanoseconds
        }

        /// The Unix epoch.
        public static let zero = Timestamp(seconds: 0)

        public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
            (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
        }

        public var description: String { "\(seconds).\(String(nanoseconds + 1_000_000_000).dropFirst())" }
    }

    /// What kind of filesystem object a node is.
    public enum FileKind: String, Sendable, Hashable, Codable {
        case regular, directory, symlink, characterDevice, blockDevice, fifo, socket

        /// The `S_IFMT` bits of this kind.
        public var modeBits: UInt16 {
            switch self {
            case .regular: return 0o100000
            case .directory: return 0o040000
            case .symlink: return 0o120000
            case .characterDevice: return 0o020000
            case .blockDevice: return 0o060000
            case .fifo: return 0o010000
            case .socket: return 0o140000
            }
        }

        /// The directory entry file type (`EXT4_FT_*`).
        var directoryFileType: UInt8 {
            switch self {
            case .regular: return 1
            case .directory: return 2
            case .characterDevice: return 3
            case .blockDevice: return 4
            case .fifo: return 5
            case .socket: return 6
            case .symlink: return 7
            }
        }

        init?(mode: UInt16) {
            switch mode & 0o170000 {
            case 0o100000: self = .regular
            case 0o040000: self = .directory
            case 0o120000: self = .symlink
            case 0o020000: self = .characterDevice
            case 0o060000: self = .blockDevice
            case 0o010000: self = .fifo
            case 0o140000: self = .socket
            default: return nil
            }
        }
    }

    /// Ownership, permissions and times of a node.
    public struct Metadata: Sendable, Hashable, Codable {
        /// Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000); the file type bits
        /// come from the operation and are ignored here.
        public var permissions: UInt16
        public var uid: UInt32
        public var gid: UInt32
        public var accessTime: Timestamp
        public var modificationTime: Timestamp
        public var changeTime: Timestamp
        public var creationTime: Timestamp

        public init(
            permissions: UInt16, uid: UInt32 = 0, gid: UInt32 = 0,
            accessTime: Timestamp, modificationTime: Timestamp, changeTime: Timestamp, creationTime: Timestamp
        ) {
            self.permissions = permissions & 0o7777
            self.uid = uid
            self.gid = gid
            self.accessTime = accessTime
            self.modificationTime = modificationTime
            self.changeTime = changeTime
            self.creationTime = creationTime
        }

        /// Metadata whose four times are all `time`.
        public init(permissions: UInt16, uid: UInt32 = 0, gid: UInt32 = 0, time: Timestamp) {
            self.init(
                permissions: permissions, uid: uid, gid: gid,
                accessTime: time, modificationTime: time, changeTime: time, creationTime: time)
        }
    }

    /// A device number as `major:minor` (12-bit major, 20-bit minor, as Linux encodes them).
    public struct DeviceNumber: Sendable, Hashable, Codable, CustomStringConvertible {
        public var major: UInt32
        public var minor: UInt32

        public init(major: UInt32, minor: UInt32) {
            self.major = major
            self.minor = minor
        }

        public var description: String { "\(major):\(minor)" }
    }

    /// A node in a writer's tree (its inode number). Directory nodes serve as subtree roots for path operations.
    public struct NodeID: Sendable, Hashable, Codable, CustomStringConvertible {
        /// The node's inode number.
        public let inode: UInt32

        public init(inode: UInt32) { self.inode = inode }

        /// The filesystem root directory (inode 2).
        public static let root = NodeID(inode: 2)

        public var description: String { "inode \(inode)" }
    }

    /// The directory index hash function (`s_def_hash_version`).
    public enum HashVersion: UInt8, Sendable, Hashable, Codable {
        case legacy = 0
        case halfMD4 = 1
        case tea = 2
    }

    /// What a path refers to, as ``EXT4Writer/lookup(_:under:followSymlinks:)`` reports it.
    public struct Entry: Sendable, Hashable {
        public var node: NodeID
        public var kind: FileKind
        /// Bytes of a regular file or a symlink target; 0 for others (directories report 0 before ``EXT4Writer/close()``).
        public var size: UInt64
        public var metadata: Metadata
        /// The number of directory entries referring to this node (for directories: 2 + subdirectories).
        public var linkCount: Int
        /// The target of a symbolic link.
        public var symlinkTarget: BytePath?
        /// The device number of a character or block device.
        public var device: DeviceNumber?
    }
}
