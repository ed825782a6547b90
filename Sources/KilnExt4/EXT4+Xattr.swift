/// Extended attributes: name namespaces, POSIX ACL value conversion, and the in-inode and block encodings.
extension EXT4 {
    /// One extended attribute as stored: a namespace index, the name without its prefix, and the raw value.
    struct Xattr: Hashable, Sendable {
        var index: UInt8
        var name: [UInt8]
        var value: [UInt8]

        /// The ordering the kernel's sorted xattr block lookup expects: name index, then name length, then name.
        static func storageOrder(_ a: Xattr, _ b: Xattr) -> Bool {
            if a.index != b.index { return a.index < b.index }
            if a.name.count != b.name.count { return a.name.count < b.name.count }
            return a.name.lexicographicallyPrecedes(b.name)
        }

        var entrySize: Int { (16 + name.count + 3) & ~3 }
        var valueSize: Int { (value.count + 3) & ~3 }
    }

    /// Prefixes ext4 knows, longest first so that `system.posix_acl_access` wins over `system.`.
    static let xattrPrefixes: [(prefix: String, index: UInt8, exact: Bool)] = [
        ("system.posix_acl_access", 2, true),
        ("system.posix_acl_default", 3, true),
        ("system.richacl", 8, true),
        ("user.", 1, false),
        ("trusted.", 4, false),
        ("security.", 6, false),
        ("system.", 7, false),
    ]

    /// Splits a full attribute name such as `security.capability` into its namespace index and suffix.
    static func xattrKey(_ fullName: String) -> (index: UInt8, name: [UInt8])? {
        let bytes = Array(fullName.utf8)
        for p in xattrPrefixes {
            let prefix = Array(p.prefix.utf8)
            if p.exact {
                if bytes == prefix { return (p.index, []) }
            } else if bytes.count > prefix.count, bytes.starts(with: prefix) {
                return (p.index, Array(bytes[prefix.count...]))
            }
        }
        return nil
    }

    /// The full attribute name for an index and suffix, or nil for an index kiln does not know.
    static func xattrFullName(index: UInt8, name: [UInt8]) -> String? {
        guard let p = xattrPrefixes.first(where: { $0.index == index }) else { return nil }
        return p.prefix + String(decoding: name, as: UTF8.self)
    }

    static func isACL(index: UInt8) -> Bool { index == 2 || index == 3 }

    /// Converts a POSIX ACL from the xattr interface format (version 2, 8-byte entries) to ext4's on-disk format
    /// (version 1, 4-byte entries for owner/group/mask/other). Returns nil when `value` is not a valid ACL.
    static func aclToDisk(_ value: [UInt8]) -> [UInt8]? {
        guard value.count >= 4, (value.count - 4) % 8 == 0, value.le32(at: 0) == 2 else { return nil }
        var out: [UInt8] = [1, 0, 0, 0]
        var o = 4
        while o < value.count {
            let tag = value.le16(at: o)
            let perm = value.le16(at: o + 2)
            let id = value.le32(at: o + 4)
            out.append(contentsOf: [UInt8(tag & 0xff), UInt8(tag >> 8), UInt8(perm & 0xff), UInt8(perm >> 8)])
            switch tag {
            case 0x01, 0x04, 0x10, 0x20: break
            case 0x02, 0x08:
                out.append(contentsOf: [
                    UInt8(truncatingIfNeeded: id), UInt8(truncatingIfNeeded: id >> 8),
                    UInt8(truncatingIfNeeded: id >> 16), UInt8(truncatingIfNeeded: id >> 24),
                ])
            default: return nil
            }
            o += 8
        }
        return out
    }

    /// Converts ext4's on-disk POSIX ACL back to the xattr interface format.
    static func aclFromDisk(_ value: [UInt8]) -> [UInt8]? {
        guard value.count >= 4, value.le32(at: 0) == 1 else { return nil }
        var out: [UInt8] = [2, 0, 0, 0]
        var o = 4
        while o + 4 <= value.count {
            let tag = value.le16(at: o)
            var entry = [UInt8](repeating: 0, count: 8)
            entry.putLE16(tag, at: 0)
            entry.putLE16(value.le16(at: o + 2), at: 2)
            switch tag {
            case 0x01, 0x04, 0x10, 0x20:
                entry.putLE32(0xFFFF_FFFF, at: 4)
                o += 4
            case 0x02, 0x08:
                guard o + 8 <= value.count else { return nil }
                entry.putLE32(value.le32(at: o + 4), at: 4)
                o += 8
            default: return nil
            }
            out.append(contentsOf: entry)
        }
        return o == value.count ? out : nil
    }

    /// `ext2fs_ext_attr_hash_entry` with the historical signed-char name bytes.
    static func xattrEntryHash(_ x: Xattr) -> UInt32 {
        var hash: UInt32 = 0
        for b in x.name {
            hash = (hash << 5) ^ (hash >> 27) ^ UInt32(bitPattern: Int32(Int8(bitPattern: b)))
        }
        if !x.value.isEmpty {
            var padded = x.value
            while padded.count % 4 != 0 { padded.append(0) }
            var o = 0
            while o < padded.count {
                hash = (hash << 16) ^ (hash >> 16) ^ padded.le32(at: o)
                o += 4
            }
        }
        return hash
    }

    /// Bytes available for in-inode entries and values after the 4-byte magic (the 4-byte end marker included).
    static let inodeXattrSpace = inodeSize - 128 - Int(extraInodeSize) - 4
    static let xattrMagic: UInt32 = 0xEA02_0000

    /// Splits sorted attributes between the inode body and one xattr block: in order, as many as fit in the
    /// inode, the rest in the block. Returns nil when the rest does not fit in one block.
    static func splitXattrs(_ sorted: [Xattr]) -> (inode: [Xattr], block: [Xattr])? {
        var inInode: [Xattr] = []
        var used = 4  // end marker
        var i = 0
        while i < sorted.count {
            let need = sorted[i].entrySize + sorted[i].valueSize
            if used + need > inodeXattrSpace { break }
            used += need
            inInode.append(sorted[i])
            i += 1
        }
        let rest = Array(sorted[i...])
        var blockUsed = 32 + 4
        for x in rest { blockUsed += x.entrySize + x.valueSize }
        if blockUsed > blockSize { return nil }
        return (inInode, rest)
    }

    /// Encodes entries and values into `area` (entries from `entriesStart`, values growing down from the end);
    /// value offsets are relative to `offsetBase`.
    static func encodeXattrEntries(_ xs: [Xattr], into area: inout [UInt8], entriesStart: Int, offsetBase: Int) {
        var e = entriesStart
        var v = area.count
        for x in xs {
            let vsize = x.valueSize
            v -= vsize
            area[e] = UInt8(x.name.count)
            area[e + 1] = x.index
            area.putLE16(x.value.isEmpty ? 0 : UInt16(v - offsetBase), at: e + 2)
            area.putLE32(0, at: e + 4)
            area.putLE32(UInt32(x.value.count), at: e + 8)
            area.putLE32(xattrEntryHash(x), at: e + 12)
            area.putBytes(x.name, at: e + 16)
            area.putBytes(x.value, at: v)
            e += x.entrySize
        }
    }

    /// The 96 bytes after the fixed inode and its extra fields: magic, entries and values.
    static func inodeXattrArea(_ xs: [Xattr]) -> [UInt8] {
        var area = [UInt8](repeating: 0, count: inodeSize - 128 - Int(extraInodeSize))
        guard !xs.isEmpty else { return area }
        area.putLE32(xattrMagic, at: 0)
        encodeXattrEntries(xs, into: &area, entriesStart: 4, offsetBase: 4)
        return area
    }

    /// A whole xattr block with its header, hash and checksum (which covers the block number).
    static func xattrBlock(_ xs: [Xattr], blockNumber: UInt64, checksumSeed: UInt32) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: blockSize)
        block.putLE32(xattrMagic, at: 0)
        block.putLE32(1, at: 4)  // h_refcount
        block.putLE32(1, at: 8)  // h_blocks
        encodeXattrEntries(xs, into: &block, entriesStart: 32, offsetBase: 0)
        var hash: UInt32 = 0
        for x in xs {
            let eh = xattrEntryHash(x)
            if eh == 0 {
                hash = 0
                break
            }
            hash = (hash << 16) ^ (hash >> 16) ^ eh
        }
        block.putLE32(hash, at: 12)
        var crc = crc32c(checksumSeed, le64: blockNumber)
        crc = crc32c(crc, block)
        block.putLE32(crc, at: 16)
        return block
    }

    /// Parses entries from an in-inode area or an xattr block.
    static func decodeXattrEntries(_ area: [UInt8], entriesStart: Int, offsetBase: Int) -> [Xattr] {
        var out: [Xattr] = []
        var e = entriesStart
        while e + 16 <= area.count {
            if area.le32(at: e) == 0 { break }
            let nameLen = Int(area[e])
            let index = area[e + 1]
            let offs = Int(area.le16(at: e + 2))
            let size = Int(area.le32(at: e + 8))
            guard e + 16 + nameLen <= area.count else { break }
            let name = Array(area[(e + 16)..<(e + 16 + nameLen)])
            var value: [UInt8] = []
            if size > 0 {
                let start = offsetBase + offs
                guard start >= 0, start + size <= area.count else { break }
                value = Array(area[start..<(start + size)])
            }
            out.append(Xattr(index: index, name: name, value: value))
            e += (16 + nameLen + 3) & ~3
        }
        return out
    }
}
