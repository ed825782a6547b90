/// The 256-byte on-disk inode (`struct ext2_inode_large`), encoded with its checksum and decoded for reading.
extension EXT4 {
    struct InodeImage {
        var mode: UInt16 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        var size: UInt64 = 0
        var accessTime = Timestamp.zero
        var changeTime = Timestamp.zero
        var modificationTime = Timestamp.zero
        var creationTime = Timestamp.zero
        var linksCount: UInt16 = 0
        /// 512-byte sectors (data, extent tree and xattr blocks).
        var sectors: UInt64 = 0
        var flags: UInt32 = 0
        /// `i_block`: extent root, inline symlink target or device numbers.
        var blockArea = [UInt8](repeating: 0, count: 60)
        var generation: UInt32 = 0
        var xattrBlock: UInt64 = 0
        /// The in-inode xattr area (magic, entries, values) after the extra fields.
        var xattrArea = [UInt8](repeating: 0, count: inodeSize - 128 - Int(extraInodeSize))

        /// Seconds as ext4 keeps them: the low 32 bits in the base field, two epoch bits and the nanoseconds in
        /// the extra field.
        static func encodeTime(_ t: Timestamp) -> (base: UInt32, extra: UInt32) {
            let base = UInt32(truncatingIfNeeded: t.seconds)
            let epoch = UInt32(truncatingIfNeeded: (t.seconds - Int64(Int32(truncatingIfNeeded: t.seconds))) >> 32) & 3
            return (base, epoch | (t.nanoseconds << 2))
        }

        static func decodeTime(base: UInt32, extra: UInt32) -> Timestamp {
            let seconds = Int64(Int32(bitPattern: base)) + (Int64(extra & 3) << 32)
            return Timestamp(seconds: seconds, nanoseconds: extra >> 2)
        }

        /// The 256 bytes of this inode with `i_checksum_lo`/`i_checksum_hi` set for inode number `inode`.
        func encode(inode: UInt32, checksumSeed: UInt32) -> [UInt8] {
            var b = [UInt8](repeating: 0, count: inodeSize)
            b.putLE16(mode, at: 0x00)
            b.putLE16(UInt16(truncatingIfNeeded: uid), at: 0x02)
            b.putLE32(UInt32(truncatingIfNeeded: size), at: 0x04)
            let at = Self.encodeTime(accessTime)
            let ct = Self.encodeTime(changeTime)
            let mt = Self.encodeTime(modificationTime)
            let crt = Self.encodeTime(creationTime)
            b.putLE32(at.base, at: 0x08)
            b.putLE32(ct.base, at: 0x0C)
            b.putLE32(mt.base, at: 0x10)
            b.putLE16(UInt16(truncatingIfNeeded: gid), at: 0x18)
            b.putLE16(linksCount, at: 0x1A)
            b.putLE32(UInt32(truncatingIfNeeded: sectors), at: 0x1C)
            b.putLE32(flags, at: 0x20)
            b.putBytes(blockArea, at: 0x28)
            b.putLE32(generation, at: 0x64)
            b.putLE32(UInt32(truncatingIfNeeded: xattrBlock), at: 0x68)
            b.putLE32(UInt32(truncatingIfNeeded: size >> 32), at: 0x6C)
            b.putLE16(UInt16(truncatingIfNeeded: sectors >> 32), at: 0x74)
            b.putLE16(UInt16(truncatingIfNeeded: xattrBlock >> 32), at: 0x76)
            b.putLE16(UInt16(truncatingIfNeeded: uid >> 16), at: 0x78)
            b.putLE16(UInt16(truncatingIfNeeded: gid >> 16), at: 0x7A)
            b.putLE16(extraInodeSize, at: 0x80)
            b.putLE32(ct.extra, at: 0x84)
            b.putLE32(mt.extra, at: 0x88)
            b.putLE32(at.extra, at: 0x8C)
            b.putLE32(crt.base, at: 0x90)
            b.putLE32(crt.extra, at: 0x94)
            b.putBytes(xattrArea, at: 128 + Int(extraInodeSize))
            var crc = crc32c(checksumSeed, le32: inode)
            crc = crc32c(crc, le32: generation)
            crc = crc32c(crc, b)
            b.putLE16(UInt16(truncatingIfNeeded: crc), at: 0x7C)
            b.putLE16(UInt16(truncatingIfNeeded: crc >> 16), at: 0x82)
            return b
        }

        /// Decodes an inode; `verify` reports whether its checksum matches (all-zero inodes count as valid).
        static func decode(_ b: [UInt8], inode: UInt32, checksumSeed: UInt32?) -> (InodeImage, checksumOK: Bool) {
            var i = InodeImage()
            i.mode = b.le16(at: 0x00)
            i.uid = UInt32(b.le16(at: 0x02)) | UInt32(b.le16(at: 0x78)) << 16
            i.gid = UInt32(b.le16(at: 0x18)) | UInt32(b.le16(at: 0x7A)) << 16
            i.size = UInt64(b.le32(at: 0x04)) | UInt64(b.le32(at: 0x6C)) << 32
            // 128-byte inodes (mke2fs -I 128) end before the extra fields; a larger claim than the inode holds is
            // cut to what it holds.
            let extra = b.count >= 0x82 ? min(Int(b.le16(at: 0x80)), b.count - 0x80) : 0
            func ext(_ off: Int) -> UInt32 { extra >= off - 0x80 + 4 ? b.le32(at: off) : 0 }
            i.accessTime = decodeTime(base: b.le32(at: 0x08), extra: ext(0x8C))
            i.changeTime = decodeTime(base: b.le32(at: 0x0C), extra: ext(0x84))
            i.modificationTime = decodeTime(base: b.le32(at: 0x10), extra: ext(0x88))
            i.creationTime = decodeTime(base: ext(0x90), extra: ext(0x94))
            i.linksCount = b.le16(at: 0x1A)
            i.sectors = UInt64(b.le32(at: 0x1C)) | UInt64(b.le16(at: 0x74)) << 32
            i.flags = b.le32(at: 0x20)
            if i.flags & InodeFlags.hugeFile != 0 { i.sectors *= UInt64(blockSize / 512) }
            i.blockArea = Array(b[0x28..<0x64])
            i.generation = b.le32(at: 0x64)
            i.xattrBlock = UInt64(b.le32(at: 0x68)) | UInt64(b.le16(at: 0x76)) << 32
            let areaStart = 128 + extra
            i.xattrArea = areaStart < b.count ? Array(b[areaStart...]) : []
            var ok = true
            if let seed = checksumSeed, !b[0..<128].allSatisfy({ $0 == 0 }) {
                var copy = b
                copy.putLE16(0, at: 0x7C)
                let hasHi = extra >= 4
                if hasHi { copy.putLE16(0, at: 0x82) }
                var crc = crc32c(seed, le32: inode)
                crc = crc32c(crc, le32: i.generation)
                crc = crc32c(crc, copy)
                var provided = UInt32(b.le16(at: 0x7C))
                if hasHi { provided |= UInt32(b.le16(at: 0x82)) << 16 } else { crc &= 0xFFFF }
                ok = provided == crc
            }
            return (i, ok)
        }
    }
}
