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
    public struct FileMap: Sendable, Codable, Hashable {
        /// One path per regular file (the first in byte order when it has several links), as text: bytes that
        /// are not UTF-8 are escaped (``KilnCore/BytePath/description``).
        public private(set) var paths: [String] = []
        /// Block runs sorted by start block: `file` indexes ``paths``.
        public private(set) var runs: [Run] = []

        public struct Run: Sendable, Codable, Hashable {
            public var start: UInt64
            public var count: UInt64
            public var file: Int
        }

        public init() {}

        mutating func add(path: String, runs fileRuns: [Range<UInt64>]) {
            let index = paths.count
            paths.append(path)
            for r in fileRuns where !r.isEmpty {
                runs.append(Run(start: r.lowerBound, count: UInt64(r.count), file: index))
            }
        }

        mutating func sort() { runs.sort { $0.start < $1.start } }

        /// The runs of the file at `path`.
        public func blocks(of path: String) -> [Range<UInt64>] {
            guard let i = paths.firstIndex(of: path) else { return [] }
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
            return found.map { paths[$0] }.sorted()
        }

        /// Paths of the files that own any byte in `bytes` (filesystem-relative byte offsets), sorted.
        public func paths(overlappingBytes bytes: Range<UInt64>) -> [String] {
            guard !bytes.isEmpty else { return [] }
            let bs = UInt64(EXT4.blockSize)
            return paths(overlappingBlocks: (bytes.lowerBound / bs)..<((bytes.upperBound + bs - 1) / bs))
        }
    }

    func makeSummary(geometry g: Geometry, free: FreeCounts, paths: [UInt32: BytePath]) -> Summary {
        var map = FileMap()
        for ino in Int(EXT4.firstNonReservedInode)..<nodes.count where nodes[ino].live && nodes[ino].kind == .regular {
            var runs = nodes[ino].extents.map { $0.physical..<($0.physical + UInt64($0.length)) }
            runs.append(contentsOf: nodes[ino].treeBlocks.map { $0..<($0 + 1) })
            map.add(path: paths[UInt32(ino)]?.description ?? "inode \(ino)", runs: runs)
        }
        map.sort()
        let u = uuid.hexString
        let canonical = [u.prefix(8), u.dropFirst(8).prefix(4), u.dropFirst(12).prefix(4), u.dropFirst(16).prefix(4), u.dropFirst(20)]
            .joined(separator: "-")
        return Summary(
            blockSize: EXT4.blockSize, blockCount: g.blocks, inodeCount: UInt32(g.inodesPerGroup * g.groups),
            freeBlocks: free.blocks, freeInodes: UInt32(free.inodes), usedBlocks: g.blocks - free.blocks,
            groupCount: g.groups, uuid: canonical, byteSize: g.blocks * UInt64(EXT4.blockSize),
            byteOffset: file.offset, fileMap: map)
    }
}
