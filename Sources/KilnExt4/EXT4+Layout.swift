/// On-disk constants and the placement rules that both the writer and the reader follow.
extension EXT4 {
    static let superblockMagic: UInt16 = 0xEF53
    static let blocksPerGroup: UInt64 = 32768
    static let inodeSize = 256
    /// `i_extra_isize`: covers the checksum high half, the nanosecond time fields, crtime, version and project id.
    static let extraInodeSize: UInt16 = 32
    static let descriptorSize = 64
    static let descriptorsPerBlock = UInt64(blockSize / descriptorSize)
    static let inodesPerBlock = blockSize / inodeSize
    static let firstNonReservedInode: UInt32 = 11
    static let rootInode: UInt32 = 2
    static let journalInode: UInt32 = 8
    static let lostAndFoundInode: UInt32 = 11
    /// `EXT4_LINK_MAX`: beyond it a directory's link count is 1 (dir_nlink) and files refuse more links.
    static let linkMax = 65000
    /// log2(groups per flex group) as mkfs uses it.
    static let logGroupsPerFlex: UInt8 = 4

    enum Compat {
        static let hasJournal: UInt32 = 0x4
        static let extAttr: UInt32 = 0x8
        static let resizeInode: UInt32 = 0x10
        static let dirIndex: UInt32 = 0x20
        static let sparseSuper2: UInt32 = 0x200
    }

    enum Incompat {
        static let filetype: UInt32 = 0x2
        static let recover: UInt32 = 0x4
        static let journalDev: UInt32 = 0x8
        static let metaBG: UInt32 = 0x10
        static let extents: UInt32 = 0x40
        static let bit64: UInt32 = 0x80
        static let mmp: UInt32 = 0x100
        static let flexBG: UInt32 = 0x200
        static let eaInode: UInt32 = 0x400
        static let dirData: UInt32 = 0x1000
        static let csumSeed: UInt32 = 0x2000
        static let largedir: UInt32 = 0x4000
        static let inlineData: UInt32 = 0x8000
        static let encrypt: UInt32 = 0x10000
        static let casefold: UInt32 = 0x20000
    }

    enum ROCompat {
        static let sparseSuper: UInt32 = 0x1
        static let largeFile: UInt32 = 0x2
        static let hugeFile: UInt32 = 0x8
        static let gdtCsum: UInt32 = 0x10
        static let dirNlink: UInt32 = 0x20
        static let extraIsize: UInt32 = 0x40
        static let metadataCsum: UInt32 = 0x400
    }

    enum InodeFlags {
        static let index: UInt32 = 0x1000
        static let hugeFile: UInt32 = 0x40000
        static let extents: UInt32 = 0x80000
        static let inlineData: UInt32 = 0x1000_0000
    }

    enum GroupFlags {
        static let inodeUninit: UInt16 = 0x1
        static let blockUninit: UInt16 = 0x2
        static let itableZeroed: UInt16 = 0x4
    }

    /// True when group `group` carries a superblock copy under sparse_super (groups 0, 1 and powers of 3, 5, 7).
    static func groupHasSuperblock(_ group: UInt64) -> Bool {
        if group <= 1 { return true }
        for base: UInt64 in [3, 5, 7] {
            var n = base
            while n < group { n *= base }
            if n == group { return true }
        }
        return false
    }

    /// True when group `group` carries a copy of its meta group's descriptor block (meta_bg: the first, second
    /// and last group of every run of ``descriptorsPerBlock`` groups).
    static func groupHasMetaDescriptor(_ group: UInt64) -> Bool {
        let r = group % descriptorsPerBlock
        return r == 0 || r == 1 || r == descriptorsPerBlock - 1
    }

    /// Blocks at the start of `group` that hold its superblock copy and descriptor block copy (meta_bg layout
    /// with `s_first_meta_bg` = 0). They do not depend on the filesystem size, which is what lets file data
    /// stream in before the final size is known.
    static func groupBaseBlocks(_ group: UInt64) -> UInt64 {
        (groupHasSuperblock(group) ? 1 : 0) + (groupHasMetaDescriptor(group) ? 1 : 0)
    }
}
