import KilnDigest

/// The partition table and filesystem basics of an image file, read from a few sectors: the first GPT
/// partition and the ext4 superblock at its start (or at byte 0 of a bare filesystem).
public struct VolumeProbe: Sendable, Hashable, Codable {
    /// The GPT partition type of Bottlerocket's data partition.
    public static let bottlerocketDataType = "626f7474-6c65-6474-6861-726d61726b73"

    /// The image file's size.
    public var size: UInt64
    /// `gpt` when the image has a GPT, else nil.
    public var partitionTable: String?
    /// The first used GPT partition.
    public var partition: ManifestPartition?
    /// Partitions in use in the GPT.
    public var partitionCount: Int
    /// The filesystem at the partition's start, or at byte 0 without a partition table.
    public var filesystem: ManifestFilesystem?
    /// Byte ranges of the partition tables (protective MBR, primary and backup GPT).
    public var partitionTableRanges: [FileMapInput.ByteRange]

    /// What the layout looks like from outside: `bottlerocket` (GPT whose first partition has Bottlerocket's
    /// data partition type), `gpt`, `ext4` (a bare filesystem) or `unknown`.
    public var layout: String {
        if let p = partition {
            return p.typeGUID == Self.bottlerocketDataType ? "bottlerocket" : "gpt"
        }
        return filesystem?.type ?? "unknown"
    }

    /// Errors raised when the image cannot be read.
    public enum Error: Swift.Error, CustomStringConvertible {
        case io(String)

        public var description: String {
            switch self {
            case .io(let why): return why
            }
        }
    }

    /// Reads the basics of the image at `path`. Unrecognised contents give a probe without partition or
    /// filesystem; only I/O failures throw.
    public init(path: String) throws {
        let file: ImageFile
        do { file = try ImageFile(path: path) } catch { throw Error.io("\(error)") }
        func read(_ offset: UInt64, _ count: Int) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: count)
            do { try out.withUnsafeMutableBytes { try file.read(into: $0, at: offset) } } catch { throw Error.io("\(error)") }
            return out
        }
        size = file.size
        partitionCount = 0
        partitionTableRanges = []
        var fsOffset: UInt64 = 0
        for sector in [512, 4096] as [UInt64] where size >= sector * 2 {
            let header = try read(sector, 92)
            guard header[0..<8].elementsEqual("EFI PART".utf8) else { continue }
            let entriesLBA = header.u64(72)
            let entryCount = Int(min(header.u32(80), 1024))
            let entrySize = Int(header.u32(84))
            guard entrySize >= 128, entrySize <= 4096, entriesLBA < size / sector else { break }
            let entries = try read(entriesLBA * sector, entryCount * entrySize)
            partitionTable = "gpt"
            let diskGUID = Self.guid(header, 56)
            let tableBytes = UInt64(entryCount * entrySize)
            partitionTableRanges = [.init(offset: 0, length: entriesLBA * sector + tableBytes)]
            let alternate = header.u64(32)
            if alternate > 0, alternate < size / sector, alternate * sector >= tableBytes {
                partitionTableRanges.append(.init(offset: alternate * sector - tableBytes, length: tableBytes + sector))
            }
            for i in 0..<entryCount {
                let e = Array(entries[(i * entrySize)..<(i * entrySize + 128)])
                guard e[0..<16].contains(where: { $0 != 0 }) else { continue }
                partitionCount += 1
                guard partition == nil else { continue }
                let first = e.u64(32) < size / sector ? e.u64(32) : size / sector
                let last = e.u64(40) < size / sector ? e.u64(40) : size / sector
                let units = stride(from: 56, to: 128, by: 2).map { UInt16(e[$0]) | UInt16(e[$0 + 1]) << 8 }
                let name = String(decoding: units.prefix { $0 != 0 }, as: UTF16.self)
                partition = ManifestPartition(
                    number: i + 1, start: first * sector, size: last >= first ? (last - first + 1) * sector : 0,
                    typeGUID: Self.guid(e, 0), uniqueGUID: Self.guid(e, 16), name: name, diskGUID: diskGUID)
            }
            fsOffset = partition?.start ?? 0
            break
        }
        if fsOffset <= size, size - fsOffset >= 2048 {
            let sb = try read(fsOffset + 1024, 1024)
            if sb.u16(56) == 0xEF53 {
                let incompat = sb.u32(96)
                let is64 = incompat & 0x80 != 0
                let blocks = UInt64(sb.u32(4)) | (is64 ? UInt64(sb.u32(0x150)) << 32 : 0)
                let free = UInt64(sb.u32(12)) | (is64 ? UInt64(sb.u32(0x158)) << 32 : 0)
                let inodes = UInt64(sb.u32(0))
                let freeInodes = UInt64(sb.u32(16))
                let type = incompat & 0x40 != 0 ? "ext4" : (sb.u32(92) & 0x4 != 0 ? "ext3" : "ext2")
                let label = String(decoding: sb[120..<136].prefix { $0 != 0 }, as: UTF8.self)
                let logSize = sb.u32(24)
                filesystem = ManifestFilesystem(
                    type: type, offset: fsOffset, uuid: Self.uuid(Array(sb[104..<120])), label: label,
                    blockSize: logSize < 7 ? 1024 << Int(logSize) : 0, blockCount: blocks, inodeCount: inodes,
                    usedBlocks: blocks >= free ? blocks - free : 0, usedInodes: inodes >= freeInodes ? inodes - freeInodes : 0)
            }
        }
    }

    /// GUID text of the mixed-endian 16 bytes at `offset` (GPT's on-disk order).
    static func guid(_ b: [UInt8], _ offset: Int) -> String {
        let g = Array(b[offset..<(offset + 16)])
        let reordered = [g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6]] + g[8..<16]
        return uuid(reordered)
    }

    /// UUID text of 16 bytes in order (ext4's on-disk order).
    static func uuid(_ b: [UInt8]) -> String {
        let h = b.hexString
        return [h.prefix(8), h.dropFirst(8).prefix(4), h.dropFirst(12).prefix(4), h.dropFirst(16).prefix(4), h.dropFirst(20)]
            .joined(separator: "-")
    }
}

extension [UInt8] {
    fileprivate func u16(_ o: Int) -> UInt16 { UInt16(self[o]) | UInt16(self[o + 1]) << 8 }
    fileprivate func u32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(self[o + $1]) << (8 * $1) } }
    fileprivate func u64(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(self[o + $1]) << (8 * $1) } }
}
