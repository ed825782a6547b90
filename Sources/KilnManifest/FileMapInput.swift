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

    // Files are kept flat: one buffer of path text, one of ranges, an end offset into each and a layer number
    // per file. A volume of a million small files costs tens of bytes a file here, not three allocations.
    private var pathText: [UInt8] = []
    private var pathSpans: [Range<Int>] = []
    private var rangeStore: [ByteRange] = []
    private var rangeEnds: [Int] = []
    private var layerOfFile: [Int32] = []
    /// Layer names in the order they were first given; `layerOfFile` indexes it (-1: none).
    private(set) var layerNames: [String] = []
    private var layerNumbers: [String: Int32] = [:]
    public var regions: [Region]

    public init(files: [File] = [], regions: [Region] = []) {
        self.regions = regions
        for f in files { addFile(path: f.path, layer: f.layer, ranges: f.ranges.map { ($0.offset, $0.length) }) }
    }

    /// How many files were added.
    public var fileCount: Int { pathSpans.count }

    /// File `index`, as it was added.
    public func file(_ index: Int) -> File {
        File(path: path(index), layer: layer(index), ranges: Array(ranges(index)))
    }

    /// Every file, in the order they were added.
    public var files: [File] { (0..<fileCount).map(file) }

    /// File `index`'s path as UTF-8 text.
    func pathUTF8(_ index: Int) -> ArraySlice<UInt8> {
        pathText[pathSpans[index]]
    }

    func path(_ index: Int) -> String { String(decoding: pathUTF8(index), as: UTF8.self) }

    /// File `index`'s layer, as a number into ``layerNames`` (nil: none).
    func layerNumber(_ index: Int) -> Int? {
        let n = layerOfFile[index]
        return n < 0 ? nil : Int(n)
    }

    func layer(_ index: Int) -> String? { layerNumber(index).map { layerNames[$0] } }

    func ranges(_ index: Int) -> ArraySlice<ByteRange> {
        rangeStore[(index == 0 ? 0 : rangeEnds[index - 1])..<rangeEnds[index]]
    }

    /// Adds a regular file occupying `ranges` (image-file byte offset, length).
    public mutating func addFile(path: String, layer: String?, ranges: [(offset: UInt64, length: UInt64)]) {
        addFile(pathUTF8: path.utf8, layer: layer, ranges: ranges)
    }

    /// Adds a regular file whose path is given as UTF-8 text.
    public mutating func addFile(pathUTF8: some Collection<UInt8>, layer: String?, ranges: some Collection<(offset: UInt64, length: UInt64)>) {
        addFile(span: nil, text: pathUTF8, layer: layer, ranges: ranges)
    }

    /// Shares `text` as the buffer of path text (no copy) for files added with ``addFile(pathSpan:layer:ranges:)``.
    /// Only a map to which no file was added yet can take one.
    public mutating func sharePathText(_ text: [UInt8]) -> Bool {
        guard pathSpans.isEmpty else { return false }
        pathText = text
        return true
    }

    /// Adds a regular file whose path is `span` of the shared path text (``sharePathText(_:)``).
    public mutating func addFile(pathSpan span: Range<Int>, layer: String?, ranges: some Collection<(offset: UInt64, length: UInt64)>) {
        addFile(span: span.clamped(to: 0..<pathText.count), text: EmptyCollection(), layer: layer, ranges: ranges)
    }

    /// Reserves room for `files` more files of `ranges` ranges in all.
    public mutating func reserveCapacity(files: Int, ranges: Int) {
        pathSpans.reserveCapacity(pathSpans.count + files)
        layerOfFile.reserveCapacity(layerOfFile.count + files)
        rangeEnds.reserveCapacity(rangeEnds.count + files)
        rangeStore.reserveCapacity(rangeStore.count + ranges)
    }

    private mutating func addFile(span: Range<Int>?, text: some Collection<UInt8>, layer: String?,
                                  ranges: some Collection<(offset: UInt64, length: UInt64)>) {
        if let span {
            pathSpans.append(span)
        } else {
            let start = pathText.count
            pathText.append(contentsOf: text)
            pathSpans.append(start..<pathText.count)
        }
        for r in ranges { rangeStore.append(ByteRange(offset: r.offset, length: r.length)) }
        rangeEnds.append(rangeStore.count)
        guard let layer else {
            layerOfFile.append(-1)
            return
        }
        if let n = layerNumbers[layer] {
            layerOfFile.append(n)
        } else {
            let n = Int32(layerNames.count)
            layerNames.append(layer)
            layerNumbers[layer] = n
            layerOfFile.append(n)
        }
    }

    /// Adds a metadata region occupying `ranges` (image-file byte offset, length). Regions with the same name
    /// are merged.
    public mutating func addRegion(name: String, ranges: [(offset: UInt64, length: UInt64)]) {
        regions.append(Region(name: name, ranges: ranges.map { ByteRange(offset: $0.offset, length: $0.length) }))
    }

    public static func == (a: FileMapInput, b: FileMapInput) -> Bool { a.files == b.files && a.regions == b.regions }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(files)
        hasher.combine(regions)
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
