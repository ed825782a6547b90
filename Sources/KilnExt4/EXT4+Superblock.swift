/// The superblock and the 64-byte group descriptors, encoded with their checksums and decoded for reading.
extension EXT4 {
    struct Superblock {
        var inodesCount: UInt32 = 0
        var blocksCount: UInt64 = 0
        var freeBlocksCount: UInt64 = 0
        var freeInodesCount: UInt32 = 0
        var firstDataBlock: UInt32 = 0
        var logBlockSize: UInt32 = 2
        var blocksPerGroup: UInt32 = UInt32(EXT4.blocksPerGroup)
        var inodesPerGroup: UInt32 = 0
        var writeTime: Int64 = 0
        var magic: UInt16 = superblockMagic
        var state: UInt16 = 1
        var lastCheck: Int64 = 0
        var revLevel: UInt32 = 1
        var firstInode: UInt32 = firstNonReservedInode
        var inodeSize: UInt16 = UInt16(EXT4.inodeSize)
        var blockGroupNumber: UInt16 = 0
        var featureCompat: UInt32 = 0
        var featureIncompat: UInt32 = 0
        var featureROCompat: UInt32 = 0
        var uuid = [UInt8](repeating: 0, count: 16)
        var volumeName = [UInt8](repeating: 0, count: 16)
        var journalInode: UInt32 = 0
        var hashSeed = [UInt8](repeating: 0, count: 16)
        var defaultHashVersion: UInt8 = 1
        var journalBackupType: UInt8 = 0
        var descriptorSize: UInt16 = UInt16(EXT4.descriptorSize)
        var defaultMountOptions: UInt32 = 0
        var firstMetaBG: UInt32 = 0
        var mkfsTime: Int64 = 0
        var journalBlocks = [UInt32](repeating: 0, count: 17)
        var minExtraIsize: UInt16 = 0
        var wantExtraIsize: UInt16 = 0
        var flags: UInt32 = 0
        var logGroupsPerFlex: UInt8 = 0
        var checksumType: UInt8 = 0
        var reservedGDTBlocks: UInt16 = 0
        var checksumSeedField: UInt32 = 0

        static let unsignedHashFlag: UInt32 = 0x2
        static let signedHashFlag: UInt32 = 0x1

        var blockSize: Int { 1024 << Int(logBlockSize) }
        /// Overflow-safe: a damaged superblock must give a wrong count, not a trap.
        var groupCount: UInt64 {
            guard blocksPerGroup > 0, blocksCount > UInt64(firstDataBlock) else { return 0 }
            let span = blocksCount - UInt64(firstDataBlock)
            return span / UInt64(blocksPerGroup) + (span % UInt64(blocksPerGroup) == 0 ? 0 : 1)
        }
        var hasMetadataChecksums: Bool { featureROCompat & ROCompat.metadataCsum != 0 }
        var is64Bit: Bool { featureIncompat & Incompat.bit64 != 0 }

        /// The seed of every metadata checksum: crc32c(~0, uuid), or the stored seed with csum_seed.
        var checksumSeed: UInt32 {
            if featureIncompat & Incompat.csumSeed != 0 { return checksumSeedField }
            return crc32c(0xFFFF_FFFF, uuid)
        }

        var directoryHash: DirectoryHash {
            DirectoryHash(
                version: HashVersion(rawValue: defaultHashVersion) ?? .halfMD4,
                unsigned: flags & Self.unsignedHashFlag != 0,
                seed: (hashSeed.le32(at: 0), hashSeed.le32(at: 4), hashSeed.le32(at: 8), hashSeed.le32(at: 12)))
        }

        /// The 1024 bytes of the superblock with `s_checksum` set.
        func encode() -> [UInt8] {
            var b = [UInt8](repeating: 0, count: 1024)
            b.putLE32(inodesCount, at: 0x00)
            b.putLE32(UInt32(truncatingIfNeeded: blocksCount), at: 0x04)
            b.putLE32(UInt32(truncatingIfNeeded: freeBlocksCount), at: 0x0C)
            b.putLE32(freeInodesCount, at: 0x10)
            b.putLE32(firstDataBlock, at: 0x14)
            b.putLE32(logBlockSize, at: 0x18)
            b.putLE32(logBlockSize, at: 0x1C)  // cluster size = block size
            b.putLE32(blocksPerGroup, at: 0x20)
            b.putLE32(blocksPerGroup, at: 0x24)
            b.putLE32(inodesPerGroup, at: 0x28)
            b.putLE32(UInt32(truncatingIfNeeded: writeTime), at: 0x30)
            b.putLE16(0xFFFF, at: 0x36)  // s_max_mnt_count = -1
            b.putLE16(magic, at: 0x38)
            b.putLE16(state, at: 0x3A)
            b.putLE16(1, at: 0x3C)  // errors: continue
            b.putLE32(UInt32(truncatingIfNeeded: lastCheck), at: 0x40)
            b.putLE32(revLevel, at: 0x4C)
            b.putLE32(firstInode, at: 0x54)
            b.putLE16(inodeSize, at: 0x58)
            b.putLE16(blockGroupNumber, at: 0x5A)
            b.putLE32(featureCompat, at: 0x5C)
            b.putLE32(featureIncompat, at: 0x60)
            b.putLE32(featureROCompat, at: 0x64)
            b.putBytes(uuid, at: 0x68)
            b.putBytes(volumeName.prefix(16), at: 0x78)
            b.putLE16(reservedGDTBlocks, at: 0xCE)
            b.putLE32(journalInode, at: 0xE0)
            b.putBytes(hashSeed, at: 0xEC)
            b[0xFC] = defaultHashVersion
            b[0xFD] = journalBackupType
            b.putLE16(descriptorSize, at: 0xFE)
            b.putLE32(defaultMountOptions, at: 0x100)
            b.putLE32(firstMetaBG, at: 0x104)
            b.putLE32(UInt32(truncatingIfNeeded: mkfsTime), at: 0x108)
            for (i, w) in journalBlocks.enumerated() { b.putLE32(w, at: 0x10C + 4 * i) }
            b.putLE32(UInt32(truncatingIfNeeded: blocksCount >> 32), at: 0x150)
            b.putLE32(UInt32(truncatingIfNeeded: freeBlocksCount >> 32), at: 0x158)
            b.putLE16(minExtraIsize, at: 0x15C)
            b.putLE16(wantExtraIsize, at: 0x15E)
            b.putLE32(flags, at: 0x160)
            b[0x174] = logGroupsPerFlex
            b[0x175] = checksumType
            b.putLE32(checksumSeedField, at: 0x270)
            b[0x274] = UInt8(truncatingIfNeeded: writeTime >> 32)
            b[0x276] = UInt8(truncatingIfNeeded: mkfsTime >> 32)
            b[0x277] = UInt8(truncatingIfNeeded: lastCheck >> 32)
            b.putLE32(crc32c(0xFFFF_FFFF, b[0..<0x3FC]), at: 0x3FC)
            return b
        }

        static func decode(_ b: [UInt8]) -> Superblock {
            var s = Superblock()
            s.inodesCount = b.le32(at: 0x00)
            s.freeInodesCount = b.le32(at: 0x10)
            s.firstDataBlock = b.le32(at: 0x14)
            s.logBlockSize = b.le32(at: 0x18)
            s.blocksPerGroup = b.le32(at: 0x20)
            s.inodesPerGroup = b.le32(at: 0x28)
            s.magic = b.le16(at: 0x38)
            s.state = b.le16(at: 0x3A)
            s.revLevel = b.le32(at: 0x4C)
            s.firstInode = b.le32(at: 0x54)
            s.inodeSize = b.le16(at: 0x58)
            s.blockGroupNumber = b.le16(at: 0x5A)
            s.featureCompat = b.le32(at: 0x5C)
            s.featureIncompat = b.le32(at: 0x60)
            s.featureROCompat = b.le32(at: 0x64)
            s.uuid = Array(b[0x68..<0x78])
            s.volumeName = Array(b[0x78..<0x88])
            s.reservedGDTBlocks = b.le16(at: 0xCE)
            s.journalInode = b.le32(at: 0xE0)
            s.hashSeed = Array(b[0xEC..<0xFC])
            s.defaultHashVersion = b[0xFC]
            s.journalBackupType = b[0xFD]
            s.descriptorSize = b.le16(at: 0xFE)
            s.defaultMountOptions = b.le32(at: 0x100)
            s.firstMetaBG = b.le32(at: 0x104)
            s.minExtraIsize = b.le16(at: 0x15C)
            s.wantExtraIsize = b.le16(at: 0x15E)
            s.flags = b.le32(at: 0x160)
            s.logGroupsPerFlex = b[0x174]
            s.checksumType = b[0x175]
            s.checksumSeedField = b.le32(at: 0x270)
            let is64 = s.featureIncompat & Incompat.bit64 != 0
            s.blocksCount = UInt64(b.le32(at: 0x04)) | (is64 ? UInt64(b.le32(at: 0x150)) << 32 : 0)
            s.freeBlocksCount = UInt64(b.le32(at: 0x0C)) | (is64 ? UInt64(b.le32(at: 0x158)) << 32 : 0)
            s.writeTime = Int64(b.le32(at: 0x30)) | Int64(b[0x274]) << 32
            s.mkfsTime = Int64(b.le32(at: 0x108)) | Int64(b[0x276]) << 32
            s.lastCheck = Int64(b.le32(at: 0x40)) | Int64(b[0x277]) << 32
            if s.descriptorSize == 0 { s.descriptorSize = 32 }
            return s
        }
    }

    struct GroupDescriptor {
        var blockBitmap: UInt64 = 0
        var inodeBitmap: UInt64 = 0
        var inodeTable: UInt64 = 0
        var freeBlocks: UInt32 = 0
        var freeInodes: UInt32 = 0
        var usedDirectories: UInt32 = 0
        var flags: UInt16 = 0
        var blockBitmapChecksum: UInt32 = 0
        var inodeBitmapChecksum: UInt32 = 0
        var itableUnused: UInt32 = 0

        /// 64 bytes with `bg_checksum` = crc32c(seed, group, descriptor) & 0xFFFF.
        func encode(group: UInt32, checksumSeed: UInt32) -> [UInt8] {
            var b = [UInt8](repeating: 0, count: descriptorSize)
            b.putLE32(UInt32(truncatingIfNeeded: blockBitmap), at: 0x00)
            b.putLE32(UInt32(truncatingIfNeeded: inodeBitmap), at: 0x04)
            b.putLE32(UInt32(truncatingIfNeeded: inodeTable), at: 0x08)
            b.putLE16(UInt16(truncatingIfNeeded: freeBlocks), at: 0x0C)
            b.putLE16(UInt16(truncatingIfNeeded: freeInodes), at: 0x0E)
            b.putLE16(UInt16(truncatingIfNeeded: usedDirectories), at: 0x10)
            b.putLE16(flags, at: 0x12)
            b.putLE16(UInt16(truncatingIfNeeded: blockBitmapChecksum), at: 0x18)
            b.putLE16(UInt16(truncatingIfNeeded: inodeBitmapChecksum), at: 0x1A)
            b.putLE16(UInt16(truncatingIfNeeded: itableUnused), at: 0x1C)
            b.putLE32(UInt32(truncatingIfNeeded: blockBitmap >> 32), at: 0x20)
            b.putLE32(UInt32(truncatingIfNeeded: inodeBitmap >> 32), at: 0x24)
            b.putLE32(UInt32(truncatingIfNeeded: inodeTable >> 32), at: 0x28)
            b.putLE16(UInt16(truncatingIfNeeded: freeBlocks >> 16), at: 0x2C)
            b.putLE16(UInt16(truncatingIfNeeded: freeInodes >> 16), at: 0x2E)
            b.putLE16(UInt16(truncatingIfNeeded: usedDirectories >> 16), at: 0x30)
            b.putLE16(UInt16(truncatingIfNeeded: itableUnused >> 16), at: 0x32)
            b.putLE16(UInt16(truncatingIfNeeded: blockBitmapChecksum >> 16), at: 0x38)
            b.putLE16(UInt16(truncatingIfNeeded: inodeBitmapChecksum >> 16), at: 0x3A)
            var crc = crc32c(checksumSeed, le32: group)
            crc = crc32c(crc, b)
            b.putLE16(UInt16(truncatingIfNeeded: crc), at: 0x1E)
            return b
        }

        static func decode(_ b: ArraySlice<UInt8>, size: Int) -> GroupDescriptor {
            let a = Array(b)
            var d = GroupDescriptor()
            let wide = size >= 64
            d.blockBitmap = UInt64(a.le32(at: 0)) | (wide ? UInt64(a.le32(at: 0x20)) << 32 : 0)
            d.inodeBitmap = UInt64(a.le32(at: 4)) | (wide ? UInt64(a.le32(at: 0x24)) << 32 : 0)
            d.inodeTable = UInt64(a.le32(at: 8)) | (wide ? UInt64(a.le32(at: 0x28)) << 32 : 0)
            d.freeBlocks = UInt32(a.le16(at: 0x0C)) | (wide ? UInt32(a.le16(at: 0x2C)) << 16 : 0)
            d.freeInodes = UInt32(a.le16(at: 0x0E)) | (wide ? UInt32(a.le16(at: 0x2E)) << 16 : 0)
            d.usedDirectories = UInt32(a.le16(at: 0x10)) | (wide ? UInt32(a.le16(at: 0x30)) << 16 : 0)
            d.flags = a.le16(at: 0x12)
            d.itableUnused = UInt32(a.le16(at: 0x1C)) | (wide ? UInt32(a.le16(at: 0x32)) << 16 : 0)
            return d
        }
    }

    /// Where group `group`'s descriptor block (meta_bg, or the classic table after the superblock) lives,
    /// for a filesystem described by `sb`.
    static func descriptorBlockLocation(descriptorBlock i: UInt64, superblock sb: Superblock) -> UInt64 {
        let perBlock = UInt64(sb.blockSize / Int(sb.descriptorSize))
        let first = UInt64(sb.firstDataBlock)
        if sb.featureIncompat & Incompat.metaBG == 0 || i < UInt64(sb.firstMetaBG) {
            return first + 1 + i
        }
        let group = i * perBlock
        let start = first + group * UInt64(sb.blocksPerGroup)
        let hasSuper = sb.featureROCompat & ROCompat.sparseSuper == 0 || groupHasSuperblock(group)
        return start + (hasSuper ? 1 : 0)
    }
}
