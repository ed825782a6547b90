import KilnDigest
import KilnDisk

/// The image file of a baked volume.
public struct ManifestVolume: Sendable, Hashable, Codable {
    /// The image's file name, relative to the manifest's directory (e.g. `data.img`).
    public var file: String
    /// The image file's size in bytes (its apparent size; the file is sparse).
    public var size: UInt64
    /// The volume layout: `bottlerocket` (GPT + ext4), `containerd` or `rootfs` (bare ext4), or what a tool
    /// that did not bake the image could tell.
    public var layout: String
    /// The data partition, when the image has a partition table.
    public var partition: ManifestPartition?
    /// The filesystem, when known.
    public var filesystem: ManifestFilesystem?
    /// sha256 of the whole image file, holes read as zeros (what `sha256sum data.img` prints); nil when the bake
    /// left it out (`--no-file-digest`): the block digests identify the content all the same.
    public var sha256: Digest?

    public init(file: String, size: UInt64, layout: String, partition: ManifestPartition? = nil,
                filesystem: ManifestFilesystem? = nil, sha256: Digest?) {
        self.file = file
        self.size = size
        self.layout = layout
        self.partition = partition
        self.filesystem = filesystem
        self.sha256 = sha256
    }
}

/// A GPT partition. GUIDs are in their canonical lowercase text form.
public struct ManifestPartition: Sendable, Hashable, Codable {
    /// 1-based partition number.
    public var number: Int
    /// Byte offset of the partition in the image file.
    public var start: UInt64
    /// Size of the partition in bytes.
    public var size: UInt64
    public var typeGUID: String
    public var uniqueGUID: String
    /// The GPT partition name (may be empty).
    public var name: String
    /// The disk GUID of the partition table.
    public var diskGUID: String?

    public init(number: Int = 1, start: UInt64, size: UInt64, typeGUID: String, uniqueGUID: String, name: String,
                diskGUID: String? = nil) {
        self.number = number
        self.start = start
        self.size = size
        self.typeGUID = typeGUID
        self.uniqueGUID = uniqueGUID
        self.name = name
        self.diskGUID = diskGUID
    }
}

/// A filesystem inside the image.
public struct ManifestFilesystem: Sendable, Hashable, Codable {
    /// `ext4`.
    public var type: String
    /// Byte offset of the filesystem in the image file.
    public var offset: UInt64
    /// The filesystem UUID, canonical lowercase text.
    public var uuid: String
    /// The volume label (may be empty).
    public var label: String
    public var blockSize: Int
    public var blockCount: UInt64
    public var inodeCount: UInt64
    public var usedBlocks: UInt64
    public var usedInodes: UInt64?

    public init(type: String = "ext4", offset: UInt64, uuid: String, label: String = "", blockSize: Int,
                blockCount: UInt64, inodeCount: UInt64, usedBlocks: UInt64, usedInodes: UInt64? = nil) {
        self.type = type
        self.offset = offset
        self.uuid = uuid
        self.label = label
        self.blockSize = blockSize
        self.blockCount = blockCount
        self.inodeCount = inodeCount
        self.usedBlocks = usedBlocks
        self.usedInodes = usedInodes
    }
}

extension ManifestPartition {
    /// The partition a probe of the image found.
    public init(_ probed: VolumeProbe.Partition) {
        self.init(number: probed.number, start: probed.start, size: probed.size, typeGUID: probed.typeGUID,
                  uniqueGUID: probed.uniqueGUID, name: probed.name, diskGUID: probed.diskGUID)
    }
}

extension ManifestFilesystem {
    /// The filesystem a probe of the image found.
    public init(_ probed: VolumeProbe.Filesystem) {
        self.init(type: probed.type, offset: probed.offset, uuid: probed.uuid, label: probed.label,
                  blockSize: probed.blockSize, blockCount: probed.blockCount, inodeCount: probed.inodeCount,
                  usedBlocks: probed.usedBlocks, usedInodes: probed.usedInodes)
    }
}
