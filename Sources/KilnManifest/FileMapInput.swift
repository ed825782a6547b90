/// Where files and metadata lie in the image file, as the bake knows it: byte ranges of the image file.
///
/// The bake adds every regular file (its data and extent-tree blocks, converted to image-file byte offsets,
/// i.e. including the partition's start) and the metadata it wrote (partition table, superblocks, group
/// descriptors, bitmaps, inode tables, directories, journal). ``FileMap/init(_:blockSize:policy:)`` turns it
/// into the compact form the manifest stores.
public struct FileMapInput: Sendable, Hashable {
    /// `length` bytes of the image file starting at `offset`.
    public struct ByteRange: Sendable, Hashable, Codable {
        public var offset: UInt64
        public var length: UInt64

        public init(offset: UInt64, length: UInt64) {
            self.offset = offset
            self.length = length
        }

        /// The blocks of `blockSize` bytes the range touches.
        func blocks(_ blockSize: UInt64) -> Range<UInt64> {
            guard length > 0 else { return 0..<0 }
            let end = offset.addingReportingOverflow(length)
            let last = end.overflow ? UInt64.max : end.partialValue
            return (offset / blockSize)..<((last - 1) / blockSize + 1)
        }
    }

    /// A regular file.
    public struct File: Sendable, Hashable {
        /// Its path in the volume's filesystem, without a leading slash.
        public var path: String
        /// What brought the file in, usually a layer (e.g. `app:v1 layer 2 sha256:...`); nil for files the
        /// bake made itself.
        public var layer: String?
        /// Where its bytes are in the image file.
        public var ranges: [ByteRange]

        public init(path: String, layer: String?, ranges: [ByteRange]) {
            self.path = path
            self.layer = layer
            self.ranges = ranges
        }
    }

    /// A named metadata region, e.g. `gpt`, `ext4 metadata`, `ext4 journal`.
    public struct Region: Sendable, Hashable {
        public var name: String
        public var ranges: [ByteRange]

        public init(name: String, ranges: [ByteRange]) {
            self.name = name
            self.ranges = ranges
        }
    }

    public var files: [File]
    public var regions: [Region]

    public init(files: [File] = [], regions: [Region] = []) {
        self.files = files
        self.regions = regions
    }

    /// Adds a regular file occupying `ranges` (image-file byte offset, length).
    public mutating func addFile(path: String, layer: String?, ranges: [(offset: UInt64, length: UInt64)]) {
        files.append(File(path: path, layer: layer, ranges: ranges.map { ByteRange(offset: $0.offset, length: $0.length) }))
    }

    /// Adds a metadata region occupying `ranges` (image-file byte offset, length). Regions with the same name
    /// are merged.
    public mutating func addRegion(name: String, ranges: [(offset: UInt64, length: UInt64)]) {
        regions.append(Region(name: name, ranges: ranges.map { ByteRange(offset: $0.offset, length: $0.length) }))
    }
}

/// Which files the manifest lists one by one.
public struct FileMapPolicy: Sendable, Hashable {
    /// The largest files are listed one by one, up to this many (ties broken by path); the blocks of the rest
    /// are still attributed to their layers. Every file is listed when the volume has no more than this.
    public var maximumListedFiles: Int

    public init(maximumListedFiles: Int = 4096) {
        self.maximumListedFiles = maximumListedFiles
    }
}
