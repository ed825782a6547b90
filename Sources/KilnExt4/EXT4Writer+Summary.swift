import KilnCore
import KilnDigest

/// What ``EXT4Writer/close()`` reports: the filesystem's geometry and where every file's blocks are.
extension EXT4Writer {
    /// The geometry of a finished filesystem.
    public struct Summary: Sendable, Codable, Hashable {
        public var blockSize: Int
        public var blockCount: UInt64
        public var inodeCount: UInt32
        public var freeBlocks: UInt64
        public var freeInodes: UInt32
        public var usedBlocks: UInt64
        public var groupCount: UInt64
        /// The filesystem UUID in its canonical text form.
        public var uuid: String
        /// The filesystem's size in bytes (`blockCount * blockSize`).
        public var byteSize: UInt64
        /// Where the filesystem starts in the image file.
        public var byteOffset: UInt64
        /// The physical blocks of every regular file.
        public var fileMap: FileMap
    }

    /// Which regular file owns which filesystem blocks (data and extent tree blocks), to name the files a
    /// damaged region of the image belongs to. Block numbers are filesystem blocks: byte `block * 4096` of the
    /// filesystem, `byteOffset + block * 4096` of the image file.
    ///
    /// Paths are kept as one buffer of UTF-8 text and an end offset each: a volume of a million small files
    /// must not cost a million String allocations here.
    public struct FileMap: Sendable, Codable, Hashable {
        private var pathText: [UInt8] = []
        private var pathEnds: [Int] = []
        /// Block runs sorted by start block: `file` indexes the paths (``path(_:)``).
        public private(set) var runs: [Run] = []

        public struct Run: Sendable, Codable, Hashable {
            public var start: UInt64
            public var count: UInt64
            public var file: Int
        }

        public init() {}

        /// How many files the map holds.
        public var fileCount: Int { pathEnds.count }

        /// The UTF-8 text of file `index`'s path.
        public func pathUTF8(_ index: Int) -> ArraySlice<UInt8> { pathText[pathSpan(index)] }

        /// Where file `index`'s path lies in ``pathTextUTF8``.
        public func pathSpan(_ index: Int) -> Range<Int> { (index == 0 ? 0 : pathEnds[index - 1])..<pathEnds[index] }

        /// Every path's text, one after the other (``pathSpan(_:)`` says where each is): to share, not to copy.
        public var pathTextUTF8: [UInt8] { pathText }

        mutating func reserveCapacity(files: Int, pathBytes: Int, runs runCount: Int) {
            pathText.reserveCapacity(pathBytes)
            pathEnds.reserveCapacity(files)
            runs.reserveCapacity(runCount)
        }

        /// File `index`'s path: one path per regular file (the first in byte order when it has several links), as
        /// text: bytes that are not UTF-8 are escaped (``KilnCore/BytePath/description``).
        public func path(_ index: Int) -> String { String(decoding: pathUTF8(index), as: UTF8.self) }

        /// Every file's path, in file order.
        public var paths: [String] { (0..<fileCount).map(path) }

        mutating func add(path: some Collection<UInt8>, runs fileRuns: [Range<UInt64>]) {
            let index = pathEnds.count
            pathText.append(contentsOf: path)
            pathEnds.append(pathText.count)
            for r in fileRuns where !r.isEmpty {
                runs.append(Run(start: r.lowerBound, count: UInt64(r.count), file: index))
            }
        }

        mutating func sort() { runs.sort { $0.start < $1.start } }

        /// The runs of the file at `path`.
        public func blocks(of path: String) -> [Range<UInt64>] {
            let wanted = Array(path.utf8)
            guard let i = (0..<fileCount).first(where: { pathUTF8($0).elementsEqual(wanted) }) else { return [] }
            return runs.filter { $0.file == i }.map { $0.start..<($0.start + $0.count) }
        }

        /// Paths of the files that own any block in `blocks`, sorted.
        public func paths(overlappingBlocks blocks: Range<UInt64>) -> [String] {
            // Runs never overlap, so the ones that can intersect start before blocks.upperBound and the first
            // candidate is the last run starting at or before blocks.lowerBound.
            var lo = 0
            var hi = runs.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if runs[mid].start <= blocks.lowerBound { lo = mid + 1 } else { hi = mid }
            }
            var i = max(0, lo - 1)
            var found = Set<Int>()
            while i < runs.count && runs[i].start < blocks.upperBound {
                let r = runs[i]
                if r.start + r.count > blocks.lowerBound { found.insert(r.file) }
                i += 1
            }
            return found.map(path).sorted()
        }

        /// Paths of the files that own any byte in `bytes` (filesystem-relative byte offsets), sorted.
        public func paths(overlappingBytes bytes: Range<UInt64>) -> [String] {
            guard !bytes.isEmpty else { return [] }
            let bs = UInt64(EXT4.blockSize)
            return paths(overlappingBlocks: (bytes.lowerBound / bs)..<((bytes.upperBound + bs - 1) / bs))
        }
    }

    func makeSummary(geometry g: Geometry, free: FreeCounts, fileMap map: FileMap) -> Summary {
        let u = uuid.hexString
        let canonical = [u.prefix(8), u.dropFirst(8).prefix(4), u.dropFirst(12).prefix(4), u.dropFirst(16).prefix(4), u.dropFirst(20)]
            .joined(separator: "-")
        return Summary(
            blockSize: EXT4.blockSize, blockCount: g.blocks, inodeCount: UInt32(g.inodesPerGroup * g.groups),
            freeBlocks: free.blocks, freeInodes: UInt32(free.inodes), usedBlocks: g.blocks - free.blocks,
            groupCount: g.groups, uuid: canonical, byteSize: g.blocks * UInt64(EXT4.blockSize),
            byteOffset: file.offset, fileMap: map)
    }

    /// Every live regular file's runs under its first path (sorted, breadth-first), in the order the walk
    /// finds them.
    ///
    /// Only directories' paths are kept while walking; a file's path is put together when it is added, so the
    /// million paths of a large tree never exist as separate values.
    func fileMap() -> FileMap {
        // Room for all of it at once (a first, unsorted walk counts it): a map grown by doubling could hold
        // twice what it needs at the end.
        var seen = [UInt64](repeating: 0, count: nodes.count / 64 + 1)
        func firstSight(_ ino: UInt32) -> Bool {
            let (word, bit) = (Int(ino) / 64, UInt64(1) << (UInt64(ino) % 64))
            defer { seen[word] |= bit }
            return seen[word] & bit == 0
        }
        var files = 0, pathBytes = 0, runCount = 0
        var counting: [(UInt32, Int)] = [(EXT4.rootInode, 0)]
        while let (dir, prefixLength) = counting.popLast() {
            for (name, c) in nodes[Int(dir)].children ?? [:] {
                switch nodes[Int(c)].kind {
                case .directory:
                    counting.append((c, prefixLength + 1 + name.count))
                case .regular where firstSight(c):
                    files += 1
                    pathBytes += prefixLength + 1 + name.count
                    runCount += nodes[Int(c)].extentCount + nodes[Int(c)].treeBlocks.count
                default:
                    continue
                }
            }
        }
        var map = FileMap()
        map.reserveCapacity(files: files, pathBytes: pathBytes + pathBytes / 64, runs: runCount)

        for i in seen.indices { seen[i] = 0 }
        var directoryPaths: [UInt32: [UInt8]] = [EXT4.rootInode: []]
        var queue: [UInt32] = [EXT4.rootInode]
        var head = 0
        var runs: [Range<UInt64>] = []
        while head < queue.count {
            let dir = queue[head]
            head += 1
            let prefix = directoryPaths.removeValue(forKey: dir) ?? []
            let children = (nodes[Int(dir)].children ?? [:]).sorted { $0.key.lexicographicallyPrecedes($1.key) }
            for (name, c) in children {
                switch nodes[Int(c)].kind {
                case .directory:
                    guard firstSight(c) else { continue }
                    directoryPaths[c] = prefix + [BytePath.slash] + name
                    queue.append(c)
                case .regular where firstSight(c):
                    runs.removeAll(keepingCapacity: true)
                    nodes[Int(c)].forEachExtent { runs.append($0.physical..<($0.physical + UInt64($0.length))) }
                    runs.append(contentsOf: nodes[Int(c)].treeBlocks.map { $0..<($0 + 1) })
                    map.add(path: BytePath(prefix + [BytePath.slash] + name).description.utf8, runs: runs)
                default:
                    continue
                }
            }
        }
        map.sort()
        return map
    }
}
